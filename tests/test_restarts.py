"""Restarts: a new server process (a new `connected(...)` on the same output folder) knows nothing of the last
one, yet finds what it saved, downloads nothing twice, charges nothing twice, and keeps the song-named folder.

Every test runs with the sandbox answering stems jobs with their `input` and without it (the real API does
not promise it), since a new process can then learn the parent only from what it saved or submits itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from suno_stems_mcp.sandbox import Sandbox, SandboxConfig, ThreadedSandbox

from .support import SONG, connected, files_under, ok, settings_for

pytestmark = pytest.mark.anyio

SPLIT = {"parent_job_id": SONG, "index": 1, "wait_seconds": 8}


@pytest.fixture(params=[True, False], ids=["stems-input", "no-stems-input"])
def running(request: pytest.FixtureRequest) -> Iterator[ThreadedSandbox]:
    with ThreadedSandbox(Sandbox(SandboxConfig.fast(stems_input=request.param))) as served:
        yield served


def _cdn_gets(running: ThreadedSandbox) -> int:
    return len(running.sandbox.requests("GET", "/cdn/audio/"))


def _folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def _song_folder(job: dict[str, object], root: Path) -> Path:
    return root / f"midnight-harbor-{str(job['job_id'])[:8]}"


async def test_a_new_process_finds_the_saved_files_and_downloads_nothing(running: ThreadedSandbox,
                                                                         tmp_path: Path) -> None:
    async with connected(settings_for(running, tmp_path)) as first:
        job = ok(await first.call_tool("split_stems", SPLIT))
    folder = _song_folder(job, tmp_path)
    assert [t["file"] for t in job["tracks"]] == [str(folder / "vocals.wav"), str(folder / "instrumental.wav")]
    fetched, files = _cdn_gets(running), files_under(tmp_path)
    async with connected(settings_for(running, tmp_path)) as restarted:
        again = ok(await restarted.call_tool("get_job", {"job_id": job["job_id"]}))
        waited = ok(await restarted.call_tool("get_job", {"job_id": job["job_id"], "wait_seconds": 5,
                                                          "download": True}))
    for seen in (again, waited):
        assert [t["file"] for t in seen["tracks"]] == [t["file"] for t in job["tracks"]]
        assert str(folder) in seen["next_step"] and "Done: the files are saved" in seen["next_step"]
    assert _cdn_gets(running) == fetched  # nothing was downloaded again
    assert files_under(tmp_path) == files and _folders(tmp_path) == [folder.name]


async def test_after_expiry_a_repeat_split_is_free_when_both_stems_are_saved(running: ThreadedSandbox,
                                                                             tmp_path: Path) -> None:
    async with connected(settings_for(running, tmp_path)) as first:
        job = ok(await first.call_tool("split_stems", SPLIT))
    running.sandbox.store.expire(job["job_id"])
    credits, fetched = running.sandbox.credits(), _cdn_gets(running)
    async with connected(settings_for(running, tmp_path)) as restarted:
        again = ok(await restarted.call_tool("split_stems", SPLIT))
        read = ok(await restarted.call_tool("get_job", {"job_id": job["job_id"]}))
    assert again["job_id"] == job["job_id"] and again["expired"] is True and again["reused"] is True
    assert running.sandbox.credits() == credits and running.sandbox.counters.stems_jobs_created == 1
    for seen in (again, read):
        assert [t["file"] for t in seen["tracks"]] == [t["file"] for t in job["tracks"]]
        assert "split_stems" not in seen["next_step"], seen["next_step"]  # nothing to remake
    assert _cdn_gets(running) == fetched
    assert _folders(tmp_path) == [_song_folder(job, tmp_path).name]


async def test_after_expiry_with_a_stem_missing_the_split_is_made_again(running: ThreadedSandbox,
                                                                        tmp_path: Path) -> None:
    async with connected(settings_for(running, tmp_path)) as first:
        job = ok(await first.call_tool("split_stems", SPLIT))
    running.sandbox.store.expire(job["job_id"])
    Path(job["tracks"][1]["file"]).unlink()
    async with connected(settings_for(running, tmp_path)) as restarted:
        again = ok(await restarted.call_tool("split_stems", SPLIT))
    assert again["job_id"] != job["job_id"] and again["reused"] is False and again["status"] == "COMPLETED"
    assert running.sandbox.counters.stems_jobs_created == 2
    assert _folders(tmp_path) == sorted([_song_folder(job, tmp_path).name, _song_folder(again, tmp_path).name])


async def test_a_split_left_waiting_is_saved_by_the_next_process_under_the_song_name(running: ThreadedSandbox,
                                                                                    tmp_path: Path) -> None:
    async with connected(settings_for(running, tmp_path)) as first:
        started = ok(await first.call_tool("split_stems", {**SPLIT, "wait_seconds": 0}))
    assert not started["done"] and files_under(tmp_path) == []
    async with connected(settings_for(running, tmp_path)) as restarted:
        job = ok(await restarted.call_tool("split_stems", SPLIT))
    async with connected(settings_for(running, tmp_path)) as third:
        read = ok(await third.call_tool("get_job", {"job_id": job["job_id"]}))
    assert job["job_id"] == started["job_id"] and job["reused"] is True and job["status"] == "COMPLETED"
    folder = _song_folder(job, tmp_path)
    assert [t["file"] for t in job["tracks"]] == [str(folder / "vocals.wav"), str(folder / "instrumental.wav")]
    assert [t["file"] for t in read["tracks"]] == [t["file"] for t in job["tracks"]]
    assert _folders(tmp_path) == [folder.name]
    assert not any(name.startswith("suno-") for name in _folders(tmp_path))
    assert running.sandbox.counters.stems_jobs_created == 1


async def test_a_split_left_waiting_is_saved_by_get_job_in_the_next_process_under_the_song_name(
        running: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(running, tmp_path)) as first:
        started = ok(await first.call_tool("split_stems", {**SPLIT, "wait_seconds": 0}))
    assert not started["done"] and files_under(tmp_path) == []
    async with connected(settings_for(running, tmp_path)) as restarted:
        job = ok(await restarted.call_tool("get_job", {"job_id": started["job_id"], "wait_seconds": 8}))
    folder = _song_folder(job, tmp_path)
    assert job["status"] == "COMPLETED"
    assert [t["file"] for t in job["tracks"]] == [str(folder / "vocals.wav"), str(folder / "instrumental.wav")]
    assert _folders(tmp_path) == [folder.name]
