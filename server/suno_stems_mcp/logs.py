"""Logging: stderr only (stdout is the MCP protocol on stdio), secrets scrubbed from every line, and a flood of
one message (a client hammering the HTTP transport, say) cut down to a few lines and a count."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable

from .redaction import Redactor

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
BURST = 20
"""How many records of one message (by logger and format string) pass per window."""
WINDOW_SECONDS = 60.0


class SecretFilter(logging.Filter):
    """Replaces each secret, and any word holding a part of one, with a placeholder in every record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._redactor = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._redactor:
            return True
        message = record.getMessage()
        scrubbed = self._redactor.scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            clean = self._redactor.scrub(text)
            if clean != text:
                record.exc_info, record.exc_text = None, clean
        return True


class FloodFilter(logging.Filter):
    """At most BURST records of one message per window; the first record after a quiet spell says how many
    were dropped. Memory is bounded: the table is cleared whenever a window ends."""

    def __init__(self, burst: int = BURST, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._burst, self._window, self._clock = burst, window, clock
        self._started = clock()
        self._counts: dict[tuple[str, str], int] = {}
        self._dropped: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        if now - self._started >= self._window:
            self._started, self._counts = now, {}
        key = (record.name, str(record.msg))
        seen = self._counts.get(key, 0) + 1
        if seen > self._burst:
            if len(self._dropped) < 10_000:
                self._dropped[key] = self._dropped.get(key, 0) + 1
            return False
        if len(self._counts) < 10_000:
            self._counts[key] = seen
        dropped = self._dropped.pop(key, 0)
        if dropped:
            record.msg = f"{record.getMessage()} ({dropped} more like this were not logged)"
            record.args = None
        return True


def configure(level: str, secrets: Iterable[str] = ()) -> None:
    """One stderr handler on the root logger, at `level`, redacting `secrets` and damping floods."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(FloodFilter())
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "mcp.server.lowlevel.server"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
