"""The mixer as an MCP App against the real server: its ui:// resource, the tools that link to it, and the
app-only stem_audio (listed to and callable by Apps clients only; reads only this server's stems)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

from suno_stems_mcp.config import Settings
from suno_stems_mcp.mcp_server import build_server
from suno_stems_mcp.mixer import CDN, URI, view_html
from suno_stems_mcp.sandbox import ThreadedSandbox

from .support import SEEDED_STEMS, SONG, SONG_2, connected, error, files_under, ok, settings_for

pytestmark = pytest.mark.anyio

CHUNK = 512 * 1024


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[Client]:
    """An in-memory client that negotiated MCP Apps, as a host that renders views does."""
    apps = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
    async with Client(build_server(settings), extensions=[apps]) as client:
        yield client


async def whole_stem(client: Client, job_id: str, stem: str) -> tuple[bytes, list[dict[str, Any]]]:
    chunks: list[dict[str, Any]] = []
    offset: int | None = 0
    received = b""
    while offset is not None:
        chunk = ok(await client.call_tool("stem_audio", {"job_id": job_id, "stem": stem, "offset": offset}))
        assert chunk["offset"] == offset and chunk["job_id"] == job_id and chunk["stem"] == stem
        data = base64.b64decode(chunk["data"])
        assert 0 < len(data) <= CHUNK
        received += data
        chunks.append(chunk)
        offset = chunk.get("next_offset")
        assert offset is None or offset == len(received)
    assert len(received) == chunks[0]["size"] and {c["size"] for c in chunks} == {len(received)}
    return received, chunks


async def test_the_view_is_a_ui_resource_with_the_cdn_declared(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with app_client(settings_for(live_sandbox, tmp_path)) as client:
        listed = (await client.list_resources()).resources
        read = await client.read_resource(URI)
    assert [(r.uri, r.mime_type) for r in listed] == [(URI, APP_MIME_TYPE)]
    (content,) = read.contents
    assert content.mime_type == APP_MIME_TYPE and content.text == view_html()  # type: ignore[union-attr]
    ui = (content.meta or {})["ui"]
    assert ui["csp"] == {"resourceDomains": [CDN], "connectDomains": [CDN]} and ui["prefersBorder"] is True


async def test_an_apps_client_sees_stem_audio_for_the_app_and_the_same_three_for_the_model(
        live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with app_client(settings_for(live_sandbox, tmp_path)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert sorted(tools) == ["get_job", "list_tracks", "split_stems", "stem_audio"]
    ui = {name: (tool.meta or {}).get("ui") for name, tool in tools.items()}
    assert ui == {"list_tracks": None,
                  "split_stems": {"resourceUri": URI, "visibility": ["model", "app"]},
                  "get_job": {"resourceUri": URI, "visibility": ["model", "app"]},
                  "stem_audio": {"resourceUri": URI, "visibility": ["app"]}}
    for_model = [name for name, u in ui.items() if u is None or "model" in u["visibility"]]
    assert sorted(for_model) == ["get_job", "list_tracks", "split_stems"]
    hints = tools["stem_audio"].annotations
    assert hints is not None and (hints.read_only_hint, hints.destructive_hint) == (True, False)


async def test_a_client_without_apps_neither_sees_nor_can_call_stem_audio(live_sandbox: ThreadedSandbox,
                                                                         tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        names = sorted(t.name for t in (await client.list_tools()).tools)
        refused = error(await client.call_tool("stem_audio", {"job_id": SEEDED_STEMS, "stem": "vocals"}))
    assert names == ["get_job", "list_tracks", "split_stems"]
    assert "did not negotiate" in refused and "MCP Apps" in refused


async def test_stem_audio_reads_the_saved_stems_in_chunks(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with app_client(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
        files = {t["id"]: Path(t["file"]) for t in job["tracks"]}
        for stem in ("vocals", "instrumental"):
            received, chunks = await whole_stem(client, SEEDED_STEMS, stem)
            assert received == files[stem].read_bytes()
            assert chunks[0]["mime"] == "audio/wav" and len(chunks) == -(-len(received) // CHUNK)
        last = ok(await client.call_tool("stem_audio", {"job_id": SEEDED_STEMS, "stem": "vocals",
                                                        "offset": files["vocals"].stat().st_size}))
    assert last["data"] == "" and "next_offset" not in last


async def test_stem_audio_streams_unsaved_stems_from_the_cdn_and_saves_nothing(live_sandbox: ThreadedSandbox,
                                                                              tmp_path: Path) -> None:
    async with app_client(settings_for(live_sandbox, tmp_path, download=False)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
        assert not any("file" in t for t in job["tracks"])
        received, _ = await whole_stem(client, SEEDED_STEMS, "instrumental")
    assert received[:4] == b"RIFF" and files_under(tmp_path) == []
    async with connected(settings_for(live_sandbox, tmp_path / "saved")) as client:
        saved = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
    assert received == Path(next(t["file"] for t in saved["tracks"] if t["id"] == "instrumental")).read_bytes()


@pytest.mark.parametrize(("job_id", "arguments", "says"), [
    (SONG, {"stem": "vocals"}, "not a stems job"),
    (SEEDED_STEMS, {"stem": "drums"}, "must be one of"),
    (SEEDED_STEMS, {"stem": "vocals", "offset": -1}, "at least 0"),
    (SEEDED_STEMS, {"stem": "vocals", "offset": 10**12}, "past the end"),
    ("00000000-0000-4000-8000-000000000000", {"stem": "vocals"}, "no job"),
])
async def test_stem_audio_refuses_what_is_not_a_finished_stem_of_this_account(
        live_sandbox: ThreadedSandbox, tmp_path: Path, job_id: str, arguments: dict[str, Any], says: str) -> None:
    async with app_client(settings_for(live_sandbox, tmp_path)) as client:
        message = error(await client.call_tool("stem_audio", {"job_id": job_id, **arguments}))
    assert says in message, message


async def test_stem_audio_refuses_a_split_still_running(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with app_client(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG_2, "index": 1, "wait_seconds": 0}))
        assert not job["done"]
        message = error(await client.call_tool("stem_audio", {"job_id": job["job_id"], "stem": "vocals"}))
    assert "not COMPLETED" in message and "get_job" in message, message
