"""When to try again, and how long to wait first: full-jitter exponential backoff and `Retry-After`."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 0.25
    cap: float = 8.0
    max_attempts: int = 10
    request_timeout: float = 20.0
    connect_timeout: float = 5.0

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform between 0 and base·2^attempt, capped (attempt counts from 1)."""
        return random.uniform(0, min(self.cap, self.base * 2 ** attempt))


def is_retryable_status(status: int) -> bool:
    return status == 429 or (500 <= status <= 599 and status != 501)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or an HTTP date); None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        reference = datetime.now(timezone.utc).timestamp() if now is None else now
        seconds = when.timestamp() - reference
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)
