"""How one sandbox instance behaves: timing, money, limits, retention."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .audio import mp3_available

DEMO_KEY = "afk_sandbox_demo_key_not_a_real_secret"
INACTIVE_KEY = "afk_sandbox_inactive_key_not_a_real_secret"

CREDITS_PER_JOB = 11
DAY = 24 * 60 * 60

AUDIO_FORMATS = ("wav", "mp3")
AUDIO_VARIABLE = "SUNO_STEMS_SANDBOX_AUDIO"

TIMING_VARIABLES = {
    "SUNO_STEMS_SANDBOX_QUEUE_SECONDS": "queue_seconds",
    "SUNO_STEMS_SANDBOX_STEMS_SECONDS": "stems_seconds",
}


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
    audio_format: str = "wav"
    """What the CDN serves: "wav", or "mp3" as the real CDN does (needs the `mp3` extra: lameenc)."""
    stems_input: bool = True
    """Stems jobs answer with their `input`; False leaves it out, as the real API may (it does not promise it)."""
    seed_demo_data: bool = True
    """Create the demo songs, a PROCESSING job, a FAILED job and a finished stems job."""
    clock: Callable[[], float] = field(default=time.time)
    """Wall clock in epoch seconds; tests may pass a controllable one."""

    def __post_init__(self) -> None:
        if self.audio_format not in AUDIO_FORMATS:
            raise ValueError(f"audio_format must be one of {', '.join(AUDIO_FORMATS)}, not {self.audio_format!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: object) -> SandboxConfig:
        """The default config with the timing the environment asks for (see `TIMING_VARIABLES`).

        Raises `SettingsError` naming the variable when a value is not a number of seconds from 0 to a day.
        """
        from ..errors import SettingsError  # the mcp SDK behind it is heavy; the sandbox does not need it otherwise

        values: dict[str, object] = {}
        for name, attribute in TIMING_VARIABLES.items():
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            try:
                seconds = float(raw)
            except ValueError:
                seconds = math.nan
            if not 0 <= seconds <= DAY:
                default = getattr(cls, attribute)
                raise SettingsError(f"{name}={environ[name]!r} is not a number of seconds from 0 to {DAY} "
                                    f"(default {default:g}).")
            values[attribute] = seconds
        audio_format = environ.get(AUDIO_VARIABLE, "").strip().lower()
        if audio_format:
            if audio_format not in AUDIO_FORMATS:
                raise SettingsError(f"{AUDIO_VARIABLE}={environ[AUDIO_VARIABLE]!r} is not one of "
                                    f"{', '.join(AUDIO_FORMATS)} (default wav).")
            if audio_format == "mp3" and not mp3_available():
                raise SettingsError(f"{AUDIO_VARIABLE}=mp3 needs the MP3 encoder: "
                                    "pip install 'suno-stems-mcp[mp3]' (or leave it unset for WAV).")
            values["audio_format"] = audio_format
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

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
