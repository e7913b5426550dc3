"""Money: one request meaning one thing is one key, one body, one job, 11 credits; a dead job is never handed
back as the answer; `reused` says whether anything new was charged, also in a fresh process that apiframe
answers from its cache."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from suno_stems_mcp.sandbox import ThreadedSandbox

from .support import SONG, connected, ok, settings_for

pytestmark = pytest.mark.anyio

ACTION = "POST /v2/music/suno/action"
HOOK = "https://localhost:9/stems"
"""Loopback, a port nobody serves: the sandbox's deliveries fail at once and reach no other machine."""


def _posts(running: ThreadedSandbox) -> list[Any]:
    return running.sandbox.requests("POST", "/v2/music/suno/action")


TRACK_1 = object()
"""Stands for the song's first track id, known once the sandbox runs."""


@pytest.mark.parametrize(("first", "second"), [
    ({"webhook_events": ["completed", "failed"]}, {"webhook_events": ["failed", "completed"]}),
    ({"webhook_events": ["completed", "failed"]}, {"webhook_events": ["completed", "failed", "completed"]}),
    ({"webhook_events": ["progress", "failed"]}, {"webhook_events": ["failed", "progress", "progress"]}),
    ({}, {"webhook_events": ["completed", "failed"]}),
    ({"webhook_events": ["failed", "completed"]}, {}),
    ({}, {"webhook_url": "https://LocalHost:9/stems"}),
    ({"webhook_url": "HTTPS://LOCALHOST:9/stems"}, {}),
    ({}, {"index": None, "track_id": TRACK_1}),
], ids=["order", "duplicate", "progress-order-duplicate", "default-then-spelled", "spelled-then-default",
        "host-case", "scheme-and-host-case", "index-then-its-track-id"])
async def test_the_same_webhook_said_another_way_is_one_key_one_body_one_job(
        live_sandbox: ThreadedSandbox, tmp_path: Path, first: dict[str, Any], second: dict[str, Any]) -> None:
    base = {"parent_job_id": SONG, "index": 1, "wait_seconds": 0, "webhook_url": HOOK}
    clip_1 = live_sandbox.sandbox.store.jobs[SONG].tracks[0].id
    second = {name: clip_1 if value is TRACK_1 else value for name, value in second.items()}
    before = live_sandbox.sandbox.credits()
    async with connected(settings_for(live_sandbox, tmp_path, download=False)) as client:
        one = ok(await client.call_tool("split_stems", {**base, **first}))
    async with connected(settings_for(live_sandbox, tmp_path, download=False)) as fresh:  # nothing remembered
        two = ok(await fresh.call_tool("split_stems", {**base, **second}))
    posts = _posts(live_sandbox)
    assert [p.status for p in posts] == [202, 202]  # no 409
    assert len({p.headers["idempotency-key"] for p in posts}) == 1
    assert len({p.body for p in posts}) == 1
    assert one["job_id"] == two["job_id"] and one["reused"] is False and two["reused"] is True
    assert live_sandbox.sandbox.counters.stems_jobs_created == 1
    assert live_sandbox.sandbox.counters.credits_charged == 11 and live_sandbox.sandbox.credits() == before - 11


async def _a_quick_split(running: ThreadedSandbox, tmp_path: Path, outcome: str) -> dict[str, Any]:
    """A split that is final a moment after it was made (well within the second a Date header can tell)."""
    running.sandbox.plan_next(outcome=outcome, error="Separation failed.", queued_for=0.05, runs_for=0.05,
                              kinds=("stems",))
    async with connected(settings_for(running, tmp_path)) as client:
        first = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 0}))
    assert first["reused"] is False
    return first


@pytest.mark.parametrize("age", [0.1, 3.5], ids=["a-moment-old", "seconds-old"])
async def test_a_cached_replay_of_a_failed_job_moves_on_to_the_next_attempt(
        live_sandbox: ThreadedSandbox, tmp_path: Path, age: float) -> None:
    failed = await _a_quick_split(live_sandbox, tmp_path, "FAILED")
    time.sleep(age)
    live_sandbox.sandbox.inject(ACTION, cached_replay=True, times=100)  # apiframe answers "QUEUED" from its cache
    async with connected(settings_for(live_sandbox, tmp_path)) as fresh:
        job = ok(await fresh.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 8}))
    assert job["job_id"] != failed["job_id"] and job["status"] == "COMPLETED", job
    assert job["reused"] is False  # a new job was charged
    keys = [p.headers["idempotency-key"] for p in _posts(live_sandbox)]
    assert keys[0] == keys[1] and keys[1].endswith(".1") and keys[2].endswith(".2")
    counters = live_sandbox.sandbox.counters
    assert counters.stems_jobs_created == 2 and counters.credits_charged - counters.credits_refunded == 11


@pytest.mark.parametrize("age", [0.1, 3.5], ids=["a-moment-old", "seconds-old"])
async def test_a_cached_replay_of_a_finished_job_is_reused_in_a_fresh_process(
        live_sandbox: ThreadedSandbox, tmp_path: Path, age: float) -> None:
    first = await _a_quick_split(live_sandbox, tmp_path, "COMPLETED")
    time.sleep(age)
    live_sandbox.sandbox.inject(ACTION, cached_replay=True, times=100)
    credits = live_sandbox.sandbox.credits()
    async with connected(settings_for(live_sandbox, tmp_path)) as fresh:
        again = ok(await fresh.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 8}))
    assert again["job_id"] == first["job_id"] and again["status"] == "COMPLETED" and again["reused"] is True
    assert "nothing new was charged" in again["next_step"]
    assert live_sandbox.sandbox.credits() == credits and live_sandbox.sandbox.counters.stems_jobs_created == 1


async def test_a_new_job_read_after_a_lag_is_not_taken_for_a_replay(live_sandbox: ThreadedSandbox,
                                                                     tmp_path: Path) -> None:
    """The job may be finished by the time a lagging read-back sees it: it is still the new job just paid for."""
    live_sandbox.sandbox.inject("GET /v2/jobs/*", status=404, times=3, new_jobs_only=True)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 8}))
    assert job["status"] == "COMPLETED" and job["reused"] is False
    assert live_sandbox.sandbox.counters.stems_jobs_created == 1


async def test_reused_is_false_for_a_new_job_and_true_for_a_repeat(live_sandbox: ThreadedSandbox,
                                                                  tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path, download=False)) as client:
        new = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 2, "wait_seconds": 0}))
        repeat = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 2, "wait_seconds": 0}))
    assert new["reused"] is False and repeat["reused"] is True and new["job_id"] == repeat["job_id"]
    assert live_sandbox.sandbox.counters.credits_charged == 11
