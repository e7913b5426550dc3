"""How long one call may take, chosen so that no client cuts it.

Clients cut tool calls at very different times: Claude Desktop and the other hosts below allow about 60 s,
while agent frameworks on their defaults allow 5 s (openai-agents; google-adk over stdio), 10 s (agno) or
30 s (llama-index), and all of them say only "mcp" when they introduce themselves. So:
- a host known to allow long calls (by the name it gives at `initialize`) waits up to SUNO_STEMS_MAX_WAIT
  (default 45 s): a split takes at most three calls there;
- any other client is assumed to allow SHORT_LIMIT (the shortest default), and its calls end MARGIN before it;
- a client that cancelled a call has shown its limit: its later calls end well before it;
- a call never waits past what it asked for, nor past SUNO_STEMS_MAX_WAIT.
The `next_step` hint suggests the same wait the next call would get.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..deadline import Deadline

LONG_CALL_HOSTS = ("claude-ai", "claude-desktop", "claude-code", "cursor", "visual studio code", "vscode",
                   "mcp-inspector", "inspector", "goose", "windsurf", "zed", "cline", "continue")
"""Names (prefixes, any case) that hosts known to allow about 60 s per call give at `initialize`."""
LONG_CALL_LIMIT = 60.0
SHORT_LIMIT = 5.0
"""What a client not known to allow more is assumed to allow: the 5 s of openai-agents and google-adk."""
MARGIN = 0.5
"""A call ends at least this long before the client's limit (the round trip and the client's own work)."""
SAFETY = 0.9
"""...and within this share of it, for long limits (Claude Desktop's 60 s is not reset by progress)."""
GRACE_SECONDS = 3.0
"""How far past its wait a call may run to finish its last request or file, where the client allows it."""
GRACE_SHARE = 1 / 9
"""For short limits, the grace is this share of the call: a short call mostly waits."""


@dataclass(frozen=True)
class Budget:
    wait: Deadline
    """Until when to wait for the job."""
    call: Deadline
    """Until when the whole call may run."""
    hint: int
    """The wait_seconds a next_step suggests."""

    @classmethod
    def of(cls, wait_seconds: float, *, bound: float, hint: int | None = None, grace: float = GRACE_SECONDS) -> Budget:
        """Wait at most `wait_seconds` and at most `bound`; run at most `grace` past `bound`."""
        wait = max(0.0, min(wait_seconds, bound))
        return cls(Deadline(wait), Deadline(bound + grace), int(bound) if hint is None else hint)


def is_long_call_host(client_name: str | None) -> bool:
    name = "-".join((client_name or "").lower().split())
    return bool(name) and name.startswith(tuple(host.replace(" ", "-") for host in LONG_CALL_HOSTS))


def call_limit(client_name: str | None, learned: float | None) -> float:
    """The longest this client is believed to let a call run, in seconds."""
    limit = LONG_CALL_LIMIT if is_long_call_host(client_name) else SHORT_LIMIT
    return min(limit, learned) if learned is not None else limit


def budget(asked: float | None, *, max_wait: float, limit: float) -> Budget:
    """The budget of a call that asked to wait `asked` seconds (None: as long as it may) from a client that
    allows `limit` seconds, on a server whose operator allows `max_wait`."""
    usable = min(limit - MARGIN, limit * SAFETY)
    grace = min(GRACE_SECONDS, usable * GRACE_SHARE)
    affordable = max(0.0, min(max_wait, usable - grace))
    wait = affordable if asked is None else min(asked, affordable)
    return Budget.of(wait, bound=affordable, hint=max(1, int(affordable)), grace=grace)
