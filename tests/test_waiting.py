"""The poll schedule, on simulated jobs whose progress rises as a real job's would: it sees the end within a
second, and asks no more often than apiframe's own SDK schedule (2 s, x1.5, capped at 5 s)."""

from __future__ import annotations

import pytest

from suno_stems_mcp.apiframe import ApiJob
from suno_stems_mcp.core.waiting import PollSchedule

QUEUED_FOR = 1.0
CALL_WAIT = 40.0  # split_stems, then get_job, each waiting up to 40 s
CALL_GAP = 0.3  # the assistant's turn between two calls


def job_at(t: float, runs_for: float) -> ApiJob:
    if t < QUEUED_FOR:
        return ApiJob(id="j", status="QUEUED", progress=0)
    if t >= QUEUED_FOR + runs_for:
        return ApiJob(id="j", status="COMPLETED", progress=100)
    return ApiJob(id="j", status="PROCESSING", progress=max(1, int(100 * (t - QUEUED_FOR) / runs_for)))


def ours(runs_for: float) -> tuple[float, int]:
    """(seconds from completion to seeing it, GETs made) across split_stems + get_job calls."""
    schedule, t, gets = PollSchedule(), 0.0, 0
    first_call = True
    while True:
        call_ends = t + CALL_WAIT
        if first_call:  # split_stems: the POST answered QUEUED, so its first look is the schedule's
            job, first_call = ApiJob(id="j", status="QUEUED", progress=0), False
        else:  # get_job starts with a GET
            job = job_at(t, runs_for)
            gets += 1
        schedule.observe(t, job)
        while not job.done:
            delay = schedule.next_look(t, call_ends - t)
            if delay is None:
                break
            t += delay
            job = job_at(t, runs_for)
            gets += 1
            schedule.observe(t, job)
        if job.done:
            return t - (QUEUED_FOR + runs_for), gets
        t = max(t, call_ends) + CALL_GAP


def sdk(runs_for: float) -> tuple[float, int]:
    t, delay, gets = 0.0, 2.0, 0
    while True:
        t += delay
        gets += 1
        if job_at(t, runs_for).done:
            return t - (QUEUED_FOR + runs_for), gets
        delay = min(5.0, delay * 1.5)


@pytest.mark.parametrize("runs_for", [3, 5, 10, 20, 30, 45, 60, 90, 120, 200, 300, 600, 1200])
def test_the_end_is_seen_within_a_second_with_no_more_requests_than_the_sdk(runs_for: float) -> None:
    lag, gets = ours(runs_for)
    sdk_lag, sdk_gets = sdk(runs_for)
    assert 0 <= lag <= 1.0, (lag, sdk_lag)
    assert gets <= sdk_gets, (gets, sdk_gets)


def test_before_any_progress_it_grows_like_the_sdk() -> None:
    schedule = PollSchedule()
    assert [schedule.next_delay(now=0) for _ in range(5)] == [2.0, 3.0, 4.5, 5.0, 5.0]


def test_a_prediction_that_misses_falls_back_to_the_cap() -> None:
    schedule = PollSchedule()
    for t, progress in [(0, 10), (5, 20), (10, 30)]:
        schedule.observe(t, ApiJob(id="j", status="PROCESSING", progress=progress))
    assert schedule.next_delay(now=10) == 10.0  # trusted: the rate held; 70 s to go
    schedule.observe(15, ApiJob(id="j", status="PROCESSING", progress=80))  # suddenly much faster
    assert schedule.next_delay(now=15) <= 5.0


def test_near_the_end_it_closes_in_then_backs_off_if_the_estimate_was_wrong() -> None:
    schedule = PollSchedule()
    schedule.observe(0, ApiJob(id="j", status="PROCESSING", progress=50))
    schedule.observe(50, ApiJob(id="j", status="PROCESSING", progress=90))  # 0.8 %/s: the end is 61.25-62.5 s
    earliest, latest = schedule.end_window()  # type: ignore[misc]
    assert (earliest, latest) == (61.25, 62.5)
    assert schedule.next_delay(now=62) <= 1.0  # inside the window: short looks
    assert schedule.next_delay(now=80) > 1.0  # long past it: the estimate was wrong


def test_a_call_that_cannot_see_the_end_returns_without_a_last_look() -> None:
    schedule = PollSchedule()
    for t, progress in [(0, 1), (2, 3), (5, 6)]:
        schedule.observe(t, ApiJob(id="j", status="PROCESSING", progress=progress))
    assert schedule.next_look(now=5, left=3) is None  # ~95 s to go, 3 s left
    fresh = PollSchedule()
    assert fresh.next_look(now=0, left=1.5) == 1.5  # nothing known: take the last look at the deadline
