"""The sandbox's CDN: byte ranges like a real CDN, and every way a CDN can misbehave, on demand."""

from __future__ import annotations

import socket
import time
import zlib
from collections.abc import Iterator

import httpx
import pytest

from suno_stems_mcp.sandbox import Sandbox, SandboxConfig, ThreadedSandbox
from suno_stems_mcp.sandbox.audio import Song, wav_bytes
from suno_stems_mcp.sandbox.seed import demo_id

pytestmark = pytest.mark.anyio

STEMS = demo_id("Midnight Harbor stems")
VOCALS = f"/cdn/audio/{STEMS}-0.wav"
INSTRUMENTAL = f"/cdn/audio/{STEMS}-1.wav"
MIB = 1 << 20


@pytest.fixture
def cdn() -> Iterator[ThreadedSandbox]:
    with ThreadedSandbox(Sandbox(SandboxConfig.fast())) as running:
        yield running


def vocals_bytes(sandbox: Sandbox) -> bytes:
    track = sandbox.store.jobs[STEMS].tracks[0]
    return wav_bytes(Song(seed=track.seed, duration=track.duration), track.part)


async def test_a_range_from_an_offset_is_a_206_with_its_content_range(api: httpx.AsyncClient,
                                                                      sandbox: Sandbox) -> None:
    whole = vocals_bytes(sandbox)
    full = await api.get(VOCALS)
    assert full.status_code == 200 and full.content == whole and full.headers["accept-ranges"] == "bytes"
    etag = full.headers["etag"]
    part = await api.get(VOCALS, headers={"Range": "bytes=1000-", "If-Range": etag})
    assert part.status_code == 206 and part.content == whole[1000:]
    assert part.headers["content-range"] == f"bytes 1000-{len(whole) - 1}/{len(whole)}"
    assert part.headers["content-length"] == str(len(whole) - 1000) and part.headers["etag"] == etag
    middle = await api.get(VOCALS, headers={"Range": "bytes=10-19"})
    assert middle.status_code == 206 and middle.content == whole[10:20]


async def test_a_stale_if_range_or_an_odd_range_gets_the_whole_file(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    whole = vocals_bytes(sandbox)
    for headers in ({"Range": "bytes=1000-", "If-Range": '"another-version"'}, {"Range": "bytes=0-1,5-9"},
                    {"Range": "bytes=9-5"}, {"Range": "pages=1-"}):
        answer = await api.get(VOCALS, headers=headers)
        assert answer.status_code == 200 and answer.content == whole, headers


async def test_a_range_past_the_end_is_unsatisfiable(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    size = len(vocals_bytes(sandbox))
    answer = await api.get(VOCALS, headers={"Range": f"bytes={size}-"})
    assert answer.status_code == 416 and answer.headers["content-range"] == f"bytes */{size}"


async def test_ignore_range_answers_200_with_the_whole_file(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.inject("GET /cdn/audio/*", ignore_range=True)
    answer = await api.get(VOCALS, headers={"Range": "bytes=1000-"})
    assert answer.status_code == 200 and answer.content == vocals_bytes(sandbox)
    assert (await api.get(VOCALS, headers={"Range": "bytes=1000-"})).status_code == 206


async def test_a_fault_for_one_file_leaves_the_other_alone(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.inject(f"GET {VOCALS}", times=5, status=410)
    assert (await api.get(INSTRUMENTAL)).status_code == 200
    assert (await api.get(VOCALS)).status_code == 410


@pytest.mark.parametrize("status", [403, 404, 410, 500, 502, 503])
async def test_the_cdn_answers_any_status(api: httpx.AsyncClient, sandbox: Sandbox, status: int) -> None:
    sandbox.inject("GET /cdn/audio/*", status=status)
    assert (await api.get(VOCALS)).status_code == status


async def test_a_dripping_body_lets_out_a_few_bytes_at_a_time(cdn: ThreadedSandbox) -> None:
    cdn.sandbox.inject("GET /cdn/audio/*", drip=0.05, drip_size=3)
    async with httpx.AsyncClient(base_url=cdn.url) as client, client.stream("GET", VOCALS) as answer:
        started, seen = time.monotonic(), 0
        async for chunk in answer.aiter_raw():
            assert len(chunk) <= 3
            seen += len(chunk)
            if seen >= 30:
                break
        assert time.monotonic() - started >= 0.4
        assert answer.headers["content-length"] == str(len(vocals_bytes(cdn.sandbox)))


async def test_dripping_headers_come_one_byte_at_a_time(cdn: ThreadedSandbox) -> None:
    cdn.sandbox.inject("GET /cdn/audio/*", drip_headers=0.01)
    with socket.create_connection(("127.0.0.1", cdn.port), timeout=10) as sock:
        sock.sendall(f"GET {VOCALS} HTTP/1.1\r\nHost: cdn\r\n\r\n".encode())
        started = time.monotonic()
        first = [sock.recv(100) for _ in range(10)]
        assert all(len(piece) == 1 for piece in first) and b"".join(first) == b"HTTP/1.1 2"
        assert time.monotonic() - started >= 0.08
    async with httpx.AsyncClient(base_url=cdn.url, timeout=10) as client:  # and the answer is whole in the end
        cdn.sandbox.inject("GET /cdn/audio/*", drip_headers=0.001)
        answer = await client.get(VOCALS)
        assert answer.status_code == 200 and answer.content == vocals_bytes(cdn.sandbox)


@pytest.mark.parametrize(("redirect", "location"), [
    ("loop", VOCALS + "?sig=abc"),
    ("http://cdn.example.test{path}", f"http://cdn.example.test{VOCALS}?sig=abc"),
    ("https://10.0.0.1{path}", f"https://10.0.0.1{VOCALS}?sig=abc"),
    ("http://169.254.169.254/latest/meta-data/", "http://169.254.169.254/latest/meta-data/"),
])
async def test_redirects(api: httpx.AsyncClient, sandbox: Sandbox, redirect: str, location: str) -> None:
    sandbox.inject("GET /cdn/audio/*", redirect=redirect)
    answer = await api.get(VOCALS + "?sig=abc")
    assert answer.status_code == 302 and answer.headers["location"] == location
    sandbox.inject("GET /cdn/audio/*", redirect="loop", status=308)
    assert (await api.get(VOCALS)).status_code == 308


async def test_a_gzip_bomb_is_small_and_inflates_to_what_was_asked(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.inject("GET /cdn/audio/*", body="gzip-bomb", inflates_to=40 * MIB)
    async with api.stream("GET", VOCALS) as answer:
        raw = b"".join([chunk async for chunk in answer.aiter_raw()])
    assert answer.headers["content-encoding"] == "gzip" and len(raw) < MIB
    assert answer.headers["content-length"] == str(len(raw))
    assert inflated_size(raw) == 40 * MIB


def inflated_size(data: bytes) -> int:
    """Bytes a (multi-member) gzip stream inflates to, counted without holding them."""
    total = 0
    while data:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        while data and not inflater.eof:
            total += len(inflater.decompress(data, MIB))
            data = inflater.unconsumed_tail
        data = inflater.unused_data
    return total


async def test_a_corrupt_gzip_body_does_not_inflate(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.inject("GET /cdn/audio/*", body="gzip-corrupt")
    async with api.stream("GET", VOCALS) as answer:
        raw = b"".join([chunk async for chunk in answer.aiter_raw()])
    assert answer.headers["content-encoding"] == "gzip" and raw[:2] == b"\x1f\x8b"
    with pytest.raises(zlib.error):
        zlib.decompress(raw, zlib.MAX_WBITS | 16)


async def test_an_endless_body_never_ends(cdn: ThreadedSandbox) -> None:
    cdn.sandbox.inject("GET /cdn/audio/*", body="endless")
    async with httpx.AsyncClient(base_url=cdn.url) as client, client.stream("GET", VOCALS) as answer:
        assert "content-length" not in answer.headers
        seen = 0
        async for chunk in answer.aiter_raw():
            seen += len(chunk)
            if seen > 8 * MIB:
                break
    assert seen > 8 * MIB
    async with httpx.AsyncClient(base_url=cdn.url) as client:  # the server let go of the abandoned answer
        assert (await client.get(VOCALS)).status_code == 200


async def test_a_body_shorter_than_its_content_length(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.inject("GET /cdn/audio/*", short_by=1000)
    with pytest.raises(httpx.RemoteProtocolError):
        await api.get(VOCALS)
