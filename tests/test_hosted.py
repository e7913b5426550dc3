"""Hosted mode (`--hosted`): stateless streamable HTTP for many users, each request bringing its own apiframe key
in X-Apiframe-Key; health, readiness and draining. Against the sandbox over real sockets, through the SDK's
own client in both protocol eras (legacy initialize handshake, and 2026-07-28)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpcore
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from suno_stems_mcp.config import Settings
from suno_stems_mcp.core import runtime as runtime_module
from suno_stems_mcp.core.runtime import Runtime, key_scope
from suno_stems_mcp.deadline import Deadline
from suno_stems_mcp.errors import MissingKey, SettingsError
from suno_stems_mcp.http_transport import build_http_app, http_limits
from suno_stems_mcp.mcp_server import build_server
from suno_stems_mcp.net import UvicornThread
from suno_stems_mcp.sandbox import Sandbox, SandboxConfig, ThreadedSandbox
from suno_stems_mcp.sandbox.seed import seeded_id

from .support import child_env, command, error, ok

pytestmark = pytest.mark.anyio

ERAS = ["legacy", "2026-07-28"]
ALICE = "afk_sandbox_alice"
BOB = "afk_sandbox_bob"
TOKEN = "hosted-test-token-not-a-secret-8c1d0f3b2a"


def hosted_settings(sandbox: ThreadedSandbox, **changes: Any) -> Settings:
    values: dict[str, Any] = {"base_url": sandbox.url, "download": False, "max_wait": 10.0, "transport": "http",
                              "hosted": True}
    values.update(changes)
    return Settings(**values)


@contextmanager
def hosted_server(sandbox: ThreadedSandbox, **changes: Any) -> Iterator[UvicornThread]:
    settings = hosted_settings(sandbox, **changes)
    with UvicornThread(build_http_app(build_server(settings), settings, host="127.0.0.1"), **http_limits()) as running:
        yield running


def user(url: str, key: str | None, mode: str, token: str | None = None) -> Client:
    headers = {"X-Apiframe-Key": key} if key else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return Client(streamable_http_client(f"{url}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=30)),
                  mode=mode)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ThreadedSandbox]:
    with ThreadedSandbox(Sandbox(SandboxConfig.fast())) as running:
        yield running


@pytest.fixture(scope="module")
def server(sandbox: ThreadedSandbox) -> Iterator[UvicornThread]:
    with hosted_server(sandbox) as running:
        yield running


@pytest.mark.parametrize("mode", ERAS)
async def test_each_user_works_with_their_own_key_and_sees_only_their_jobs(server: UvicornThread,
                                                                           mode: str) -> None:
    alice_song, bob_song = seeded_id(ALICE, "Midnight Harbor"), seeded_id(BOB, "Midnight Harbor")
    async with user(server.url, ALICE, mode) as alice, user(server.url, BOB, mode) as bob:
        tracks = ok(await alice.call_tool("list_tracks", {"limit": 2}))
        job = ok(await alice.call_tool("split_stems", {"parent_job_id": alice_song, "index": 1,
                                                       "wait_seconds": 8}))
        again = ok(await alice.call_tool("get_job", {"job_id": job["job_id"]}))
        foreign = await bob.call_tool("get_job", {"job_id": job["job_id"]})
        not_mine = await bob.call_tool("split_stems", {"parent_job_id": alice_song, "index": 1})
        bobs = ok(await bob.call_tool("list_tracks", {"job_id": bob_song}))
    assert {t["job_id"] for t in tracks["tracks"]}.isdisjoint({bob_song})
    assert again["job_id"] == job["job_id"] and all("file" not in t for t in job["tracks"])
    assert foreign.is_error and job["job_id"] in error(foreign) and "no job" in error(foreign)
    assert not_mine.is_error
    assert bobs["tracks"][0]["job_id"] == bob_song
    for result in (tracks, job, again, bobs):
        assert ALICE not in str(result) and BOB not in str(result)


@pytest.mark.parametrize("mode", ERAS)
async def test_a_request_without_the_key_gets_a_tool_error_naming_the_header(server: UvicornThread,
                                                                             mode: str) -> None:
    async with user(server.url, None, mode) as nobody, user(server.url, "not a key", mode) as blank:
        names = {tool.name for tool in (await nobody.list_tools()).tools}
        missing = await nobody.call_tool("list_tracks", {})
        empty = await blank.call_tool("get_job", {"job_id": seeded_id(ALICE, "Midnight Harbor")})
    assert names == {"list_tracks", "split_stems", "get_job"}
    for result in (missing, empty):
        assert result.is_error and "X-Apiframe-Key" in error(result)


async def test_download_is_refused_per_call_when_hosted(server: UvicornThread) -> None:
    async with user(server.url, ALICE, "legacy") as alice:
        refused = await alice.call_tool("get_job", {"job_id": seeded_id(ALICE, "Midnight Harbor"),
                                                    "download": True})
    assert refused.is_error and "hosted" in error(refused) and "download" in error(refused)


async def test_any_replica_answers_any_request_of_one_client(sandbox: ThreadedSandbox) -> None:
    """Stateless: a client's requests spread over two servers (no session id to stick to) all succeed."""
    with hosted_server(sandbox) as first, hosted_server(sandbox) as second:
        song = seeded_id(ALICE, "Paper Satellites")
        async with user(first.url, ALICE, "legacy") as on_first:
            job = ok(await on_first.call_tool("split_stems", {"parent_job_id": song, "index": 2, "wait_seconds": 0}))
        async with user(second.url, ALICE, "legacy") as on_second:
            again = ok(await on_second.call_tool("split_stems", {"parent_job_id": song, "index": 2,
                                                                 "wait_seconds": 8}))
        async with httpx.AsyncClient() as raw:  # a bare tools/call, no initialize, no session: still served
            bare = await raw.post(f"{second.url}/mcp", json={
                "jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": "get_job", "arguments": {"job_id": job["job_id"]}}},
                headers={"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                         "X-Apiframe-Key": ALICE, "MCP-Protocol-Version": "2025-11-25"})
    assert again["job_id"] == job["job_id"] and again["reused"] is True
    assert bare.status_code == 200 and job["job_id"] in bare.text and "mcp-session-id" not in bare.headers


async def test_the_token_still_guards_mcp_but_not_health(sandbox: ThreadedSandbox) -> None:
    with hosted_server(sandbox, http_token=SecretStr(TOKEN)) as running:
        async with httpx.AsyncClient() as raw:
            refused = await raw.post(f"{running.url}/mcp", json={}, headers={"X-Apiframe-Key": ALICE})
            health = await raw.get(f"{running.url}/healthz")
            ready = await raw.get(f"{running.url}/readyz")
        async with user(running.url, ALICE, "2026-07-28", token=TOKEN) as alice:
            listed = ok(await alice.call_tool("list_tracks", {"limit": 1}))
    assert refused.status_code == 401
    assert health.status_code == 200 and ready.status_code == 200
    assert listed["tracks"]


async def test_a_crowd_of_users_waits_its_turn_outside_the_connection_pool(sandbox: ThreadedSandbox,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Many users at once: the apiframe requests beyond the pool's connections wait in a plain queue, not in
    httpx's pool, whose bookkeeping at every request's start and end goes over each request queued in it against
    each connection (with 300 users at once, a replica spent most of its CPU there and calls missed their time)."""
    peak = 0
    assign = httpcore.AsyncConnectionPool._assign_requests_to_connections  # where that bookkeeping happens

    def counting(pool: httpcore.AsyncConnectionPool) -> Any:
        nonlocal peak
        peak = max(peak, len(pool._requests))
        return assign(pool)

    monkeypatch.setattr(httpcore.AsyncConnectionPool, "_assign_requests_to_connections", counting)
    runtime = Runtime(hosted_settings(sandbox))
    limit = runtime_module.MAX_CONNECTIONS
    crowd = [f"afk_sandbox_crowd{n}" for n in range(3 * limit)]
    try:
        jobs = await _gather(*(runtime.for_call(key).api().get_job(seeded_id(key, "Midnight Harbor"), Deadline(30))
                               for key in crowd))
    finally:
        await runtime.aclose()
    assert [job.id for job in jobs] == [seeded_id(key, "Midnight Harbor") for key in crowd]
    assert peak <= limit, f"{peak} requests at once in a pool of {limit} connections"


async def _gather(*calls: Any) -> list[Any]:
    results: list[Any] = [None] * len(calls)

    async def one(i: int, call: Any) -> None:
        results[i] = await call

    async with anyio.create_task_group() as group:
        for i, call in enumerate(calls):
            group.start_soon(one, i, call)
    return results


def test_memory_is_scoped_by_a_hash_of_the_key_and_bounded() -> None:
    runtime = Runtime(Settings(transport="http", hosted=True, download=False))
    alice, bob = runtime.for_call(ALICE), runtime.for_call(BOB)
    alice.memory.submitted_keys["k"] = True
    assert "k" not in bob.memory.submitted_keys and "k" in runtime.for_call(ALICE).memory.submitted_keys
    assert "k" not in runtime.memory.submitted_keys  # the process-wide memory is not the user's
    assert len(key_scope(SecretStr(ALICE))) == 16 and ALICE not in key_scope(SecretStr(ALICE))
    for missing in (None, "", "two words", "afk_\u00e9"):
        with pytest.raises(MissingKey, match="X-Apiframe-Key"):
            runtime.for_call(missing).api()
    for n in range(2100):
        runtime.for_call(f"afk_sandbox_u{n}")
    assert runtime.user_count <= 2000


def test_hosted_refuses_a_server_key_a_sandbox_and_downloads() -> None:
    for env, words in [({"APIFRAME_API_KEY": "afk_fake_server_key"}, "X-Apiframe-Key"),
                       ({"SUNO_STEMS_SANDBOX": "1"}, "suno-stems-mcp sandbox"),
                       ({"SUNO_STEMS_DOWNLOAD": "true"}, "never saves")]:
        with pytest.raises(SettingsError, match=words):
            Settings.from_env(env, transport="http", hosted=True)
    with pytest.raises(SettingsError, match="--transport http"):
        Settings.from_env({}, transport="stdio", hosted=True)
    assert Settings.from_env({}, transport="http", hosted=True).download is False


@pytest.mark.slow
def test_the_command_refuses_to_start_hosted_with_a_server_key() -> None:
    done = subprocess.run([*command(), "--transport", "http", "--hosted", "--port", "0"], capture_output=True,
                          text=True, timeout=30, env=child_env(APIFRAME_API_KEY="afk_fake_do_not_print_me"))
    assert done.returncode == 2 and "APIFRAME_API_KEY" in done.stderr and "X-Apiframe-Key" in done.stderr
    assert "afk_fake_do_not_print_me" not in done.stderr + done.stdout


def _start_hosted(sandbox: ThreadedSandbox, port: int, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*command(), "--transport", "http", "--hosted", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=child_env(APIFRAME_BASE_URL=sandbox.url, SUNO_STEMS_MAX_WAIT="10", **env))


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError("the hosted server did not become ready")


@pytest.mark.slow
async def test_sigterm_drains_a_call_in_flight_refuses_new_ones_then_exits(sandbox: ThreadedSandbox) -> None:
    sandbox.sandbox.plan_next(runs_for=1.5)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = _start_hosted(sandbox, port)
    try:
        _wait_ready(url, process)
        song = seeded_id(ALICE, "Midnight Harbor")
        results: dict[str, Any] = {}

        async def long_call() -> None:
            async with user(url, ALICE, "legacy") as alice:
                await alice.list_tools()  # the client checks results against the tools' schemas: fetch them first
                results["split"] = await alice.call_tool("split_stems", {"parent_job_id": song, "index": 2,
                                                                         "wait_seconds": 8})

        async with anyio.create_task_group() as group:
            group.start_soon(long_call)
            await anyio.sleep(0.6)  # the split is in flight
            process.send_signal(signal.SIGTERM)
            await anyio.sleep(0.3)
            async with httpx.AsyncClient() as raw:
                ready = await raw.get(f"{url}/readyz")
                refused = await raw.post(f"{url}/mcp", json={}, headers={"X-Apiframe-Key": ALICE})
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate(timeout=10)
    assert ready.status_code == 503 and refused.status_code == 503 and "shutting down" in refused.text
    job = ok(results["split"])
    assert job["status"] == "COMPLETED", (job, stderr)
    assert code == 0
    assert ALICE not in stderr, "a key appeared in the server's log"
