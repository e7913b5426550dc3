"""How one sandbox instance behaves: timing, money, limits, retention."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

DEMO_KEY = "afk_sandbox_demo_key_not_a_real_secret"
INACTIVE_KEY = "afk_sandbox_inactive_key_not_a_real_secret"

CREDITS_PER_JOB = 11
DAY = 24 * 60 * 60


@dataclass
class SandboxConfig:
    """Everything tunable about one sandbox; tests shrink the times, the demo keeps them humane."""

    queue_seconds: float = 1.0
    """How long a new job stays QUEUED."""
    stems_seconds: float = 8.0
    """How long a stems split stays PROCESSING."""
    song_seconds: float = 12.0
    """How long a song job (generate, extend, cover, add_vocals) stays PROCESSING."""
    track_seconds: float = 20.0
    """Length of the audio of every song the sandbox makes."""
    credits: int = 500
    """Starting balance of the demo account."""
    retention_seconds: float = DAY
    """After this long a COMPLETED job shows expired: true and its files answer 404."""
    idempotency_seconds: float = DAY
    """How long an Idempotency-Key is remembered."""
    rate_limit: int | None = None
    """Requests allowed per key per rate_window seconds (None: no limit)."""
    rate_window: float = 1.0
    seed_demo_data: bool = True
    """Create the demo songs, a PROCESSING job, a FAILED job and a finished stems job."""
    clock: Callable[[], float] = field(default=time.time)
    """Wall clock in epoch seconds; tests may pass a controllable one."""

    @classmethod
    def fast(cls, **overrides: object) -> SandboxConfig:
        """Timing for tests: jobs finish in a fraction of a second."""
        values: dict[str, object] = {
            "queue_seconds": 0.05,
            "stems_seconds": 0.3,
            "song_seconds": 0.3,
            "track_seconds": 2.0,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
