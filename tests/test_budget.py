"""How long a call may wait, by client: no framework's default timeout cuts a call, and long-call hosts keep a
split to at most three calls."""

from __future__ import annotations

import pytest

from suno_stems_mcp.core.budget import budget, call_limit, is_long_call_host

FRAMEWORK_TIMEOUTS = {"openai-agents": 5.0, "google-adk (stdio)": 5.0, "agno": 10.0, "llama-index": 30.0}


@pytest.mark.parametrize("framework", sorted(FRAMEWORK_TIMEOUTS))
def test_a_client_that_gives_no_known_name_gets_calls_under_every_frameworks_timeout(framework: str) -> None:
    plan = budget(None, max_wait=45, limit=call_limit("mcp", None))
    assert plan.call.remaining() <= FRAMEWORK_TIMEOUTS[framework] - 0.5
    assert plan.wait.remaining() >= 3.9, "a wait so short would spend the model's turns"


@pytest.mark.parametrize("host", ["claude-ai", "Claude Code", "cursor-vscode", "Visual Studio Code", "mcp-inspector"])
def test_hosts_that_allow_long_calls_wait_up_to_max_wait(host: str) -> None:
    assert is_long_call_host(host)
    plan = budget(None, max_wait=45, limit=call_limit(host, None))
    assert 44 < plan.wait.remaining() <= 45 and plan.call.remaining() < 55
    assert plan.hint == 45
    assert 3 * plan.wait.remaining() > 120, "a split of two minutes takes at most three calls"


def test_a_cancelled_call_teaches_the_limit() -> None:
    plan = budget(None, max_wait=45, limit=call_limit("claude-ai", 20.0))
    assert plan.call.remaining() <= 0.9 * 20 + 0.01 and plan.wait.remaining() > 10


def test_a_call_never_waits_past_what_it_asked_nor_past_max_wait() -> None:
    assert budget(2, max_wait=45, limit=60).wait.remaining() <= 2
    assert budget(None, max_wait=10, limit=60).wait.remaining() <= 10
    assert budget(0, max_wait=10, limit=60).wait.remaining() == 0
