"""get_job through a real MCP client against the sandbox: reading, waiting, saving once, expiry, failures."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from suno_stems_mcp.sandbox import DEMO_KEY, ThreadedSandbox

from .support import (
    FAILED,
    SEEDED_STEMS,
    SONG,
    SONG_2,
    connected,
    error,
    files_under,
    ok,
    settings_for,
    wav_samples,
)

pytestmark = pytest.mark.anyio

UNKNOWN = "00000000-0000-4000-8000-000000000000"


# Jobs made straight at the sandbox, as another apiframe client (or an earlier server process) would. -------------

def submit(running: ThreadedSandbox, path: str, body: dict[str, Any]) -> str:
    answer = httpx.post(running.url + path, json=body, headers={"X-API-Key": DEMO_KEY}, timeout=10)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["jobId"])


def new_song(running: ThreadedSandbox, title: str) -> str:
    return submit(running, "/v2/music/generate", {"model": "suno", "prompt": f"{title}, a test song",
                                                  "sunoParams": {"title": title}})


def new_stems(running: ThreadedSandbox, parent: str, **track: Any) -> str:
    body = {"parentJobId": parent, "action": "stems", **(track or {"index": 1})}
    return submit(running, "/v2/music/suno/action", body)


def read_job(running: ThreadedSandbox, job_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{running.url}/v2/jobs/{job_id}", headers={"X-API-Key": DEMO_KEY}, timeout=10).json())


def finished(running: ThreadedSandbox, job_id: str) -> dict[str, Any]:
    """The job once final, read straight from the sandbox (fast-config jobs end within half a second)."""
    give_up = time.monotonic() + 5
    while time.monotonic() < give_up:
        job = read_job(running, job_id)
        if job["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def audio_fetches(running: ThreadedSandbox) -> list[str]:
    return [r.path for r in running.sandbox.requests("GET", "/cdn/audio")]


# Waiting ------------------------------------------------------------------------------------------------------

async def test_a_running_job_with_wait_seconds_0_returns_at_once_with_a_next_step(live_sandbox: ThreadedSandbox,
                                                                                  tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(runs_for=3.0)
    job_id = new_stems(live_sandbox, SONG)
    async with connected(settings_for(live_sandbox, tmp_path), client_name="claude-ai") as client:
        started = time.monotonic()
        job = ok(await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 0}))
        took = time.monotonic() - started
    assert took < 1.5, took
    assert (job["job_id"], job["done"], job["tracks"], job.get("completed_at")) == (job_id, False, [], None)
    assert job["status"] in ("QUEUED", "PROCESSING") and 0 <= job["progress"] < 100
    assert f"Call get_job with job_id={job_id} and wait_seconds=10" in job["next_step"]
    assert "Still splitting" in job["next_step"] and "no credits are charged" in job["next_step"]
    assert len(live_sandbox.sandbox.requests("GET", f"/v2/jobs/{job_id}")) == 1
    assert files_under(tmp_path) == []


async def test_with_wait_seconds_a_running_job_is_waited_for_and_saved(live_sandbox: ThreadedSandbox,
                                                                       tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(runs_for=2.0)
    job_id = new_stems(live_sandbox, SONG)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 8}))
    assert (job["status"], job["done"], job["progress"]) == ("COMPLETED", True, 100)
    folder = tmp_path / f"midnight-harbor-{job_id[:8]}"
    assert [t.get("file") for t in job["tracks"]] == [str(folder / "vocals.wav"), str(folder / "instrumental.wav")]
    assert files_under(tmp_path) == [folder / "instrumental.wav", folder / "vocals.wav"]


async def test_a_running_song_job_says_it_is_still_generating(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(runs_for=3.0, kinds=("song",))
    job_id = new_song(live_sandbox, "Slow Burner")
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": job_id}))
    assert job["done"] is False and job.get("source") is None
    assert "Still generating" in job["next_step"] and f"job_id={job_id}" in job["next_step"]


async def test_progress_is_reported_while_waiting_and_never_after(live_sandbox: ThreadedSandbox,
                                                                  tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(runs_for=3.0)
    job_id = new_stems(live_sandbox, SONG)
    seen: list[tuple[float, float | None, str | None]] = []
    late: list[float] = []
    returned = False

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))
        if returned:
            late.append(progress)

    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 8},
                                        progress_callback=on_progress))
        returned = True
        ok(await client.call_tool("get_job", {"job_id": job_id}))
        await anyio.sleep(0.5)
    assert job["status"] == "COMPLETED"
    progress = [p for p, _, _ in seen]
    assert len(seen) >= 2, seen
    assert progress == sorted(progress) and progress[-1] == 100
    assert all(total == 100 for _, total, _ in seen)
    assert all(message and message.startswith("Splitting") for _, _, message in seen), seen
    assert late == []


async def test_a_call_on_a_job_that_never_finishes_returns_within_max_wait(live_sandbox: ThreadedSandbox,
                                                                           tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(outcome="NEVER")
    job_id = new_stems(live_sandbox, SONG)
    async with connected(settings_for(live_sandbox, tmp_path, max_wait=2.0)) as client:
        started = time.monotonic()
        job = ok(await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 2}))
        took = time.monotonic() - started
        started = time.monotonic()
        above = ok(await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 30}))
        took_above = time.monotonic() - started
    assert took_above < 6, f"a wait past SUNO_STEMS_MAX_WAIT is cut to it, yet the call took {took_above:.1f} s"
    assert above["done"] is False and f"job_id={job_id}" in above["next_step"]
    assert (job["done"], job["status"]) == (False, "PROCESSING")
    assert 1.5 <= took < 6, took
    assert f"job_id={job_id}" in job["next_step"]


async def test_files_that_download_too_slowly_are_left_for_the_next_call_within_the_bound(
        live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.inject("GET /cdn/audio/*", delay=30, times=2)
    async with connected(settings_for(live_sandbox, tmp_path, max_wait=2.0)) as client:
        started = time.monotonic()
        slow = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
        took = time.monotonic() - started
        later = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
    assert took < 6, took
    assert (slow["status"], [t.get("file") for t in slow["tracks"]]) == ("COMPLETED", [None, None])
    assert "only 0 of 2 files were saved" in slow["next_step"] and f"job_id={SEEDED_STEMS}" in slow["next_step"]
    assert all(Path(t.get("file")).is_file() for t in later["tracks"])
    assert len(files_under(tmp_path)) == 2  # no partial file is left behind by the cut-off downloads


# Files ---------------------------------------------------------------------------------------------------------

async def test_a_finished_stems_job_is_saved_in_a_folder_named_after_its_source_song(
        live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    song = new_song(live_sandbox, "Café Blue Dawn / Ferry")
    clip_2 = finished(live_sandbox, song)["result"]["tracks"][1]["id"]
    job_id = new_stems(live_sandbox, song, index=2)
    finished(live_sandbox, job_id)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": job_id}))
    folder = tmp_path / f"cafe-blue-dawn-ferry-{job_id[:8]}"
    assert files_under(tmp_path) == [folder / "instrumental.wav", folder / "vocals.wav"]
    assert [(t["id"], t.get("file")) for t in job["tracks"]] == [
        ("vocals", str(folder / "vocals.wav")), ("instrumental", str(folder / "instrumental.wav"))]
    vocals, instrumental = (wav_samples((folder / name).read_bytes()) for name in ("vocals.wav", "instrumental.wav"))
    assert len(vocals) == len(instrumental) > 0 and any(vocals) and any(instrumental)
    assert job.get("source")["parent_job_id"] == song and job.get("source")["index"] == 2
    assert job.get("source")["track_id"] in (None, clip_2)
    assert str(folder) in job["next_step"] and "while a sandbox process runs" in job["next_step"]


async def test_a_stems_job_asked_for_by_track_id_names_that_track_as_its_source(live_sandbox: ThreadedSandbox,
                                                                               tmp_path: Path) -> None:
    clip_1 = read_job(live_sandbox, SONG)["result"]["tracks"][0]["id"]
    job_id = new_stems(live_sandbox, SONG, trackId=clip_1)
    finished(live_sandbox, job_id)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": job_id}))
    assert job.get("source")["parent_job_id"] == SONG and job.get("source")["track_id"] == clip_1
    assert Path(job["tracks"][0].get("file")).parent.name == f"midnight-harbor-{job_id[:8]}"


async def test_the_seeded_stems_job_is_still_named_after_its_source_song(live_sandbox: ThreadedSandbox,
                                                                         tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
    folder = tmp_path / f"midnight-harbor-{SEEDED_STEMS[:8]}"
    assert [t.get("file") for t in job["tracks"]] == [str(folder / "vocals.wav"), str(folder / "instrumental.wav")]
    assert files_under(tmp_path) == [folder / "instrumental.wav", folder / "vocals.wav"]
    assert all(len(wav_samples(Path(t.get("file")).read_bytes())) > 0 for t in job["tracks"])
    clip_1 = live_sandbox.sandbox.store.jobs[SONG].tracks[0].id  # learnt from the parent when naming the folder
    assert job.get("source") == {"parent_job_id": SONG, "index": 1, "track_id": clip_1, "title": "Midnight Harbor"}
    assert (job["status"], job["done"], job.get("credit_cost"), job["sandbox"]) == ("COMPLETED", True, 11, True)


async def test_a_song_jobs_tracks_are_saved_as_numbered_files(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": SONG}))
    folder = tmp_path / f"midnight-harbor-{SONG[:8]}"
    assert [t.get("file") for t in job["tracks"]] == [str(folder / "1-midnight-harbor.wav"),
                                                 str(folder / "2-midnight-harbor.wav")]
    assert files_under(tmp_path) == [folder / "1-midnight-harbor.wav", folder / "2-midnight-harbor.wav"]
    first, second = (wav_samples(Path(t.get("file")).read_bytes()) for t in job["tracks"])
    assert len(first) > 0 and first != second
    assert job.get("source") is None


async def test_a_saved_file_is_not_fetched_again_and_a_deleted_one_is(live_sandbox: ThreadedSandbox,
                                                                      tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        first = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
        assert len(audio_fetches(live_sandbox)) == 2
        second = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
        assert len(audio_fetches(live_sandbox)) == 2
        assert [t.get("file") for t in second["tracks"]] == [t.get("file") for t in first["tracks"]]
        vocals = Path(first["tracks"][0].get("file"))
        vocals.unlink()
        third = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
    fetches = audio_fetches(live_sandbox)
    assert len(fetches) == 3 and fetches[-1] == f"/cdn/audio/{SEEDED_STEMS}-0.wav"
    assert vocals.is_file() and [t.get("file") for t in third["tracks"]] == [t.get("file") for t in first["tracks"]]


async def test_two_calls_at_once_fetch_each_file_once(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    results: list[dict[str, Any]] = []
    async with connected(settings_for(live_sandbox, tmp_path)) as client:

        async def read() -> None:
            results.append(ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS})))

        async with anyio.create_task_group() as group:
            group.start_soon(read)
            group.start_soon(read)
    assert sorted(audio_fetches(live_sandbox)) == [f"/cdn/audio/{SEEDED_STEMS}-{n}.wav" for n in (0, 1)]
    assert [t.get("file") for t in results[0]["tracks"]] == [t.get("file") for t in results[1]["tracks"]]
    assert all(t.get("file") for t in results[0]["tracks"]) and len(files_under(tmp_path)) == 2


async def test_a_new_server_process_does_not_fetch_saved_files_again(live_sandbox: ThreadedSandbox,
                                                                     tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        first = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
    async with connected(settings_for(live_sandbox, tmp_path)) as restarted:
        again = ok(await restarted.call_tool("get_job", {"job_id": SEEDED_STEMS}))
    assert len(audio_fetches(live_sandbox)) == 2
    assert [t.get("file") for t in again["tracks"]] == [t.get("file") for t in first["tracks"]]


async def test_download_false_returns_the_links_only(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS, "download": False}))
    assert [t.get("file") for t in job["tracks"]] == [None, None]
    assert all(t["audio_url"].startswith(live_sandbox.url + "/cdn/audio/") for t in job["tracks"])
    assert "audio_url links" in job["next_step"] and "while a sandbox process runs" in job["next_step"]
    assert "download=true" in job["next_step"]
    assert audio_fetches(live_sandbox) == [] and files_under(tmp_path) == []


async def test_the_server_setting_download_false_is_the_default(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path, download=False)) as client:
        links = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
        saved = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS, "download": True}))
    assert [t.get("file") for t in links["tracks"]] == [None, None]
    assert all(Path(t.get("file")).is_file() for t in saved["tracks"])


# Expiry --------------------------------------------------------------------------------------------------------

async def test_an_expired_job_downloads_nothing_and_says_split_stems_makes_new_files(
        live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    job_id = new_stems(live_sandbox, SONG)
    finished(live_sandbox, job_id)
    live_sandbox.sandbox.store.expire(job_id)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": job_id}))
    assert (job["status"], job["done"], job["expired"]) == ("COMPLETED", True, True)
    assert [t.get("file") for t in job["tracks"]] == [None, None]
    assert audio_fetches(live_sandbox) == [] and files_under(tmp_path) == []
    assert "deleted" in job["next_step"] and "call split_stems" in job["next_step"]
    assert "still in" not in job["next_step"]


async def test_files_saved_before_expiry_are_still_reported_with_where_they_are(live_sandbox: ThreadedSandbox,
                                                                                tmp_path: Path) -> None:
    job_id = new_stems(live_sandbox, SONG)
    finished(live_sandbox, job_id)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        saved = ok(await client.call_tool("get_job", {"job_id": job_id}))
        live_sandbox.sandbox.store.expire(job_id)
        later = ok(await client.call_tool("get_job", {"job_id": job_id}))
    folder = tmp_path / f"midnight-harbor-{job_id[:8]}"
    assert later["expired"] is True
    assert [t.get("file") for t in later["tracks"]] == [t.get("file") for t in saved["tracks"]] == [
        str(folder / "vocals.wav"), str(folder / "instrumental.wav")]
    assert f"still in {folder}" in later["next_step"]
    assert "split_stems" not in later["next_step"]  # both stems are saved: nothing to pay for again
    assert len(audio_fetches(live_sandbox)) == 2


async def test_files_saved_before_expiry_are_found_by_a_new_server_process(live_sandbox: ThreadedSandbox,
                                                                           tmp_path: Path) -> None:
    job_id = new_stems(live_sandbox, SONG, index=2)
    finished(live_sandbox, job_id)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        saved = ok(await client.call_tool("get_job", {"job_id": job_id}))
    live_sandbox.sandbox.store.expire(job_id)
    async with connected(settings_for(live_sandbox, tmp_path)) as restarted:
        later = ok(await restarted.call_tool("get_job", {"job_id": job_id}))
    assert later["expired"] is True
    assert [t.get("file") for t in later["tracks"]] == [t.get("file") for t in saved["tracks"]]
    assert all(t.get("file") for t in later["tracks"])


# Final states other than success: returned, not raised ---------------------------------------------------------

async def test_a_failed_job_is_returned_with_its_error_and_refund(live_sandbox: ThreadedSandbox,
                                                                  tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(outcome="FAILED", error="boom")
    job_id = new_stems(live_sandbox, SONG)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        result = await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 5})
    job = ok(result)
    assert (job["status"], job.get("error"), job.get("credit_cost"), job["done"]) == ("FAILED", "boom", 0, True)
    assert job["tracks"] == [] and job["expired"] is False
    assert "failed: boom" in job["next_step"] and "refunded" in job["next_step"]
    assert files_under(tmp_path) == []


async def test_a_cancelled_job_is_returned_with_its_refund(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(outcome="NEVER")
    job_id = new_stems(live_sandbox, SONG)
    live_sandbox.sandbox.store.cancel(job_id)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 5}))
    assert (job["status"], job.get("credit_cost"), job["done"], job["tracks"]) == ("CANCELLED", 0, True, [])
    assert "cancelled" in job["next_step"] and "refunded" in job["next_step"]
    assert "split_stems" in job["next_step"]


async def test_a_failed_jobs_next_step_reads_as_one_clean_sentence(live_sandbox: ThreadedSandbox,
                                                                   tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(outcome="FAILED")  # the sandbox's default error ends with a period
    job_id = new_stems(live_sandbox, SONG)
    finished(live_sandbox, job_id)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": job_id}))
    assert job.get("error").endswith(".")
    assert ".." not in job["next_step"], job["next_step"]


@pytest.mark.parametrize(("job_id", "arguments", "expire", "misleading"), [
    (FAILED, {}, False, "Call split_stems again to retry"),
    (SONG, {"download": False}, False, "the stems are at the audio_url links"),
    (SONG_2, {}, True, "To get the stems again"),
], ids=["failed-song", "song-links", "expired-song"])
async def test_a_song_jobs_next_step_does_not_talk_about_its_stems(live_sandbox: ThreadedSandbox, tmp_path: Path,
                                                                   job_id: str, arguments: dict[str, Any],
                                                                   expire: bool, misleading: str) -> None:
    if expire:
        live_sandbox.sandbox.store.expire(job_id)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": job_id, **arguments}))
    assert job.get("source") is None  # a song job, not a split
    assert misleading not in job["next_step"], job["next_step"]


# Problems with the call itself ---------------------------------------------------------------------------------

async def test_an_unknown_job_id_is_an_error_that_mentions_list_tracks(live_sandbox: ThreadedSandbox,
                                                                       tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("get_job", {"job_id": UNKNOWN}))
    assert f"There is no job {UNKNOWN}" in message and "call list_tracks" in message
    assert DEMO_KEY not in message


async def test_an_unknown_argument_is_refused_with_the_valid_ones_and_nothing_is_sent(
        live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("get_job", {"job_id": SONG, "jobId": SONG}))
    assert "there is no argument 'jobId'" in message
    assert "the arguments are: job_id, wait_seconds, download" in message
    assert live_sandbox.sandbox.requests() == []


@pytest.mark.parametrize(("arguments", "says"), [
    ({"job_id": "job-1"}, "job_id: must be an apiframe job id"),
    ({}, "job_id: required"),
    ({"job_id": SONG, "wait_seconds": -1}, "wait_seconds: must be at least 0 (got -1)"),
])
async def test_bad_arguments_are_explained_and_nothing_is_sent(live_sandbox: ThreadedSandbox, tmp_path: Path,
                                                               arguments: dict[str, Any], says: str) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("get_job", arguments))
    assert "Invalid arguments for get_job" in message and says in message
    assert live_sandbox.sandbox.requests() == []


async def test_the_next_step_suggests_the_wait_this_client_gets(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(runs_for=30.0)
    job_id = new_stems(live_sandbox, SONG)
    async with connected(settings_for(live_sandbox, tmp_path, max_wait=45.0)) as framework:  # not known for long calls
        started = time.monotonic()
        short = ok(await framework.call_tool("get_job", {"job_id": job_id, "wait_seconds": 40}))
        took = time.monotonic() - started
    assert f"Call get_job with job_id={job_id} and wait_seconds=4" in short["next_step"]
    assert 3.5 <= took < 5.0, f"the call held {took:.1f} s: it should hold its whole short wait, and no more"
    async with connected(settings_for(live_sandbox, tmp_path, max_wait=45.0), client_name="claude-ai") as host:
        long = ok(await host.call_tool("get_job", {"job_id": job_id, "wait_seconds": 0}))
    assert f"Call get_job with job_id={job_id} and wait_seconds=45" in long["next_step"]
