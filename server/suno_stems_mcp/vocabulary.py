"""The words this server and apiframe share, each named once: job statuses, the price, the stem ids."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    """A job's status as apiframe reports it (compared without case; an unknown one is kept as it is)."""

    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES

    @classmethod
    def known(cls, raw: str) -> JobStatus | None:
        try:
            return cls(raw.upper())
        except ValueError:
            return None


FINAL_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
DEAD_STATUSES = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
"""A job in one of these was refunded: a new attempt may be paid for."""

SPLIT_PRICE = 11
"""Credits apiframe charges for one stems split (refunded if it fails)."""

STEM_IDS = ("vocals", "instrumental")
"""The track ids of a stems job's two results, in apiframe's order."""

DEFAULT_WEBHOOK_EVENTS = ("completed", "failed")
"""What apiframe notifies when a webhook URL is given without events."""
WEBHOOK_EVENTS = ("progress", "completed", "failed")
