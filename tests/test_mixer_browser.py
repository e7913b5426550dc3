"""The mixer view in real Chromium against the REAL server: a test host on the official AppBridge
(tests/mixer/harness) renders mixer.html under the default CSP, and proxies its tools/call to an in-memory
`mcp.Client(build_server(settings))` that negotiated MCP Apps, on a real sandbox over loopback.

Skipped when Playwright (the `browser` extra) or a Debian Chromium (`chromium-headless-shell` or `chromium`)
is missing; nothing is ever downloaded for the browser.
"""

from __future__ import annotations

import io
import math
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from suno_stems_mcp.mixer import view_html
from suno_stems_mcp.sandbox import Sandbox, SandboxConfig, ThreadedSandbox, audio

from .support import SEEDED_STEMS, SONG_2, connected, ok, settings_for, wav_samples
from .test_tool_stem_audio import app_client

async_api = pytest.importorskip("playwright.async_api",
                                reason="Playwright is not installed: pip install -e '.[browser]'")

from .mixer.harness import MixerHost, find_chromium, launch_chromium  # noqa: E402

try:
    CHROMIUM = find_chromium()
except RuntimeError as missing:
    pytest.skip(f"{missing}", allow_module_level=True)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

SECONDS = 15.0
"""Long enough that each stem (22.05 kHz mono WAV) comes in two stem_audio chunks."""
CHUNK = 512 * 1024
REL = 0.04


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    async with async_api.async_playwright() as playwright:
        launched = await launch_chromium(playwright)
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
def sandbox() -> Any:
    with ThreadedSandbox(Sandbox(SandboxConfig.fast(track_seconds=SECONDS))) as running:
        yield running


@pytest.fixture(scope="module")
def mp3_sandbox() -> Any:
    """A sandbox whose CDN serves MP3, as the real one does."""
    with ThreadedSandbox(Sandbox(SandboxConfig.fast(track_seconds=SECONDS, audio_format="mp3"))) as running:
        yield running


@pytest.fixture
def mixer(browser: Any, sandbox: ThreadedSandbox, tmp_path: Path):
    """`async with mixer(job_id=..., theme=..., apps=True) as (host, client):` the view in a host, its tools on
    a fresh server (a context manager inside the test: the in-memory client lives in one task)."""
    return _opener(browser, sandbox, tmp_path)


@pytest.fixture
def mp3_mixer(browser: Any, mp3_sandbox: ThreadedSandbox, tmp_path: Path):
    """`mixer` on a sandbox that serves MP3."""
    return _opener(browser, mp3_sandbox, tmp_path)


def _opener(browser: Any, sandbox: ThreadedSandbox, tmp_path: Path):
    @asynccontextmanager
    async def opener(job_id: str | None = None, *, theme: str = "dark", apps: bool = True,
                     **kwargs: Any) -> AsyncIterator[tuple[MixerHost, Any]]:
        settings = settings_for(sandbox, tmp_path)
        async with (app_client(settings) if apps else connected(settings)) as client, \
                MixerHost(view_html(), call_tool=client.call_tool, theme=theme, browser=browser, **kwargs) as host:
            if job_id is not None:
                await host.send_result(await client.call_tool("get_job", {"job_id": job_id}))
                await host.wait_until("s => s.ready || s.error", timeout=30)
            yield host, client

    return opener


def assert_clean(host: MixerHost) -> None:
    assert host.csp_violations == [], host.csp_violations
    assert host.errors == [], host.errors


def stem_row(host: MixerHost, stem: str) -> Any:
    return host.controls.locator(f'.stem[data-stem="{stem}"]')


def rms(samples: Any) -> float:
    return math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768


def saved_levels(folder: Path) -> dict[str, float]:
    """RMS of the saved stems and of their sum, as the server saved them."""
    vocals, instrumental = (wav_samples((folder / f"{stem}.wav").read_bytes()) for stem in ("vocals", "instrumental"))
    return {"vocals": rms(vocals), "instrumental": rms(instrumental),
            "mix": rms([v + i for v, i in zip(vocals, instrumental, strict=True)])}


def folder_of(tmp_path: Path) -> Path:
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return folder


async def test_loads_both_stems_of_a_real_split_in_chunks(mixer: Any, tmp_path: Path) -> None:
    async with mixer(SEEDED_STEMS) as (host, _):
        state = await host.state()
        assert state["ready"] and state["engine"] == "webaudio", state
        assert state["status"] == "COMPLETED" and state["duration"] == pytest.approx(SECONDS, abs=0.1)
        assert state["nearSilent"] == {"vocals": False, "instrumental": False}
        size = (folder_of(tmp_path) / "vocals.wav").stat().st_size
        for stem in ("vocals", "instrumental"):
            calls = [c["arguments"] for c in host.calls_to("stem_audio") if c["arguments"]["stem"] == stem]
            assert [c["offset"] for c in calls] == list(range(0, size, CHUNK)) and len(calls) == 2
            assert all(c["job_id"] == SEEDED_STEMS for c in calls)
        assert state["audioContexts"] == {"created": 1, "open": 1}
        assert await host.controls.locator("#title").text_content() == "Midnight Harbor"  # from the result's source
        assert_clean(host)


async def test_the_offline_mix_is_the_sum_of_the_saved_stems(mixer: Any, tmp_path: Path) -> None:
    async with mixer(SEEDED_STEMS) as (host, _):
        render = await host.render_mix()
        expected = saved_levels(folder_of(tmp_path))
        for part in ("vocals", "instrumental", "mix"):
            assert render["rms"][part] == pytest.approx(expected[part], rel=REL), part
        assert render["length"] == pytest.approx(SECONDS * render["sampleRate"], abs=2)
        assert_clean(host)


async def test_both_stems_start_together_and_seek_together(mixer: Any) -> None:
    async with mixer(SEEDED_STEMS) as (host, _):
        play = host.controls.locator("#play")
        await play.click()
        state = await host.wait_until("s => s.playing && s.position > 0.3")
        graph = state["graph"]
        assert graph["activeSources"] == 2 and graph["sourcesShareContext"] and graph["gainsShareContext"]
        starts = graph["lastStarts"]
        assert {s["stem"] for s in starts} == {"vocals", "instrumental"}
        assert len({(s["when"], s["offset"]) for s in starts}) == 1, starts
        await play.click()
        paused = await host.wait_until("s => !s.playing")
        assert paused["graph"]["activeSources"] == 0
        await host.controls.locator("#seek").fill("500")
        assert (await host.state())["position"] == pytest.approx(SECONDS / 2, abs=0.05)
        await play.click()
        state = await host.wait_until("s => s.playing")
        offsets = {s["offset"] for s in state["graph"]["lastStarts"]}
        assert len(offsets) == 1 and offsets.pop() == pytest.approx(SECONDS / 2, abs=0.05)
        assert (await host.controls.locator("#time").text_content() or "").endswith("/ 0:15")
        assert_clean(host)


async def test_mute_solo_and_volume_shape_the_mix(mixer: Any, tmp_path: Path) -> None:
    async with mixer(SEEDED_STEMS) as (host, _):
        expected = saved_levels(folder_of(tmp_path))
        vocals, instrumental = stem_row(host, "vocals"), stem_row(host, "instrumental")

        async def heard() -> dict[str, float]:
            return (await host.render_mix())["rms"]

        await vocals.locator(".mute").click()
        levels = await heard()
        assert levels["vocals"] == 0 and levels["mix"] == pytest.approx(expected["instrumental"], rel=REL)
        await vocals.locator(".solo").click()  # solo beats mute
        levels = await heard()
        assert levels["instrumental"] == 0 and levels["mix"] == pytest.approx(expected["vocals"], rel=REL)
        await instrumental.locator(".solo").click()  # two solos: both heard
        assert (await heard())["mix"] == pytest.approx(expected["mix"], rel=REL)
        await vocals.locator(".solo").click()
        await instrumental.locator(".solo").click()
        await vocals.locator(".mute").click()
        await vocals.locator(".volume").fill("10")
        assert (await heard())["vocals"] == pytest.approx(0.1 * expected["vocals"], rel=REL)
        assert (await host.state())["graph"]["gainTargets"] == {"vocals": 0.1, "instrumental": 1}
        assert_clean(host)


async def test_export_hands_the_heard_mix_to_the_host_as_wav(mixer: Any, tmp_path: Path) -> None:
    async with mixer(SEEDED_STEMS) as (host, _):
        await stem_row(host, "instrumental").locator(".mute").click()
        await host.controls.locator("#export").click()
        await host.wait_for("download-file")
        [(uri, mime, data)] = host.downloads()
        assert uri.startswith("file:///") and uri.endswith("-mix.wav") and mime == "audio/wav"
        with wave.open(io.BytesIO(data)) as exported:
            assert (exported.getsampwidth(), exported.getnchannels()) == (2, 1)
            assert exported.getnframes() / exported.getframerate() == pytest.approx(SECONDS, abs=0.01)
            samples = memoryview(exported.readframes(exported.getnframes())).cast("h")
        assert rms(samples) == pytest.approx(saved_levels(folder_of(tmp_path))["vocals"], rel=REL)
        assert_clean(host)


async def test_the_model_context_says_what_is_heard(mixer: Any) -> None:
    async with mixer(SEEDED_STEMS) as (host, _):
        await host.wait_for("update-model-context")
        seen = len(host.events)
        await stem_row(host, "vocals").locator(".volume").fill("10")
        await stem_row(host, "vocals").locator(".mute").click()
        update = await host.wait_for("update-model-context", lambda p: "muted" in p["content"][0]["text"],
                                     after=seen)
        text = update["content"][0]["text"]
        assert text.startswith(f"Mixer for job {SEEDED_STEMS}") and "vocals at 10 %, instrumental at 100 %" in text
        assert text.endswith("vocals muted; paused at 0:00 of 0:15.")
        assert update["structuredContent"]["gains"] == {"vocals": 0, "instrumental": 1}
        assert_clean(host)


async def test_follows_a_running_split_through_get_job_until_it_plays(mixer: Any) -> None:
    async with mixer() as (host, client):
        running = ok(await client.call_tool("split_stems", {"parent_job_id": SONG_2, "index": 1, "wait_seconds": 0}))
        assert not running["done"]
        await host.send_result(await client.call_tool("get_job", {"job_id": running["job_id"], "wait_seconds": 0}))
        state = await host.wait_until("s => s.ready || s.error", timeout=30)
        assert state["ready"] and state["status"] == "COMPLETED", state
        polls = host.calls_to("get_job")
        assert polls and all(p["arguments"] == {"job_id": running["job_id"], "wait_seconds": 8} for p in polls)
        assert host.max_in_flight["get_job"] == 1
        assert len(host.calls_to("stem_audio")) == 4
        assert_clean(host)


async def test_a_repeated_result_reuses_the_player(mixer: Any) -> None:
    async with mixer() as (host, client):
        result = await client.call_tool("get_job", {"job_id": SEEDED_STEMS})
        await host.send_result(result)
        await host.send_result(result)  # while loading
        await host.wait_until("s => s.ready")
        await host.send_result(result)  # after loading
        state = await host.state()
        assert len(host.calls_to("stem_audio")) == 4 and state["audioContexts"] == {"created": 1, "open": 1}
        assert await host.controls.locator(".stem").count() == 2
        assert_clean(host)


async def test_without_apps_the_server_refuses_stem_audio_and_the_view_says_why(mixer: Any) -> None:
    async with mixer(SEEDED_STEMS, apps=False) as (host, _):
        state = await host.state()
        assert not state["ready"] and "did not negotiate" in state["error"], state
        assert host.csp_violations == []


async def test_teardown_stops_audio(mixer: Any) -> None:
    async with mixer(SEEDED_STEMS) as (host, _):
        await host.controls.locator("#play").click()
        await host.wait_until("s => s.playing")
        await host.teardown()
        state = await host.state()
        assert not state["ready"] and state["graph"] is None
        assert state["audioContexts"] == {"created": 1, "open": 0}
        assert_clean(host)


@pytest.mark.parametrize("theme", ["dark", "light"])
async def test_the_waveforms_are_drawn(mixer: Any, theme: str) -> None:
    async with mixer(SEEDED_STEMS, theme=theme) as (host, _):
        shot = await host.page.screenshot()
        assert len(shot) > 10_000
        drawn = await host.view.evaluate("""() => [...document.querySelectorAll('.stem canvas')].map(c => {
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
            return n / (d.length / 4); })""")
        assert len(drawn) == 2 and all(share > 0.05 for share in drawn), drawn
        assert_clean(host)


async def test_the_harness_sees_csp_violations(browser: Any) -> None:
    """The probe works: a view that evals or loads from the network is caught, so 'no violation' can fail."""
    bad = """<!doctype html><html><head></head><body><img src="https://example.invalid/x.png">
    <script>try { new Function("return 1")(); } catch (e) {}</script></body></html>"""
    async with MixerHost(bad, browser=browser, expect_app=False) as host:
        await host.wait_for("csp", lambda v: v["effective"] == "img-src")
        await host.wait_for("csp", lambda v: v["effective"] == "script-src" and v["blocked"] == "eval")


# --- mixer.html beside the saved stems, opened with no host ------------------------------------------------------


async def saved_page(sandbox: ThreadedSandbox, output: Path) -> Path:
    async with connected(settings_for(sandbox, output)) as client:
        return Path(ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))["mixer"])


@asynccontextmanager
async def opened(browser: Any, url: str) -> AsyncIterator[tuple[Any, list[str]]]:
    page = await browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        await page.goto(url)
        await page.wait_for_function("() => window.__mixer.state().ready", timeout=45000)  # a loaded machine
        yield page, problems
    finally:
        await page.close()


async def test_the_saved_page_plays_its_stems_from_a_file_url(browser: Any, sandbox: ThreadedSandbox,
                                                              tmp_path: Path) -> None:
    page_file = await saved_page(sandbox, tmp_path)
    async with opened(browser, page_file.as_uri()) as (page, problems):
        state = await page.evaluate("() => window.__mixer.state()")
        assert state["engine"] == "elements" and state["status"] == "COMPLETED"
        assert state["duration"] == pytest.approx(SECONDS, abs=0.1)
        await page.locator("#play").click()
        await page.wait_for_function("() => window.__mixer.state().position > 1", timeout=5000)
        graph = (await page.evaluate("() => window.__mixer.state()"))["graph"]
        assert graph["paused"] == {"vocals": False, "instrumental": False}
        assert abs(graph["currentTimes"]["vocals"] - graph["currentTimes"]["instrumental"]) < 0.1
        await page.locator('.stem[data-stem="instrumental"] .mute').click()
        assert (await page.evaluate("() => window.__mixer.state()"))["graph"]["volumes"] == {
            "vocals": 1, "instrumental": 0}
        assert problems == []


async def test_the_saved_page_served_over_http_mixes_with_web_audio(browser: Any, sandbox: ThreadedSandbox,
                                                                    tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    page_file = await saved_page(sandbox, tmp_path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(page_file.parent))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/mixer.html"
        async with opened(browser, url) as (page, problems):
            assert (await page.evaluate("() => window.__mixer.state()"))["engine"] == "webaudio"
            render = await page.evaluate("() => window.__mixer.renderMix()")
            assert render["rms"]["mix"] == pytest.approx(saved_levels(page_file.parent)["mix"], rel=REL)
            assert problems == []
    finally:
        server.shutdown()
        server.server_close()


# --- MP3 stems, as the real CDN serves them -----------------------------------------------------------------------

MP3_REL = 0.08
"""64 kbit/s MP3 changes a stem's level by a few per cent; the gains' effect must still show."""


def source_levels(sandbox: ThreadedSandbox, job_id: str) -> dict[str, float]:
    """RMS of a job's stems as the sandbox synthesised them (the samples its MP3s were encoded from), and of
    their sum."""
    job = sandbox.sandbox.store.jobs[job_id]
    parts = {t.id: wav_samples(audio.wav_bytes(audio.Song(seed=t.seed, duration=t.duration), t.part))
             for t in job.tracks}
    return {"vocals": rms(parts["vocals"]), "instrumental": rms(parts["instrumental"]),
            "mix": rms([v + i for v, i in zip(parts["vocals"], parts["instrumental"], strict=True)])}


async def test_mp3_stems_load_play_and_mix_like_their_source(mp3_mixer: Any, mp3_sandbox: ThreadedSandbox,
                                                             tmp_path: Path) -> None:
    async with mp3_mixer(SEEDED_STEMS) as (host, client):
        state = await host.state()
        assert state["ready"] and state["engine"] == "webaudio", state
        assert state["duration"] == pytest.approx(SECONDS, abs=0.15)  # an MP3 frame of padding at most
        ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))  # a loaded machine may need a second call
        assert sorted(p.name for p in folder_of(tmp_path).iterdir()) == ["instrumental.mp3", "mixer.html",
                                                                         "vocals.mp3"]
        assert {c["arguments"]["stem"] for c in host.calls_to("stem_audio")} == {"vocals", "instrumental"}
        expected = source_levels(mp3_sandbox, SEEDED_STEMS)
        render = await host.render_mix()
        for part in ("vocals", "instrumental", "mix"):
            assert render["rms"][part] == pytest.approx(expected[part], rel=MP3_REL), part
        await stem_row(host, "vocals").locator(".mute").click()
        muted = (await host.render_mix())["rms"]
        assert muted["vocals"] == 0 and muted["mix"] == pytest.approx(expected["instrumental"], rel=MP3_REL)
        await host.controls.locator("#play").click()
        playing = await host.wait_until("s => s.playing && s.position > 0.3")
        assert playing["graph"]["activeSources"] == 2
        assert_clean(host)


async def test_the_saved_page_plays_mp3_stems_from_a_file_url(browser: Any, mp3_sandbox: ThreadedSandbox,
                                                              tmp_path: Path) -> None:
    page_file = await saved_page(mp3_sandbox, tmp_path)
    async with opened(browser, page_file.as_uri()) as (page, problems):
        state = await page.evaluate("() => window.__mixer.state()")
        assert state["engine"] == "elements" and state["duration"] == pytest.approx(SECONDS, abs=0.15)
        await page.locator("#play").click()
        await page.wait_for_function("() => window.__mixer.state().position > 1", timeout=5000)
        graph = (await page.evaluate("() => window.__mixer.state()"))["graph"]
        assert abs(graph["currentTimes"]["vocals"] - graph["currentTimes"]["instrumental"]) < 0.1
        assert problems == []
