"""split_stems through a real MCP client against the sandbox: the split, its money, its waiting, its files."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from suno_stems_mcp.sandbox import DEMO_KEY, ThreadedSandbox

from .support import (
    FAILED,
    PROCESSING,
    SEEDED_STEMS,
    SONG,
    connected,
    error,
    files_under,
    ok,
    settings_for,
    wav_samples,
)

pytestmark = pytest.mark.anyio


async def test_a_split_is_saved_and_its_stems_add_up_to_the_song(live_sandbox: ThreadedSandbox,
                                                                 tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 2}))
    assert (job["status"], job["done"], job["progress"], job["reused"], job["sandbox"]) == (
        "COMPLETED", True, 100, False, True)
    assert job.get("credit_cost") == 11 and job.get("error") is None and job["expired"] is False
    assert job.get("source")["parent_job_id"] == SONG and job.get("source")["index"] == 2
    folder = tmp_path / f"midnight-harbor-{job['job_id'][:8]}"
    assert [t["id"] for t in job["tracks"]] == ["vocals", "instrumental"]
    assert [t.get("file") for t in job["tracks"]] == [str(folder / "vocals.wav"), str(folder / "instrumental.wav")]
    assert files_under(tmp_path) == [folder / "instrumental.wav", folder / "vocals.wav"]
    assert str(folder) in job["next_step"]
    song = httpx.get(f"{live_sandbox.url}/v2/jobs/{SONG}", headers={"X-API-Key": DEMO_KEY}).json()
    mix = wav_samples(httpx.get(song["result"]["tracks"][1]["audioUrl"]).content)
    vocals, instrumental = (wav_samples((folder / name).read_bytes()) for name in ("vocals.wav", "instrumental.wav"))
    assert len(mix) == len(vocals) and all(v + i == m for v, i, m in zip(vocals, instrumental, mix, strict=False))
    assert live_sandbox.sandbox.counters.stems_jobs_created == 1
    assert live_sandbox.sandbox.counters.credits_charged == 11


async def test_the_request_is_exactly_the_documented_body_with_a_derived_key(live_sandbox: ThreadedSandbox,
                                                                             tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path, download=False)) as client:
        ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 0}))
        ok(await client.call_tool("split_stems", {
            "parent_job_id": SONG, "index": 2, "wait_seconds": 0,
            "webhook_url": "https://hooks.example.com/stems", "webhook_events": ["completed"]}))
    posts = live_sandbox.sandbox.requests("POST", "/v2/music/suno/action")
    clip_1, clip_2 = (t["id"] for t in httpx.get(f"{live_sandbox.url}/v2/jobs/{SONG}",
                                                 headers={"X-API-Key": DEMO_KEY}).json()["result"]["tracks"])
    assert posts[0].json() == {"parentJobId": SONG, "action": "stems", "trackId": clip_1}
    assert posts[1].json() == {"parentJobId": SONG, "action": "stems", "trackId": clip_2,
                               "webhookUrl": "https://hooks.example.com/stems", "webhookEvents": ["completed"]}
    keys = [p.headers["idempotency-key"] for p in posts]
    assert len(set(keys)) == 2 and all(len(k) <= 255 for k in keys)


async def test_a_repeat_by_index_or_track_id_is_reused_and_free(live_sandbox: ThreadedSandbox,
                                                               tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        first = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1}))
        tracks = ok(await client.call_tool("list_tracks", {"job_id": SONG}))["tracks"]
        again = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "track_id": tracks[0]["track_id"]}))
    async with connected(settings_for(live_sandbox, tmp_path)) as restarted:  # a new process knows nothing
        later = ok(await restarted.call_tool("split_stems", {"parent_job_id": SONG, "index": 1}))
    assert first["reused"] is False and again["reused"] is True and later["reused"] is True
    assert first["job_id"] == again["job_id"] == later["job_id"]
    assert "nothing new was charged" in again["next_step"]
    assert [t.get("file") for t in later["tracks"]] == [t.get("file") for t in first["tracks"]]
    assert live_sandbox.sandbox.counters.stems_jobs_created == 1
    assert live_sandbox.sandbox.counters.credits_charged == 11


async def test_a_long_split_returns_within_wait_seconds_and_get_job_finishes_it(live_sandbox: ThreadedSandbox,
                                                                               tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(runs_for=3.0)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        started = time.monotonic()
        running = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 1}))
        took = time.monotonic() - started
        assert running["done"] is False and running["status"] in ("QUEUED", "PROCESSING")
        assert f"get_job with job_id={running['job_id']}" in running["next_step"]
        assert "no credits are charged" in running["next_step"]
        assert all(t.get("file") is None for t in running["tracks"])
        assert took < 4, took
        done = ok(await client.call_tool("get_job", {"job_id": running["job_id"], "wait_seconds": 8}))
    assert done["status"] == "COMPLETED" and all(Path(t.get("file")).is_file() for t in done["tracks"])
    assert done.get("source") == running.get("source")


async def test_progress_is_reported_while_waiting_and_never_after(live_sandbox: ThreadedSandbox,
                                                                  tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(runs_for=3.0)
    seen: list[tuple[float, float | None, str | None]] = []
    returned = False
    late: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))
        if returned:
            late.append(progress)

    async with connected(settings_for(live_sandbox, tmp_path), client_name="claude-ai") as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 8},
                                        progress_callback=on_progress))
        returned = True
        ok(await client.call_tool("list_tracks", {"job_id": SONG}))
    assert job["status"] == "COMPLETED"
    progress = [p for p, _, _ in seen]
    assert len(seen) >= 3 and progress == sorted(progress) and progress[-1] == 100
    assert all(total == 100 and message for _, total, message in seen)
    assert late == []


async def test_a_failed_split_is_returned_with_its_error_and_a_retry_pays_once_more(
        live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(outcome="FAILED", error="Separation failed: source too quiet.")
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        failed = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1}))
        assert (failed["status"], failed["done"], failed.get("credit_cost")) == ("FAILED", True, 0)
        assert failed.get("error") == "Separation failed: source too quiet."
        assert "refunded" in failed["next_step"] and "split_stems again" in failed["next_step"]
        retried = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1}))
        again = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1}))
    assert retried["status"] == "COMPLETED" and retried["job_id"] != failed["job_id"] and retried["reused"] is False
    assert again["job_id"] == retried["job_id"] and again["reused"] is True
    counters = live_sandbox.sandbox.counters
    assert (counters.stems_jobs_created, counters.credits_charged, counters.credits_refunded) == (2, 22, 11)


async def test_a_cancelled_split_moves_on_to_a_new_attempt(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(outcome="NEVER")
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        stuck = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 0}))
        live_sandbox.sandbox.store.cancel(stuck["job_id"])
        fresh = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1}))
    assert fresh["job_id"] != stuck["job_id"] and fresh["status"] == "COMPLETED"
    assert live_sandbox.sandbox.counters.stems_jobs_created == 2


async def test_download_false_returns_the_links_only(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "download": False}))
    assert all(t.get("file") is None and t["audio_url"] for t in job["tracks"])
    assert "while a sandbox process runs" in job["next_step"] and files_under(tmp_path) == []


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ({"parent_job_id": SONG}, "exactly one of index"),
        ({"parent_job_id": SONG, "index": 1, "track_id": "x"}, "exactly one of index"),
        ({"parent_job_id": SONG, "index": 3}, "index: must be one of 1, 2 (got 3)"),
        ({"parent_job_id": SONG, "index": True}, "index: must be an integer (got True)"),
        ({"parent_job_id": SONG, "index": 1, "wait_seconds": "5"}, "wait_seconds: must be an integer"),
        ({"parent_job_id": "song-1", "index": 1}, "must be an apiframe job id"),
        ({"index": 1}, "parent_job_id: required"),
        ({"parent_job_id": SONG, "index": 1, "wait_seconds": -1}, "wait_seconds"),
        ({"parent_job_id": SONG, "index": 1, "webhook_url": "http://hooks.example.com/x"}, "https://"),
        ({"parent_job_id": SONG, "index": 1, "webhook_events": ["completed"]}, "needs a webhook_url"),
        ({"parent_job_id": SONG, "index": 1, "webhook_url": "https://h.example", "webhook_events": []},
         "webhook_events"),
        ({"parent_job_id": SONG, "index": 1, "webhook_url": "https://h.example", "webhook_events": ["done"]},
         "webhook_events"),
        ({"parent_job_id": SONG, "index": 1, "trackId": "x"}, "there is no argument 'trackId'"),
        ({"parent_job_id": SONG, "track_id": ""}, "track_id"),
    ],
)
async def test_bad_arguments_are_explained_and_send_nothing(live_sandbox: ThreadedSandbox, tmp_path: Path,
                                                            arguments: dict[str, object], says: str) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("split_stems", arguments))
    assert says in message
    assert live_sandbox.sandbox.requests(path_prefix="/v2") == []


@pytest.mark.parametrize(
    ("parent", "arguments", "says"),
    [
        ("00000000-0000-4000-8000-000000000000", {"index": 1}, "Call list_tracks"),
        (SEEDED_STEMS, {"index": 1}, "is a stems job"),
        (PROCESSING, {"index": 1}, "not finished yet"),
        (FAILED, {"index": 1}, "FAILED"),
        (SONG, {"track_id": "no-such-clip"}, "Its tracks are: index 1: track_id"),
    ],
)
async def test_a_parent_that_cannot_be_split_is_refused_before_anything_is_charged(
        live_sandbox: ThreadedSandbox, tmp_path: Path, parent: str, arguments: dict[str, object], says: str) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("split_stems", {"parent_job_id": parent, **arguments}))
    assert says in message and "Nothing was submitted or charged" in message
    assert live_sandbox.sandbox.requests("POST") == []
    assert live_sandbox.sandbox.counters.credits_charged == 0


async def test_the_default_wait_is_cut_to_a_lower_limit(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(outcome="NEVER")
    async with connected(settings_for(live_sandbox, tmp_path, max_wait=1.0)) as client:
        started = time.monotonic()
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1}))
    assert job["done"] is False and time.monotonic() - started < 5


async def test_only_the_key_header_carries_the_key(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1}))
    requests = live_sandbox.sandbox.requests()
    api = [r for r in requests if r.path.startswith("/v2/")]
    files = [r for r in requests if r.path.startswith("/cdn/")]
    assert api and files and len(files) == 2
    assert all(r.headers.get("x-api-key") == DEMO_KEY for r in api)
    assert all("x-api-key" not in r.headers for r in files)
    for r in requests:
        others = {k: v for k, v in r.headers.items() if k != "x-api-key"}
        assert DEMO_KEY not in r.path + r.query + str(others) + r.body.decode(errors="replace")
    assert r.headers["user-agent"].startswith("suno-stems-mcp/")
    assert DEMO_KEY not in str(job)


async def test_in_the_sandbox_a_webhook_can_reach_a_local_receiver(live_sandbox: ThreadedSandbox,
                                                                   tmp_path: Path) -> None:
    from .test_sandbox_webhooks import Receiver

    receiver = Receiver()
    try:
        async with connected(settings_for(live_sandbox, tmp_path, download=False)) as client:
            job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1,
                                                            "webhook_url": receiver.url}))
        completed = receiver.wait_for("completed")
    finally:
        receiver.server.shutdown()
    assert completed["jobId"] == job["job_id"]
    async with connected(settings_for(live_sandbox, tmp_path, sandbox=False)) as client:
        message = error(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1,
                                                               "webhook_url": receiver.url}))
    assert "https://" in message
