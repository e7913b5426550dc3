"""The sandbox's CDN serving MP3, as the real one does (SUNO_STEMS_SANDBOX_AUDIO=mp3, the `mp3` extra), and the
server saving, listing and chunking MP3 stems from it."""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from suno_stems_mcp.errors import SettingsError
from suno_stems_mcp.sandbox import DEMO_KEY, Sandbox, SandboxConfig, ThreadedSandbox, audio
from suno_stems_mcp.sandbox.audio import MP3_BIT_RATE, SAMPLE_RATE, Song

from .support import SEEDED_STEMS, SONG, connected, ok, settings_for
from .test_tool_stem_audio import app_client

pytestmark = pytest.mark.anyio
SECONDS = 12.0

# MPEG-2 layer III (the sample rates below 32 kHz): bit rates by index, in kbit/s, and samples per frame.
_MPEG2_L3_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MPEG2_RATES = (22050, 24000, 16000)
_SAMPLES_PER_FRAME = 576


def frames(mp3: bytes) -> list[tuple[int, int, int]]:
    """(bit rate, sample rate, channels) of every frame, walking the stream header to header: a stream that
    does not parse end to end raises AssertionError."""
    found, at = [], 0
    while at < len(mp3):
        (header,) = struct.unpack(">I", mp3[at:at + 4])
        assert header >> 21 == 0x7FF, f"no frame sync at byte {at}"
        version, layer = (header >> 19) & 3, (header >> 17) & 3
        assert (version, layer) == (2, 1), f"not MPEG-2 layer III at byte {at}"
        kbps, rate = _MPEG2_L3_KBPS[(header >> 12) & 15], _MPEG2_RATES[(header >> 10) & 3]
        padding, mono = (header >> 9) & 1, ((header >> 6) & 3) == 3
        found.append((kbps, rate, 1 if mono else 2))
        at += 72 * kbps * 1000 // rate + padding
    assert at == len(mp3), "the last frame is cut short"
    return found


def test_an_mp3_part_is_a_whole_stream_as_long_as_its_song() -> None:
    song = Song(seed=7, duration=SECONDS)
    encoded = audio.mp3_bytes(song, "vocals")
    every = frames(encoded)
    assert set(every) == {(MP3_BIT_RATE, SAMPLE_RATE, 1)}
    assert len(every) * _SAMPLES_PER_FRAME / SAMPLE_RATE == pytest.approx(SECONDS, abs=0.1)
    assert audio.mp3_bytes(song, "vocals") == encoded != audio.mp3_bytes(song, "instrumental")


def test_the_format_is_checked_where_it_is_set() -> None:
    with pytest.raises(ValueError, match="audio_format must be one of wav, mp3"):
        SandboxConfig(audio_format="flac")
    with pytest.raises(SettingsError, match="SUNO_STEMS_SANDBOX_AUDIO='ogg' is not one of wav, mp3"):
        SandboxConfig.from_env({"SUNO_STEMS_SANDBOX_AUDIO": "ogg"})
    assert SandboxConfig.from_env({"SUNO_STEMS_SANDBOX_AUDIO": " MP3 "}).audio_format == "mp3"
    assert SandboxConfig.from_env({}).audio_format == "wav"


@pytest.fixture
def mp3_sandbox() -> ThreadedSandbox:
    with ThreadedSandbox(Sandbox(SandboxConfig.fast(track_seconds=SECONDS, audio_format="mp3"))) as running:
        yield running  # type: ignore[misc]


@pytest.fixture
async def cdn(mp3_sandbox: ThreadedSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=mp3_sandbox.url, headers={"X-API-Key": DEMO_KEY}, timeout=10) as client:
        yield client


async def test_results_link_mp3_that_the_cdn_serves_whole_and_in_ranges(cdn: httpx.AsyncClient) -> None:
    job = (await cdn.get(f"/v2/jobs/{SEEDED_STEMS}")).json()
    urls = [t["audioUrl"] for t in job["result"]["tracks"]]
    assert [u.rsplit("-", 1)[1] for u in urls] == ["0.mp3", "1.mp3"]
    whole = await cdn.get(urls[0])
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/mpeg"
    assert int(whole.headers["content-length"]) == len(whole.content) and frames(whole.content)
    head = await cdn.head(urls[0])
    assert head.headers["content-length"] == whole.headers["content-length"] and head.content == b""
    tail = await cdn.get(urls[0], headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206 and tail.content == whole.content[1000:]
    assert tail.headers["content-range"] == f"bytes 1000-{len(whole.content) - 1}/{len(whole.content)}"
    # A link handed out while the sandbox served WAV keeps working after it switched.
    wav = await cdn.get(urls[0].replace(".mp3", ".wav"))
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF"


async def test_a_split_saves_mp3_stems_and_the_mixer_page_names_them(mp3_sandbox: ThreadedSandbox,
                                                                     tmp_path: Path) -> None:
    async with connected(settings_for(mp3_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 30}))
        while not job["done"] or not all(t.get("file") for t in job["tracks"]):
            job = ok(await client.call_tool("get_job", {"job_id": job["job_id"], "wait_seconds": 30}))
    files = {t["id"]: Path(t["file"]) for t in job["tracks"]}
    assert {stem: path.name for stem, path in files.items()} == {"vocals": "vocals.mp3",
                                                                 "instrumental": "instrumental.mp3"}
    for path in files.values():
        frames(path.read_bytes())
    page = Path(job["mixer"]).read_text()
    assert '"vocals.mp3"' in page and '"instrumental.mp3"' in page


async def test_stem_audio_hands_the_view_mp3_bytes_as_audio_mpeg(mp3_sandbox: ThreadedSandbox,
                                                                 tmp_path: Path) -> None:
    async with app_client(settings_for(mp3_sandbox, tmp_path)) as client:
        ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
        chunk = ok(await client.call_tool("stem_audio", {"job_id": SEEDED_STEMS, "stem": "vocals", "offset": 0}))
    assert chunk["mime"] == "audio/mpeg" and "next_offset" not in chunk
    data = base64.b64decode(chunk["data"])
    assert len(data) == chunk["size"] and data == next(tmp_path.rglob("vocals.mp3")).read_bytes()
    frames(data)
