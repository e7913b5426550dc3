"""Waiting for a job: poll `GET /v2/jobs/{id}` on a schedule that aims at the job's likely end.

The schedule starts like apiframe's own SDK (a first look after 2 s, growing ×1.5 to a 5 s cap). Once the job
reports rising progress, its rate gives an estimate of when it will finish:
- the next look is aimed just after that moment, so a finished job is seen within a fraction of a second
  instead of up to 5 s late;
- while the estimate keeps coming true (each look finds the progress it predicted), looks far from the end
  may stretch to 10 s, which pays for the precise last look; a prediction that misses falls back to the cap;
- a call that cannot see the end before its deadline holds its wait anyway (reporting progress) and looks
  once more at its end: an answer at once would only make the caller ask again.
The schedule belongs to the job, not the call, so a get_job that continues a split_stems picks up where it
left off instead of starting over.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import anyio

from ..apiframe import ApiJob
from ..deadline import Deadline
from ..vocabulary import JobStatus

if TYPE_CHECKING:
    from ..apiframe.client import ApiframeClient

log = logging.getLogger(__name__)

OnUpdate = Callable[[ApiJob], Awaitable[None]]
RUNNING = (JobStatus.QUEUED, JobStatus.PROCESSING)


class PollSchedule:
    def __init__(self, first: float = 2.0, factor: float = 1.5, cap: float = 5.0, stretch: float = 10.0,
                 floor: float = 0.5, closing_step: float = 1.0, margin: float = 0.25, tolerance: float = 4.0) -> None:
        self.first, self.factor, self.cap, self.stretch = first, factor, cap, stretch
        self.floor, self.closing_step, self.margin, self.tolerance = floor, closing_step, margin, tolerance
        self._plain = first
        self._start: tuple[float, int] | None = None
        self._last: tuple[float, int] | None = None
        self._trusted = False

    def observe(self, at: float, job: ApiJob) -> None:
        if job.state is not JobStatus.PROCESSING or job.progress is None:
            return
        predicted = self.progress_at(at)
        self._trusted = predicted is not None and abs(predicted - job.progress) <= self.tolerance
        point = (at, job.progress)
        if self._start is None or point[1] < self._start[1]:
            self._start, self._trusted = point, False
        self._last = point

    def progress_at(self, at: float) -> float | None:
        rate = self._rate()
        if rate is None or self._last is None:
            return None
        return self._last[1] + rate * (at - self._last[0])

    def _rate(self) -> float | None:
        if self._start is None or self._last is None:
            return None
        (t0, p0), (t1, p1) = self._start, self._last
        if p1 <= p0 or t1 <= t0:
            return None
        return (p1 - p0) / (t1 - t0)

    def end_window(self) -> tuple[float, float] | None:
        """(earliest, latest) monotonic time the job should reach 100%. Progress is reported as a whole number,
        so the true value at the last look lay anywhere up to one more: the end lies within one percent's time."""
        rate = self._rate()
        if rate is None or self._last is None:
            return None
        t1, p1 = self._last
        return t1 + max(0, 99 - p1) / rate, t1 + (100 - p1) / rate

    def next_delay(self, now: float | None = None) -> float:
        """Seconds until the next look."""
        now = time.monotonic() if now is None else now
        plain = self._plain
        self._plain = min(self.cap, self._plain * self.factor)
        window = self.end_window()
        if window is None:
            return plain
        earliest, latest = window
        if now < earliest:
            until = earliest - now + self.margin
            longest = self.stretch if self._trusted else self.cap
            if until > longest:
                # Far from the end: at most `longest`, never landing just short of the end, so the look that
                # matters is the aimed one.
                return max(self.floor, min(longest, until - min(longest, until / 2)))
            return max(self.floor, until)
        if now <= latest + self.cap:
            return max(self.floor, min(self.closing_step, (latest - earliest) / 4))  # closing in on the end
        return plain  # well past the estimate: it was wrong, so fall back to the plain schedule

    def next_look(self, now: float, left: float) -> float | None:
        """Seconds until the next look, or None when the call should return now (its time is up, or the job
        cannot be done before it is)."""
        if left <= 0:
            return None
        delay = self.next_delay(now)
        if delay > left:
            window = self.end_window()
            if window is not None and window[0] > now + left:
                return None
            delay = left
        return delay


async def wait_for(
    client: ApiframeClient,
    job: ApiJob,
    *,
    until: Deadline,
    call: Deadline,
    on_update: OnUpdate,
    schedule: PollSchedule | None = None,
) -> ApiJob:
    """Poll until the job is final (or in a status this server does not know: nothing to wait for) or `until`
    passes, holding the whole wait even when the job cannot end within it (an instant answer makes a model
    spend its turns); each request is bounded by the call's deadline."""
    schedule = schedule or PollSchedule()
    schedule.observe(time.monotonic(), job)
    await on_update(job)
    while job.state in RUNNING:
        left = until.remaining()
        delay = schedule.next_look(time.monotonic(), left)
        if delay is None:
            if left <= 0:
                break
            delay = left  # it cannot end in time: hold the wait anyway, so a caller does not spin through its turns
        await anyio.sleep(delay)
        job = await client.get_job(job.id, call)
        schedule.observe(time.monotonic(), job)
        await on_update(job)
    return job
