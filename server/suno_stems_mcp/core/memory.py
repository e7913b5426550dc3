"""What a process remembers between calls. Only hints: a new process, or another replica, that knows none of
it still answers every call correctly, just with an extra request or two."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .waiting import PollSchedule

MEMORY_ITEMS = 10_000
"""How many entries of each kind a process remembers: enough for any session, bounded for a server that runs
for months."""

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A mapping that forgets its oldest entries beyond `limit`."""

    def __init__(self, limit: int = MEMORY_ITEMS) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._limit = limit

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __setitem__(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def setdefault(self, key: K, value: V) -> V:
        if key not in self._items:
            self[key] = value
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class SplitSource:
    """The track a stems job was made from, remembered so its files can be named after the song."""

    parent_job_id: str
    index: int | None
    track_id: str | None
    title: str | None


@dataclass
class Memory:
    sources: Recent[str, SplitSource] = field(default_factory=Recent)
    """stems job id → the track it split."""
    submitted_keys: Recent[str, bool] = field(default_factory=Recent)
    """Idempotency keys this process has already had answered: a repeat is a reuse."""
    schedules: Recent[str, PollSchedule] = field(default_factory=lambda: Recent(1000))
    """Each job's poll schedule, so a get_job continues where split_stems left off."""
    call_limits: Recent[str, float] = field(default_factory=lambda: Recent(1000))
    """client (name/version) → the shortest time after which it cancelled a call."""

    def cut_after(self, client: str, seconds: float) -> None:
        known = self.call_limits.get(client)
        self.call_limits[client] = seconds if known is None else min(known, seconds)

    def schedule_for(self, job_id: str) -> PollSchedule:
        return self.schedules.setdefault(job_id, PollSchedule())
