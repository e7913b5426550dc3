"""Waiting for a job: poll `GET /v2/jobs/{id}` on a schedule that aims at the job's likely end.

The schedule starts like apiframe's own SDK (a first look after ~1.5 s, growing ×1.5 to a 5 s cap). Once the
job reports rising progress, the rate gives an estimate of when it will finish, and the next look is aimed
just after that moment (never further out than the cap), so a finished job is seen within a fraction of a
second instead of up to 5 s late, without polling more often than the plain schedule would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio

from .apiframe import ApiframeClient, ApiJob
from .deadline import Deadline

log = logging.getLogger("server.waiting")

OnUpdate = Callable[[ApiJob], Awaitable[None]]


class PollSchedule:
    def __init__(self, first: float = 1.5, factor: float = 1.5, cap: float = 5.0, floor: float = 0.5,
                 margin: float = 0.25) -> None:
        self.first, self.factor, self.cap, self.floor, self.margin = first, factor, cap, floor, margin
        self._plain = first
        self._start: tuple[float, int] | None = None
        self._last: tuple[float, int] | None = None
        self._missed = False

    def observe(self, at: float, job: ApiJob) -> None:
        if job.status != "PROCESSING" or job.progress is None:
            return
        point = (at, job.progress)
        if self._start is None or point[1] < self._start[1]:
            self._start = point
        self._last = point

    def next_delay(self) -> float:
        """Seconds until the next look."""
        plain = self._plain
        self._plain = min(self.cap, self._plain * self.factor)
        end = self.expected_end()
        if end is None:
            return plain
        until_end = end - time.monotonic() + self.margin
        if until_end <= 0:
            # Past the estimate and still running: look again soon, but back off if that keeps missing.
            delay = self.floor if not self._missed else min(self.cap, plain)
            self._missed = True
            return delay
        return max(self.floor, min(self.cap, until_end))

    def expected_end(self) -> float | None:
        """Monotonic time the job should reach 100%, from its progress rate so far."""
        if self._start is None or self._last is None:
            return None
        (t0, p0), (t1, p1) = self._start, self._last
        if p1 <= p0 or t1 <= t0:
            return None
        rate = (p1 - p0) / (t1 - t0)
        # Progress is reported as a whole number, so the true value may be up to 1 more than p1.
        return t1 + (100 - p1) / rate


async def wait_for(
    client: ApiframeClient,
    job: ApiJob,
    *,
    until: Deadline,
    call: Deadline,
    on_update: OnUpdate,
    schedule: PollSchedule | None = None,
) -> ApiJob:
    """Poll until the job is final or `until` passes; each request is bounded by the call's deadline."""
    schedule = schedule or PollSchedule()
    schedule.observe(time.monotonic(), job)
    await on_update(job)
    while not job.done:
        left = until.remaining()
        if left <= 0:
            break
        await anyio.sleep(min(schedule.next_delay(), left))
        job = await client.get_job(job.id, call)
        schedule.observe(time.monotonic(), job)
        await on_update(job)
    return job
