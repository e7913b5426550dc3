"""The downloader against the sandbox's CDN misbehaving on purpose, over real loopback sockets.

Each test names the finding it holds down: hangs past the deadline, slow files never saved, restarts, starving
the server, no size caps, redirects anywhere, private file modes, CDN statuses, secrets in logs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import httpx
import pytest

from suno_stems_mcp.apiframe import ApiTrack
from suno_stems_mcp.deadline import Deadline
from suno_stems_mcp.downloader import ABSOLUTE_CAP, Downloader, Saved, folder_name, size_cap
from suno_stems_mcp.errors import SaveError
from suno_stems_mcp.sandbox import DEMO_KEY, Sandbox, SandboxConfig, ThreadedSandbox
from suno_stems_mcp.sandbox.audio import Song, wav_bytes
from suno_stems_mcp.sandbox.seed import demo_id

pytestmark = pytest.mark.anyio

STEMS = demo_id("Midnight Harbor stems")
AUDIO = "GET /cdn/audio/*"
SLACK = 0.6  # what a call may take past its deadline, generously (the downloader aims to end before it)


@pytest.fixture
def cdn() -> Iterator[ThreadedSandbox]:
    with ThreadedSandbox(Sandbox(SandboxConfig.fast())) as running:
        yield running


@pytest.fixture
async def downloader(tmp_path: Path) -> AsyncIterator[Downloader]:
    made = Downloader(tmp_path / "out", user_agent="suno-stems-mcp-test", allow_loopback_http=True)
    yield made
    await made.aclose()


def stems(cdn: ThreadedSandbox, query: str = "") -> list[ApiTrack]:
    return [ApiTrack(id=part, audio_url=f"{cdn.url}/cdn/audio/{STEMS}-{n}.wav{query}", duration=2.0)
            for n, part in enumerate(("vocals", "instrumental"))]


def audio_of(cdn: ThreadedSandbox, n: int) -> bytes:
    track = cdn.sandbox.store.jobs[STEMS].tracks[n]
    return wav_bytes(Song(seed=track.seed, duration=track.duration), track.part)


def files_in(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir()) if folder.exists() else []


async def timed_save(downloader: Downloader, folder: Path, tracks: list[ApiTrack],
                     seconds: float) -> tuple[list[Saved], float]:
    started = time.monotonic()
    saved = await downloader.save(folder, tracks, Deadline(seconds))
    return saved, time.monotonic() - started


# --- B1: a call ends by its deadline whatever the CDN does ------------------------------------------------


@pytest.mark.parametrize("fault", [{"drip_headers": 0.2}, {"drip": 1.0}, {"delay": 30.0}],
                         ids=["headers-dripping", "body-dripping", "silent"])
async def test_a_save_returns_by_its_deadline_whatever_the_cdn_does(cdn: ThreadedSandbox, downloader: Downloader,
                                                                   fault: dict[str, float]) -> None:
    cdn.sandbox.inject(AUDIO, times=2, **fault)
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    with anyio.fail_after(20):
        saved, took = await timed_save(downloader, folder, stems(cdn), 1.5)
    assert took < 1.5 + SLACK
    assert [s.timed_out for s in saved] == [True, True] and [s.path for s in saved] == [None, None]


async def test_a_stuck_transfer_never_blocks_a_later_call_for_the_same_file(cdn: ThreadedSandbox,
                                                                           downloader: Downloader) -> None:
    cdn.sandbox.inject(AUDIO, times=2, drip_headers=0.5)
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(downloader.save, folder, stems(cdn), Deadline(3.0))
            await anyio.sleep(0.3)
            waiting, took = await timed_save(downloader, folder, stems(cdn), 0.7)  # the CDN has recovered
            assert took < 0.7 + SLACK and all(s.timed_out for s in waiting)
        saved, _ = await timed_save(downloader, folder, stems(cdn), 10)
    assert [s.path.read_bytes() if s.path else None for s in saved] == [audio_of(cdn, 0), audio_of(cdn, 1)]
    assert files_in(folder) == ["instrumental.wav", "vocals.wav"]


# --- B2: running out of time is a time-out, and the next call continues -----------------------------------


async def test_a_slow_file_is_saved_over_a_few_calls(cdn: ThreadedSandbox, downloader: Downloader) -> None:
    cdn.sandbox.inject(AUDIO, times=20, drip=0.02, drip_size=1024)  # ~50 kB/s: 88 kB need ~1.8 s per file
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    rounds: list[list[Saved]] = []
    with anyio.fail_after(30):
        while len(rounds) < 6 and not (rounds and all(s.path for s in rounds[-1])):
            saved, took = await timed_save(downloader, folder, stems(cdn), 0.8)
            assert took < 0.8 + SLACK
            rounds.append(saved)
    first = rounds[0][0]
    assert first.timed_out and first.path is None and first.total == len(audio_of(cdn, 0)) > first.received > 0
    assert 3 <= len(rounds) <= 4, [[(s.received, s.timed_out) for s in r] for r in rounds]
    assert [s.path.read_bytes() for s in rounds[-1] if s.path] == [audio_of(cdn, 0), audio_of(cdn, 1)]
    assert files_in(folder) == ["instrumental.wav", "vocals.wav"]
    resumed = [r.headers for r in cdn.sandbox.requests("GET", "/cdn/audio/") if "range" in r.headers]
    assert resumed and all(h["range"].startswith("bytes=") and h["if-range"].startswith('"') for h in resumed)


async def test_the_part_of_a_file_keeps_a_hidden_name_and_what_resuming_needs(cdn: ThreadedSandbox,
                                                                             downloader: Downloader) -> None:
    cdn.sandbox.inject(AUDIO, times=2, drip=0.02, drip_size=1024)
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    await downloader.save(folder, stems(cdn, "?token=SECRET"), Deadline(0.5))
    assert files_in(folder) == [".instrumental.wav.part", ".instrumental.wav.part.json", ".vocals.wav.part",
                                ".vocals.wav.part.json"]
    state = (folder / ".vocals.wav.part.json").read_text()
    assert f"/cdn/audio/{STEMS}-0.wav" in state and '\\"' in state and "SECRET" not in state


async def test_a_cdn_that_ignores_range_gets_the_file_from_the_start(cdn: ThreadedSandbox,
                                                                    downloader: Downloader) -> None:
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    cdn.sandbox.inject(AUDIO, times=2, drip=0.02, drip_size=1024)
    first = await downloader.save(folder, stems(cdn), Deadline(0.5))
    assert all(s.timed_out and s.received > 0 for s in first)
    cdn.sandbox.inject(AUDIO, times=2, ignore_range=True)
    saved = await downloader.save(folder, stems(cdn), Deadline(10))
    assert [s.path.read_bytes() for s in saved if s.path] == [audio_of(cdn, 0), audio_of(cdn, 1)]
    assert [r.status for r in cdn.sandbox.requests("GET", "/cdn/audio/")[-2:]] == [200, 200]


async def test_a_part_of_another_version_of_the_file_is_not_spliced_in(cdn: ThreadedSandbox,
                                                                      downloader: Downloader) -> None:
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    cdn.sandbox.inject(AUDIO, times=2, drip=0.02, drip_size=1024)
    await downloader.save(folder, stems(cdn), Deadline(0.5))
    for name in (".vocals.wav.part", ".instrumental.wav.part"):
        (folder / name).write_bytes(b"X" * 5000)  # what an older version of the file held
        meta = folder / f"{name}.json"
        meta.write_text(meta.read_text().replace('"validator": "\\"', '"validator": "\\"old-'))
    saved = await downloader.save(folder, stems(cdn), Deadline(10))
    assert [s.path.read_bytes() for s in saved if s.path] == [audio_of(cdn, 0), audio_of(cdn, 1)]


# --- B3: restarts -------------------------------------------------------------------------------------------


async def test_a_new_process_resumes_what_a_killed_one_left(cdn: ThreadedSandbox, tmp_path: Path) -> None:
    output = tmp_path / "out"
    cdn.sandbox.inject(AUDIO, times=2, drip=0.01, drip_size=512)
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import anyio
        from pathlib import Path
        from suno_stems_mcp.apiframe import ApiTrack
        from suno_stems_mcp.deadline import Deadline
        from suno_stems_mcp.downloader import Downloader
        tracks = [ApiTrack(id="vocals", audio_url="{cdn.url}/cdn/audio/{STEMS}-0.wav", duration=2.0)]
        d = Downloader(Path({str(output)!r}), user_agent="child", allow_loopback_http=True)
        anyio.run(d.save, d.folder_for("Midnight Harbor", "{STEMS}"), tracks, Deadline(60))
    """)])
    part = output / folder_name("Midnight Harbor", STEMS) / ".vocals.wav.part"
    try:
        with anyio.fail_after(20):
            while not (part.exists() and part.stat().st_size > 20_000):
                await anyio.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    fresh = Downloader(output, user_agent="after-restart", allow_loopback_http=True)
    folder = fresh.find_folder(STEMS)
    assert folder == output / folder_name("Midnight Harbor", STEMS)
    saved = await fresh.save(folder, stems(cdn)[:1], Deadline(10))
    await fresh.aclose()
    assert saved[0].path is not None and saved[0].path.read_bytes() == audio_of(cdn, 0)
    assert files_in(folder) == ["vocals.wav"]
    last = cdn.sandbox.requests("GET", "/cdn/audio/")[-1]
    assert last.status == 206 and int(last.headers["range"][6:-1]) >= 20_000


async def test_nothing_is_downloaded_twice(cdn: ThreadedSandbox, downloader: Downloader, tmp_path: Path) -> None:
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    await downloader.save(folder, stems(cdn), Deadline(10))
    asked = len(cdn.sandbox.requests("GET", "/cdn/audio/"))
    fresh = Downloader(tmp_path / "out", user_agent="again", allow_loopback_http=True)
    again = fresh.find_folder(STEMS)
    assert again == folder and set(fresh.existing(again, stems(cdn))) == {"vocals", "instrumental"}
    saved = await fresh.save(again, stems(cdn), Deadline(10))
    assert all(s.path for s in saved) and len(cdn.sandbox.requests("GET", "/cdn/audio/")) == asked


async def test_a_part_that_is_already_whole_is_finished_without_asking_the_cdn(cdn: ThreadedSandbox,
                                                                            downloader: Downloader) -> None:
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    cdn.sandbox.inject(AUDIO, times=1, drip=0.02, drip_size=1024)
    await downloader.save(folder, stems(cdn)[:1], Deadline(0.5))
    (folder / ".vocals.wav.part").write_bytes(audio_of(cdn, 0))  # as if killed between the last byte and the rename
    asked = len(cdn.sandbox.requests("GET", "/cdn/audio/"))
    saved = await Downloader(folder.parent, user_agent="t", allow_loopback_http=True).save(
        folder, stems(cdn)[:1], Deadline(5))
    assert saved[0].path is not None and saved[0].path.read_bytes() == audio_of(cdn, 0)
    assert len(cdn.sandbox.requests("GET", "/cdn/audio/")) == asked


async def test_stale_partials_of_ours_are_removed_and_nothing_else(cdn: ThreadedSandbox,
                                                                  downloader: Downloader) -> None:
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    folder.mkdir(parents=True)
    ours = [".vocals.wav.k3j9x_0a.part", ".2-old-title.mp3.part", ".2-old-title.mp3.part.json"]
    others = ["notes.txt", ".hidden", ".report.pdf.part", "cover.png"]
    for name in ours + others:
        (folder / name).write_bytes(b"x")
    (folder / ".instrumental.wav.part").write_bytes(b"not resumable without its state")
    saved = await downloader.save(folder, stems(cdn), Deadline(10))
    assert all(s.path for s in saved)
    assert files_in(folder) == sorted([*others, "instrumental.wav", "vocals.wav"])
    assert (folder / "instrumental.wav").read_bytes() == audio_of(cdn, 1)


async def test_old_partials_anywhere_in_the_output_are_removed_by_a_new_process(cdn: ThreadedSandbox,
                                                                               tmp_path: Path) -> None:
    output = tmp_path / "out"
    other = output / "another-song-1234abcd"
    other.mkdir(parents=True)
    old, recent = other / ".vocals.mp3.part", other / ".instrumental.mp3.part"
    for path in (old, recent):
        path.write_bytes(b"x")
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    fresh = Downloader(output, user_agent="t", allow_loopback_http=True)
    await fresh.save(fresh.folder_for("Midnight Harbor", STEMS), stems(cdn), Deadline(10))
    assert not old.exists() and recent.exists()


def test_find_folder_finds_a_jobs_folder_by_its_id_alone(tmp_path: Path) -> None:
    downloader = Downloader(tmp_path, user_agent="t")
    job = "0e1f2a3b-1111-4222-8333-444455556666"
    assert downloader.find_folder(job) is None
    named = downloader.folder_for("Midnight Harbor", job)
    named.mkdir()
    (tmp_path / "Not A Slug-0e1f2a3b").mkdir()
    (tmp_path / "link-0e1f2a3b").symlink_to(named)
    (tmp_path / "midnight-harbor-99999999").mkdir()
    assert downloader.find_folder(job) == named == tmp_path / "midnight-harbor-0e1f2a3b"
    assert downloader.find_folder("99999999-0000-4000-8000-000000000000") == tmp_path / "midnight-harbor-99999999"
    assert downloader.find_folder("12345678-0000-4000-8000-000000000000") is None


# --- B4: downloads never starve the rest of the server ------------------------------------------------------


async def test_crawling_downloads_do_not_slow_other_calls(cdn: ThreadedSandbox, tmp_path: Path) -> None:
    cdn.sandbox.inject(AUDIO, times=44, drip=0.5)
    downloader = Downloader(tmp_path / "out", user_agent="t", allow_loopback_http=True)
    async with httpx.AsyncClient(base_url=cdn.url, headers={"X-API-Key": DEMO_KEY}) as api:

        async def other_call() -> float:
            started = time.monotonic()
            await anyio.to_thread.run_sync(time.sleep, 0.001)  # the server's own threads (sync tools, files)
            assert (await api.get("/v2/me")).status_code == 200
            return time.monotonic() - started

        async def crawl(n: int) -> None:
            with contextlib.suppress(SaveError):  # what is measured is the other calls, not these
                await downloader.save(tmp_path / "out" / f"song-{n:08d}", stems(cdn), Deadline(4))

        baseline = min([await other_call() for _ in range(3)])
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for n in range(22):
                    group.start_soon(crawl, n)
                await anyio.sleep(1.0)
                during = max([await other_call() for _ in range(3)])
    await downloader.aclose()
    assert during < 0.5 + 10 * baseline, (baseline, during)


# --- B5: size caps ------------------------------------------------------------------------------------------


def test_the_cap_follows_the_duration_within_an_absolute_bound() -> None:
    assert size_cap(2.0) == 2 * 200_000 + 1_000_000
    assert size_cap(None) == size_cap(0) == size_cap(10 * 3600.0) == ABSOLUTE_CAP


@pytest.mark.parametrize("fault", [{"body": "gzip-bomb"}, {"body": "endless"}], ids=["gzip-bomb", "endless"])
async def test_a_body_past_the_cap_is_refused_and_nothing_is_left(cdn: ThreadedSandbox, downloader: Downloader,
                                                                 fault: dict[str, str]) -> None:
    cdn.sandbox.inject(AUDIO, times=2, **fault)
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    with anyio.fail_after(20), pytest.raises(SaveError, match=r"more than 1\.4 MB.*nothing of it was kept"):
        await downloader.save(folder, stems(cdn), Deadline(15))
    assert files_in(folder) == []
    assert all(r.headers["accept-encoding"] == "identity" for r in cdn.sandbox.requests("GET", "/cdn/audio/"))


async def test_a_file_longer_than_its_duration_allows_is_refused_from_its_length(tmp_path: Path) -> None:
    with ThreadedSandbox(Sandbox(SandboxConfig.fast(track_seconds=40.0))) as cdn:
        downloader = Downloader(tmp_path / "out", user_agent="t", allow_loopback_http=True)
        short = [ApiTrack(id="vocals", audio_url=f"{cdn.url}/cdn/audio/{STEMS}-0.wav", duration=1.0)]
        with pytest.raises(SaveError, match=r"more than 1\.2 MB"):
            await downloader.save(downloader.folder_for("x", STEMS), short, Deadline(10))
        await downloader.aclose()
    assert files_in(downloader.folder_for("x", STEMS)) == []


async def test_a_corrupt_gzip_body_is_refused(cdn: ThreadedSandbox, downloader: Downloader) -> None:
    cdn.sandbox.inject(AUDIO, times=2, body="gzip-corrupt")
    folder = downloader.folder_for("Midnight Harbor", STEMS)
    with pytest.raises(SaveError, match="corrupt compressed file"):
        await downloader.save(folder, stems(cdn), Deadline(10))
    assert files_in(folder) == []


async def test_a_small_gzip_encoded_file_is_decoded(cdn: ThreadedSandbox, downloader: Downloader) -> None:
    cdn.sandbox.inject(AUDIO, times=1, body="gzip-bomb", inflates_to=300_000)
    saved = await downloader.save(downloader.folder_for("z", STEMS), stems(cdn)[:1], Deadline(10))
    assert saved[0].path is not None and saved[0].path.read_bytes() == bytes(300_000)


# --- B6: redirects and addresses ----------------------------------------------------------------------------


async def test_a_redirect_loop_ends_after_a_few_hops(cdn: ThreadedSandbox, downloader: Downloader) -> None:
    cdn.sandbox.inject(AUDIO, times=100, redirect="loop")
    with pytest.raises(SaveError, match=r"redirected more than 5 times.*works in a browser"):
        await downloader.save(downloader.folder_for("x", STEMS), stems(cdn)[:1], Deadline(10))
    assert len(cdn.sandbox.requests("GET", "/cdn/audio/")) == 6


async def test_a_redirect_within_bounds_is_followed(cdn: ThreadedSandbox, downloader: Downloader) -> None:
    cdn.sandbox.inject(AUDIO, times=3, redirect="{path}&hop=1", status=307)
    saved = await downloader.save(downloader.folder_for("x", STEMS), stems(cdn, "?sig=1")[:1], Deadline(10))
    assert saved[0].path is not None and saved[0].path.read_bytes() == audio_of(cdn, 0)


@pytest.mark.parametrize(("target", "refused"), [
    ("http://cdn.example.test{path}", "plain http, not https"),
    ("https://10.0.0.1{path}", "a private address"),
    ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
    ("https://[fe80::1]/x.mp3", "a link-local address"),
    ("https://[::ffff:192.168.1.1]/x.mp3", "a private address"),
    ("https://0.0.0.0/x.mp3", "an? unspecified address"),
    ("https://224.0.0.1/x.mp3", "a multicast address"),
    ("ftp://cdn.example.test/x.mp3", "not an https link"),
])
async def test_a_redirect_to_a_refused_target_fails_before_connecting(cdn: ThreadedSandbox, downloader: Downloader,
                                                                     target: str, refused: str) -> None:
    cdn.sandbox.inject(AUDIO, redirect=target.replace("{path}", "{path}?token=SECRET"))
    started = time.monotonic()
    with pytest.raises(SaveError, match=rf"refusing a redirect to .*{refused}.*works in a browser") as caught:
        await downloader.save(downloader.folder_for("x", STEMS), stems(cdn)[:1], Deadline(10))
    assert time.monotonic() - started < 1.0 and "SECRET" not in str(caught.value)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port that records whether anything connected to it."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


def nobody_connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except BlockingIOError:
        return True
    return False


@pytest.mark.parametrize("url", ["https://localhost:{port}/a.mp3", "https://127.0.0.1:{port}/a.mp3",
                                 "http://127.0.0.1:{port}/a.mp3"])
async def test_outside_the_sandbox_loopback_is_refused_before_connecting(tmp_path: Path, listener: socket.socket,
                                                                         url: str) -> None:
    downloader = Downloader(tmp_path, user_agent="t")
    track = ApiTrack(id="vocals", audio_url=url.format(port=listener.getsockname()[1]), duration=2.0)
    with pytest.raises(SaveError, match=r"loopback address.*works in a browser"):
        await downloader.save(downloader.folder_for("x", STEMS), [track], Deadline(5))
    assert nobody_connected(listener)


# --- B7: file modes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o002])
async def test_saved_files_follow_the_umask(cdn: ThreadedSandbox, downloader: Downloader, umask: int) -> None:
    before = os.umask(umask)
    try:
        saved = await downloader.save(downloader.folder_for("x", STEMS), stems(cdn), Deadline(10))
    finally:
        os.umask(before)
    assert [s.path.stat().st_mode & 0o777 for s in saved if s.path] == [0o666 & ~umask] * 2


# --- B8: what the CDN answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 404, 410])
async def test_a_missing_file_says_it_may_not_be_there_yet_or_has_expired(cdn: ThreadedSandbox,
                                                                         downloader: Downloader, status: int) -> None:
    cdn.sandbox.inject(AUDIO, times=2, status=status)
    with pytest.raises(SaveError, match=rf"HTTP {status}.*not be on the CDN yet.*expired"):
        await downloader.save(downloader.folder_for("x", STEMS), stems(cdn), Deadline(10))
    assert len(cdn.sandbox.requests("GET", "/cdn/audio/")) == 2


@pytest.mark.parametrize("fault", [{"status": 503}, {"status": 500}, {"drop": "before"}, {"short_by": 30_000},
                                   {"body": "truncated"}], ids=["503", "500", "dropped", "short", "truncated"])
async def test_stumbles_are_retried_within_the_deadline(cdn: ThreadedSandbox, downloader: Downloader,
                                                       fault: dict[str, object]) -> None:
    cdn.sandbox.inject(AUDIO, times=4, **fault)
    saved = await downloader.save(downloader.folder_for("x", STEMS), stems(cdn), Deadline(15))
    assert [s.path.read_bytes() for s in saved if s.path] == [audio_of(cdn, 0), audio_of(cdn, 1)]


async def test_a_cdn_that_keeps_failing_is_a_save_error_that_keeps_what_arrived(cdn: ThreadedSandbox,
                                                                               downloader: Downloader) -> None:
    cdn.sandbox.inject(AUDIO, times=100, status=502)
    with pytest.raises(SaveError, match=r"kept breaking off \(HTTP 502\)"):
        await downloader.save(downloader.folder_for("x", STEMS), stems(cdn), Deadline(15))


async def test_an_image_or_page_answered_at_the_link_is_not_saved(cdn: ThreadedSandbox, downloader: Downloader) -> None:
    cdn.sandbox.inject(AUDIO, times=2, status=401)
    with pytest.raises(SaveError, match=r"HTTP 401.*works in a browser"):
        await downloader.save(downloader.folder_for("x", STEMS), stems(cdn), Deadline(10))


# --- B9: no key, no query strings in logs -------------------------------------------------------------------


async def test_no_key_is_sent_and_no_query_is_logged(cdn: ThreadedSandbox, downloader: Downloader,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    folder = downloader.folder_for("x", STEMS)
    cdn.sandbox.inject(AUDIO, times=2, drip=0.02, drip_size=1024)
    await downloader.save(folder, stems(cdn, "?token=SECRET"), Deadline(0.5))
    cdn.sandbox.inject(AUDIO, times=1, status=503)
    saved = await downloader.save(folder, stems(cdn, "?token=SECRET"), Deadline(10))
    assert all(s.path for s in saved)
    assert caplog.records and "SECRET" not in caplog.text
    for record in cdn.sandbox.requests("GET", "/cdn/audio/"):
        assert "x-api-key" not in record.headers and "authorization" not in record.headers
        assert record.headers["user-agent"] == "suno-stems-mcp-test"


async def test_a_track_without_a_link_is_reported_unsaved(cdn: ThreadedSandbox, downloader: Downloader) -> None:
    tracks = [*stems(cdn)[:1], ApiTrack(id="instrumental", audio_url=None)]
    saved = await downloader.save(downloader.folder_for("x", STEMS), tracks, Deadline(10))
    assert saved[0].path is not None and saved[1] == Saved("instrumental", None)
