"""A point in time a tool call must not outlive, measured on the monotonic clock."""

from __future__ import annotations

import time


class Deadline:
    def __init__(self, seconds: float) -> None:
        self._expires = time.monotonic() + max(0.0, seconds)

    @classmethod
    def at(cls, expires: float) -> Deadline:
        deadline = cls(0)
        deadline._expires = expires
        return deadline

    @property
    def expires(self) -> float:
        return self._expires

    def remaining(self) -> float:
        return max(0.0, self._expires - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def sooner(self, seconds: float) -> Deadline:
        """This deadline, or `seconds` from now if that comes first."""
        return Deadline.at(min(self._expires, time.monotonic() + max(0.0, seconds)))
