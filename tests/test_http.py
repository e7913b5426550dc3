"""MCP over streamable HTTP: served by uvicorn on loopback, reached with the SDK's own HTTP client."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from suno_stems_mcp.http_transport import build_http_app
from suno_stems_mcp.mcp_server import build_server
from suno_stems_mcp.net import UvicornThread
from suno_stems_mcp.sandbox import ThreadedSandbox

from .support import SONG, child_env, command, ok, served_url, settings_for

pytestmark = pytest.mark.anyio

TOKEN = "test-token-not-a-secret-0123456789abcdef"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@contextmanager
def http_server(sandbox: ThreadedSandbox, tmp_path: Path, **changes: object) -> Iterator[str]:
    settings = settings_for(sandbox, tmp_path, transport="http", download=False, **changes)
    app = build_http_app(build_server(settings), settings, host="127.0.0.1")
    with UvicornThread(app) as running:
        yield f"{running.url}/mcp"


def client(url: str, token: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=30)))


async def test_the_tools_work_over_http_with_progress(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(runs_for=2.5)
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    with http_server(live_sandbox, tmp_path) as url:
        async with client(url) as session:
            names = {t.name for t in (await session.list_tools()).tools}
            job = ok(await session.call_tool("split_stems", {"parent_job_id": SONG, "index": 1},
                                             progress_callback=on_progress))
            again = ok(await session.call_tool("get_job", {"job_id": job["job_id"]}))
    assert names == {"list_tracks", "split_stems", "get_job"}
    assert job["status"] == "COMPLETED" and again["job_id"] == job["job_id"]
    assert all(t.get("file") is None for t in job["tracks"])  # downloads are off by default on HTTP
    assert len(progress) >= 2 and progress[-1] == 100


@pytest.mark.parametrize(("headers", "status"), [
    ({"Host": "evil.example.com"}, 421),
    ({"Host": "127.0.0.1.nip.io:8000"}, 421),
    ({"Origin": "https://evil.example.com"}, 403),
    ({"Origin": "http://127.0.0.1.evil.example.com"}, 403),
])
async def test_dns_rebinding_is_refused(live_sandbox: ThreadedSandbox, tmp_path: Path, headers: dict[str, str],
                                        status: int) -> None:
    with http_server(live_sandbox, tmp_path) as url:
        async with httpx.AsyncClient() as raw:
            refused = await raw.post(url, json=INITIALIZE, headers={**MCP_HEADERS, **headers})
            allowed = await raw.post(url, json=INITIALIZE,
                                     headers={**MCP_HEADERS, "Origin": url.rsplit("/", 1)[0]})
    assert refused.status_code == status
    assert allowed.status_code == 200


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Bearer {TOKEN}x", "bearer wrong", TOKEN])
async def test_with_a_token_every_request_needs_it(live_sandbox: ThreadedSandbox, tmp_path: Path,
                                                   authorization: str | None) -> None:
    with http_server(live_sandbox, tmp_path, http_token=SecretStr(TOKEN)) as url:
        async with httpx.AsyncClient() as raw:
            headers = {**MCP_HEADERS, **({"Authorization": authorization} if authorization else {})}
            refused = await raw.post(url, json=INITIALIZE, headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in refused.text
        async with client(url, TOKEN) as session:
            assert len((await session.list_tools()).tools) == 3


async def test_the_command_serves_http_on_loopback(tmp_path: Path) -> None:
    process = subprocess.Popen([*command(), "--transport", "http", "--port", "0", "--sandbox"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=child_env(SUNO_STEMS_OUTPUT_DIR=str(tmp_path)))
    try:
        url = served_url(process)
        assert url.startswith("http://127.0.0.1:")
        async with client(url) as session:
            tracks = ok(await session.call_tool("list_tracks", {"limit": 1}))["tracks"]
        assert tracks and tracks[0]["audio_url"].startswith("http://127.0.0.1:")
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_a_public_address_without_a_token_refuses_to_start() -> None:
    result = subprocess.run([*command(), "--transport", "http", "--host", "0.0.0.0", "--port", "0"],
                            capture_output=True, text=True, timeout=60, env=child_env())
    assert result.returncode == 2 and "SUNO_STEMS_HTTP_TOKEN" in result.stderr


def test_a_public_address_with_a_token_starts(tmp_path: Path) -> None:
    process = subprocess.Popen([*command(), "--transport", "http", "--host", "0.0.0.0", "--port", "0", "--sandbox"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=child_env(SUNO_STEMS_HTTP_TOKEN=TOKEN))
    try:
        url = served_url(process)
        assert url.startswith("http://0.0.0.0:")
        port = url.rsplit(":", 1)[1].removesuffix("/mcp")
        no_token = httpx.post(f"http://127.0.0.1:{port}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        with_token = httpx.post(f"http://127.0.0.1:{port}/mcp", json=INITIALIZE,
                                headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"})
        assert (no_token.status_code, with_token.status_code) == (401, 200)
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert process.stderr is not None and TOKEN not in process.stderr.read()
