"""When apiframe misbehaves or the request cannot be served: one job at most, a clear ToolError, nothing lost."""

from __future__ import annotations

import os
import socket
import stat
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from suno_stems_mcp.sandbox import DEMO_KEY, INACTIVE_KEY, ThreadedSandbox

from .support import SONG, connected, error, files_under, ok, settings_for

pytestmark = pytest.mark.anyio

SPLIT = {"parent_job_id": SONG, "index": 1}


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503, "body": "json"},
        {"status": 502, "body": "html"},
        {"status": 500, "body": "empty"},
        {"drop": "before"},
        {"drop": "after"},
        {"body": "malformed"},
        {"body": "truncated"},
    ],
    ids=lambda f: "-".join(str(v) for v in f.values()),
)
async def test_a_bad_answer_to_the_submission_still_makes_exactly_one_job(live_sandbox: ThreadedSandbox,
                                                                          tmp_path: Path, fault: dict) -> None:
    live_sandbox.sandbox.inject("POST /v2/music/suno/action", **fault)
    async with connected(settings_for(live_sandbox, tmp_path), client_name="claude-ai") as client:
        job = ok(await client.call_tool("split_stems", SPLIT))
    assert job["status"] == "COMPLETED" and all(Path(t.get("file")).is_file() for t in job["tracks"])
    assert live_sandbox.sandbox.counters.stems_jobs_created == 1
    assert live_sandbox.sandbox.counters.credits_charged == 11
    keys = {r.headers["idempotency-key"] for r in live_sandbox.sandbox.requests("POST")}
    assert len(keys) == 1 and len(live_sandbox.sandbox.requests("POST")) == 2


async def test_a_429_waits_its_retry_after(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.inject("POST /v2/music/suno/action", status=429, retry_after=2)
    async with connected(settings_for(live_sandbox, tmp_path, download=False)) as client:
        started = time.monotonic()
        job = ok(await client.call_tool("split_stems", {**SPLIT, "wait_seconds": 0}))
    posts = live_sandbox.sandbox.requests("POST")
    assert len(posts) == 2 and job["job_id"]
    assert time.monotonic() - started >= 2.0


async def test_a_429_longer_than_the_call_may_wait_says_when_to_retry(live_sandbox: ThreadedSandbox,
                                                                      tmp_path: Path) -> None:
    live_sandbox.sandbox.inject("GET /v2/jobs/*", status=429, retry_after=120)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        started = time.monotonic()
        message = error(await client.call_tool("split_stems", SPLIT))
    assert "rate limiting" in message and "120 s" in message and time.monotonic() - started < 2


@pytest.mark.parametrize(("key", "says"), [("afk_test_not_a_known_key", "rejected the API key (401"),
                                           ("not-even-the-format", "apiframe keys start with afk_"),
                                           (INACTIVE_KEY, "inactive")])
async def test_a_rejected_key_is_explained_without_showing_it(live_sandbox: ThreadedSandbox, tmp_path: Path,
                                                              key: str, says: str) -> None:
    async with connected(settings_for(live_sandbox, tmp_path, api_key=SecretStr(key))) as client:
        for tool, arguments in [("split_stems", SPLIT), ("get_job", {"job_id": SONG}), ("list_tracks", {})]:
            message = error(await client.call_tool(tool, arguments))
            assert says in message and "APIFRAME_API_KEY" in message and key not in message


async def test_not_enough_credits_gives_the_numbers(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.add_account("afk_test_poor_account", credits=4, name="Poor")
    body = {"model": "suno", "prompt": "a song"}
    with httpx.Client(base_url=live_sandbox.url, headers={"X-API-Key": DEMO_KEY}) as api:
        song_id = api.post("/v2/music/generate", json=body).json()["jobId"]
    live_sandbox.sandbox.store.jobs[song_id].owner = "afk_test_poor_account"
    time.sleep(0.5)
    settings = settings_for(live_sandbox, tmp_path, api_key=SecretStr("afk_test_poor_account"))
    async with connected(settings) as client:
        message = error(await client.call_tool("split_stems", {"parent_job_id": song_id, "index": 1}))
    assert "needs 11 credits and the account has 4" in message and "Nothing was charged" in message


async def test_no_key_says_how_to_set_one_or_use_the_sandbox(tmp_path: Path) -> None:
    from suno_stems_mcp.config import Settings

    async with connected(Settings(output_dir=tmp_path)) as client:
        for tool, arguments in [("split_stems", SPLIT), ("get_job", {"job_id": SONG}), ("list_tracks", {})]:
            message = error(await client.call_tool(tool, arguments))
            assert "APIFRAME_API_KEY" in message and "--sandbox" in message


async def test_an_unreachable_api_fails_within_the_bound(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    from suno_stems_mcp.config import Settings

    settings = Settings(api_key=SecretStr(DEMO_KEY), base_url=f"http://127.0.0.1:{port}", output_dir=tmp_path,
                        max_wait=30.0)
    async with connected(settings) as client:
        started = time.monotonic()
        message = error(await client.call_tool("split_stems", SPLIT))
        took = time.monotonic() - started
    assert f"Cannot connect to apiframe at http://127.0.0.1:{port}" in message, message
    assert "APIFRAME_BASE_URL" in message and "Nothing was submitted or charged" in message
    assert "get_job" not in message  # nothing was submitted, so there is no job to follow
    assert took < 5.0, f"a refused connection took {took:.1f} s to report (it is retried only briefly)"


async def test_an_api_that_stops_answering_cannot_hold_the_call(live_sandbox: ThreadedSandbox,
                                                                tmp_path: Path) -> None:
    live_sandbox.sandbox.inject("GET /v2/jobs/*", delay=60, times=10)
    async with connected(settings_for(live_sandbox, tmp_path, max_wait=2.0)) as client:
        started = time.monotonic()
        message = error(await client.call_tool("get_job", {"job_id": SONG}))
        took = time.monotonic() - started
    assert "no answer within" in message and f"job_id={SONG}" in message
    assert took < 2.0 + 3.0 + 1.0, took


async def test_losing_the_api_while_waiting_keeps_the_job_id(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(runs_for=5.0)
    async with connected(settings_for(live_sandbox, tmp_path, max_wait=3.0)) as client:
        live_sandbox.sandbox.inject("GET /v2/jobs/*", status=503, times=1000)
        live_sandbox.sandbox.faults.clear()
        running = ok(await client.call_tool("split_stems", {**SPLIT, "wait_seconds": 0}))
        live_sandbox.sandbox.inject("GET /v2/jobs/*", status=503, times=1000)
        message = error(await client.call_tool("get_job", {"job_id": running["job_id"], "wait_seconds": 3}))
    assert f"job_id={running['job_id']}" in message and "HTTP 503" in message


@pytest.mark.parametrize("title", ["../../../../etc/cron.d/evil", "/tmp/abs", "..", "C:\\Windows\\x", "💿 ☃ Ünïcode",
                                   "a" * 500, "nul\x00byte", "   "])
async def test_a_hostile_title_cannot_write_outside_the_output_folder(live_sandbox: ThreadedSandbox,
                                                                      tmp_path: Path, title: str) -> None:
    with httpx.Client(base_url=live_sandbox.url, headers={"X-API-Key": DEMO_KEY}) as api:
        song_id = api.post("/v2/music/generate", json={"model": "suno", "prompt": "x"}).json()["jobId"]
    job = live_sandbox.sandbox.store.jobs[song_id]
    job.tracks = [track.__class__(**{**track.__dict__, "title": title}) for track in job.tracks]
    time.sleep(0.5)
    output = tmp_path / "out"
    async with connected(settings_for(live_sandbox, output)) as client:
        stems = ok(await client.call_tool("split_stems", {"parent_job_id": song_id, "index": 1}))
        song = ok(await client.call_tool("get_job", {"job_id": song_id}))
    saved = files_under(tmp_path)
    assert len(saved) == 4 and all(path.resolve().is_relative_to(output.resolve()) for path in saved)
    assert all(path.parent.parent == output for path in saved)
    assert {t.get("file") for t in stems["tracks"] + song["tracks"]} == {str(p) for p in saved}


async def test_an_unwritable_output_folder_is_a_clear_error_with_the_links(live_sandbox: ThreadedSandbox,
                                                                           tmp_path: Path) -> None:
    if os.geteuid() == 0:
        output = tmp_path / "a-file-not-a-folder"
        output.write_text("in the way")
    else:
        output = tmp_path / "locked"
        output.mkdir()
        output.chmod(stat.S_IRUSR | stat.S_IXUSR)
    async with connected(settings_for(live_sandbox, output / "stems")) as client:
        message = error(await client.call_tool("split_stems", SPLIT))
        assert "saving its files failed" in message and "SUNO_STEMS_OUTPUT_DIR" in message
        assert "vocals: http" in message and "instrumental: http" in message and "get_job with job_id=" in message
        again = error(await client.call_tool("split_stems", SPLIT))
    assert "saving its files failed" in again
    assert live_sandbox.sandbox.counters.stems_jobs_created == 1


async def test_an_audio_file_that_404s_is_an_error_and_leaves_no_partial_file(live_sandbox: ThreadedSandbox,
                                                                             tmp_path: Path) -> None:
    live_sandbox.sandbox.inject("GET /cdn/audio/*", status=404, body="empty", times=2)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("split_stems", SPLIT))
        assert "HTTP 404" in message and "expired" in message
        job = ok(await client.call_tool("split_stems", SPLIT))  # the links work again: saved, nothing charged
    assert [p.name for p in files_under(tmp_path)] == ["instrumental.wav", "vocals.wav"]
    assert job["reused"] is True and live_sandbox.sandbox.counters.credits_charged == 11


async def test_a_body_shorter_than_its_length_is_retried_and_never_kept(live_sandbox: ThreadedSandbox,
                                                                        tmp_path: Path) -> None:
    live_sandbox.sandbox.inject("GET /cdn/audio/*", short_by=4096, times=2)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", SPLIT))
    for track in job["tracks"]:
        data = Path(track.get("file")).read_bytes()
        assert len(data) == int(httpx.head(track["audio_url"]).headers["content-length"])
    assert [p.name for p in files_under(tmp_path)] == ["instrumental.wav", "vocals.wav"]


async def test_a_download_that_keeps_breaking_leaves_nothing_behind(live_sandbox: ThreadedSandbox,
                                                                    tmp_path: Path) -> None:
    live_sandbox.sandbox.inject("GET /cdn/audio/*", short_by=10, times=100)
    async with connected(settings_for(live_sandbox, tmp_path), client_name="claude-ai") as client:  # time to retry
        message = error(await client.call_tool("split_stems", SPLIT))
    assert "kept breaking off" in message
    assert all(p.name.startswith(".") and p.name.endswith((".part", ".part.json")) for p in files_under(tmp_path))


async def test_a_sandbox_the_user_started_on_loopback_may_serve_its_audio_over_http(live_sandbox: ThreadedSandbox,
                                                                                   tmp_path: Path) -> None:
    """The README's recipe: `suno-stems-mcp sandbox`, then APIFRAME_BASE_URL pointing at it, without --sandbox.
    Its CDN is plain http on loopback, and that is allowed because the API is on loopback too (anywhere else
    only https is fetched: tests/test_downloader.py)."""
    async with connected(settings_for(live_sandbox, tmp_path, sandbox=False)) as client:
        job = ok(await client.call_tool("split_stems", SPLIT))
    assert job["status"] == "COMPLETED" and all(Path(t["file"]).is_file() for t in job["tracks"]), job
    assert all(folder.iterdir() for folder in tmp_path.iterdir() if folder.is_dir()), "an empty folder was left"


async def test_a_completed_job_without_tracks_says_to_look_again(live_sandbox: ThreadedSandbox,
                                                                 tmp_path: Path) -> None:
    with httpx.Client(base_url=live_sandbox.url, headers={"X-API-Key": DEMO_KEY}) as api:
        job_id = api.post("/v2/music/suno/action", json={"parentJobId": SONG, "action": "stems", "index": 1}
                          ).json()["jobId"]
    live_sandbox.sandbox.store.jobs[job_id].tracks = []
    time.sleep(0.5)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": job_id}))
    assert job["status"] == "COMPLETED" and job["tracks"] == [] and "lists no tracks" in job["next_step"]
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("outcome", ["FAILED", "CANCELLED"])
async def test_a_split_that_dies_after_its_call_leaves_no_empty_folder(live_sandbox: ThreadedSandbox,
                                                                       tmp_path: Path, outcome: str) -> None:
    """split_stems names a folder after the song while the job runs (so a later process saves the files under
    that name); when the job then fails or is cancelled, the get_job that learns it removes the empty folder."""
    live_sandbox.sandbox.plan_next(outcome="FAILED" if outcome == "FAILED" else "NEVER",
                                   error="Separation failed.", kinds=("stems",))
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {**SPLIT, "wait_seconds": 0}))
        assert not job["done"] and [p for p in tmp_path.iterdir() if p.is_dir()], "no folder was reserved"
        if outcome == "CANCELLED":
            live_sandbox.sandbox.store.cancel(job["job_id"])
        final = ok(await client.call_tool("get_job", {"job_id": job["job_id"], "wait_seconds": 8}))
    assert final["status"] == outcome
    assert [p for p in tmp_path.rglob("*")] == [], "an empty folder was left"
