"""The HTTP transport under attack: foreign Host/Origin, bearer-token guessing, oversized bodies, slow clients,
crowds of sessions and malformed JSON-RPC, against the real app served by uvicorn on loopback.

Every attack is recorded as a row (attack, expected, observed, passed) in the "http" section of RELIABILITY.md.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from suno_stems_mcp.http_transport import MAX_BODY_BYTES, GuardedH11Protocol, build_http_app, http_limits
from suno_stems_mcp.mcp_server import build_server
from suno_stems_mcp.net import UvicornThread
from suno_stems_mcp.sandbox import Sandbox, SandboxConfig, ThreadedSandbox

from . import reliability
from .support import ok, settings_for

pytestmark = pytest.mark.anyio

TOKEN = "http-security-token-not-a-secret-5f0c2a9e71d44b3c"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "attacker", "version": "1"}}}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
MiB = 1024 * 1024
CALL_BOUND = 30.0
"""Generous: a normal call on an idle loopback server takes well under a second; the machine is shared."""


TAKEN: Counter[str] = Counter()
"""How many attack tests each module-scoped server (fixture name) has taken in this process."""


def record(attack: str, expected: str, observed: object, passed: bool) -> None:
    reliability.row("http", attack, expected, observed, "yes" if passed else "NO")


@contextmanager
def serving(sandbox: ThreadedSandbox, output: Path, limits: dict[str, Any] | None = None,
            **changes: Any) -> Iterator[UvicornThread]:
    limits = limits or {}
    settings = settings_for(sandbox, output, transport="http", download=False, **changes)
    app = build_http_app(build_server(settings), settings, host="127.0.0.1")
    with UvicornThread(app, **{**http_limits(), **limits}) as running:
        yield running


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ThreadedSandbox]:
    reliability.describe(
        "http",
        "The real streamable-HTTP app (`build_http_app`) served by uvicorn on a loopback port, attacked with raw "
        "sockets, httpx and the SDK's own client: foreign and lookalike Host/Origin headers, bearer-token "
        "guesses, bodies over the 1 MiB limit (declared and streamed), slow and silent clients, crowds of "
        "concurrent sessions, and malformed JSON-RPC. After each attack, and again after the last attack each "
        "server instance took, a normal tool call must still succeed.",
        headers=["attack", "expected", "observed", "passed"],
    )
    with ThreadedSandbox(Sandbox(SandboxConfig.fast())) as running:
        yield running


def still_serves_after_its_attacks(name: str, running: UvicornThread, token: str | None) -> None:
    """The last word on a server: after every attack it took, a normal call still works. Checked when the
    fixture is torn down, i.e. after the last test that used it (tests may be spread over xdist workers, so
    no single test can be known to run last)."""
    with ThreadPoolExecutor(1) as pool:  # a loop of its own, whatever the test runner's loop is doing
        listing = pool.submit(anyio.run, normal_call, running.url, token).result(timeout=CALL_BOUND + 15)
    attacks = TAKEN.pop(name, 0)
    served = bool(listing["tracks"])
    label = {"server": "open", "guarded": "token-guarded"}[name]
    record(f"after its last attack: a normal tool call ({label} server, {attacks} attack tests taken)", "served",
           "served" if served else "not served", served and attacks > 0)
    assert served


@pytest.fixture(scope="module")
def server(sandbox: ThreadedSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornThread]:
    """One server without a token, shared by the attacks in this module (so they accumulate)."""
    with serving(sandbox, tmp_path_factory.mktemp("http-security")) as running:
        yield running
        still_serves_after_its_attacks("server", running, None)


@pytest.fixture(scope="module")
def guarded(sandbox: ThreadedSandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[UvicornThread]:
    """A server that requires `Authorization: Bearer TOKEN`."""
    with serving(sandbox, tmp_path_factory.mktemp("http-guarded"), http_token=SecretStr(TOKEN)) as running:
        yield running
        still_serves_after_its_attacks("guarded", running, TOKEN)


@pytest.fixture(autouse=True)
def _count_attacks(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for name in ("server", "guarded"):
        if name in request.fixturenames:
            TAKEN[name] += 1


def mcp_client(url: str, token: str | None = None) -> Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=CALL_BOUND)))


async def normal_call(base: str, token: str | None = None) -> dict[str, Any]:
    """A whole MCP session doing one ordinary tool call; fails the test if it does not complete in time."""
    with anyio.fail_after(CALL_BOUND):
        async with mcp_client(f"{base}/mcp", token) as session:
            return ok(await session.call_tool("list_tracks", {"limit": 1}))


def sse_messages(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages in a response, whether sent as JSON or as server-sent events."""
    if response.headers.get("content-type", "").startswith("application/json"):
        return [response.json()]
    return [json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")]


# --- DNS rebinding ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", [
    "evil.example.com",
    "localhost.evil.com",
    "127.0.0.1.nip.io",
    "127.0.0.1@evil.com",
    "[2001:db8::1]:8000",
    "[::ffff:7f00:1]:8000",
    "LOCALHOST.evil.com:8000",
])
async def test_a_foreign_or_lookalike_host_header_is_refused_with_421(server: UvicornThread, host: str) -> None:
    async with httpx.AsyncClient(timeout=CALL_BOUND) as raw:
        refused = await raw.post(f"{server.url}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Host": host})
        allowed = await raw.post(f"{server.url}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
    record(f"Host: {host}", "421", refused.status_code, refused.status_code == 421)
    assert refused.status_code == 421
    assert "jsonrpc" not in refused.text  # refused before the MCP layer, not answered
    assert allowed.status_code == 200


@pytest.mark.parametrize("origin", [
    "https://evil.example.com",
    "http://localhost.evil.com",
    "http://127.0.0.1@evil.com",
    "http://127.0.0.1.evil.com:8000",
    "http://[2001:db8::1]:8000",
    "null",
    "https://127.0.0.1:8000",
])
async def test_a_foreign_or_lookalike_origin_is_refused_with_403(server: UvicornThread, origin: str) -> None:
    async with httpx.AsyncClient(timeout=CALL_BOUND) as raw:
        refused = await raw.post(f"{server.url}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Origin": origin})
        allowed = await raw.post(f"{server.url}/mcp", json=INITIALIZE, headers={**MCP_HEADERS, "Origin": server.url})
    record(f"Origin: {origin}", "403", refused.status_code, refused.status_code == 403)
    assert refused.status_code == 403
    assert allowed.status_code == 200


# --- bearer token -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("attack", "headers", "query"), [
    ("no Authorization header", {}, ""),
    ("wrong token", {"Authorization": "Bearer wrong-token"}, ""),
    ("token in upper case", {"Authorization": f"Bearer {TOKEN.upper()}"}, ""),
    ("wrong token after a lower-case scheme", {"Authorization": "bearer wrong-token"}, ""),
    ("the scheme alone", {"Authorization": "Bearer"}, ""),
    ("token missing its last character", {"Authorization": f"Bearer {TOKEN[:-1]}"}, ""),
    ("token with a suffix", {"Authorization": f"Bearer {TOKEN}0"}, ""),
    ("token with a prefix", {"Authorization": f"Bearer 0{TOKEN}"}, ""),
    ("token without the scheme", {"Authorization": TOKEN}, ""),
    ("token as Basic credentials", {"Authorization": f"Basic {TOKEN}"}, ""),
    ("token in the query string", {}, f"?token={TOKEN}"),
    ("token in access_token query", {}, f"?access_token={TOKEN}"),
    ("token in X-API-Key header", {"X-API-Key": TOKEN}, ""),
])
async def test_without_the_exact_bearer_token_a_request_is_refused_with_401(
        guarded: UvicornThread, attack: str, headers: dict[str, str], query: str) -> None:
    async with httpx.AsyncClient(timeout=CALL_BOUND) as raw:
        refused = await raw.post(f"{guarded.url}/mcp{query}", json=INITIALIZE, headers={**MCP_HEADERS, **headers})
    record(f"bearer: {attack}", "401", refused.status_code, refused.status_code == 401)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in refused.text and TOKEN.upper() not in refused.text


async def test_with_the_exact_bearer_token_the_tools_are_served(guarded: UvicornThread) -> None:
    listing = await normal_call(guarded.url, TOKEN)
    record("bearer: the exact token", "served", f"{len(listing['tracks'])} track(s) listed", bool(listing["tracks"]))
    assert listing["tracks"]


# --- oversized bodies ---------------------------------------------------------------------------------------

def _read_status(sock: socket.socket, deadline: float) -> int | None:
    """The status code of the response on `sock`, or None if the connection closed first."""
    data = b""
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    while b"\r\n" not in data:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    first = data.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) >= 2 and first[1].isdigit() else None


def _push_body(port: int, *, declared: int | None, sent: int) -> int | None:
    """Send a POST whose body is `sent` bytes (declared as `declared` via Content-Length, else chunked), reading
    the answer while sending: the server may answer (and close) before the body is through."""
    chunked = declared is None
    head = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\n"
            + ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {declared}\r\n") + "\r\n").encode()
    deadline = time.monotonic() + CALL_BOUND
    with socket.create_connection(("127.0.0.1", port), timeout=CALL_BOUND) as sock:
        sock.sendall(head)
        piece = b"[" + b"0," * 32767 + b"0"  # 64 KiB of syntactically plausible JSON
        left = sent
        try:
            while left > 0:
                chunk = piece[:left]
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
                left -= len(chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer (if any) is already on its way
        return _read_status(sock, deadline)


@pytest.mark.parametrize(("attack", "declared", "sent"), [
    ("2 MiB body with Content-Length", 2 * MiB, 2 * MiB),
    ("50 MiB declared via Content-Length (64 KiB sent)", 50 * MiB, 64 * 1024),
    ("2 MiB streamed chunked, no length", None, 2 * MiB),
    ("1 MiB + 1 byte streamed chunked", None, MiB + 1),
])
async def test_an_oversized_body_is_refused_and_the_server_stays_up(server: UvicornThread, attack: str,
                                                                   declared: int | None, sent: int) -> None:
    status = await anyio.to_thread.run_sync(lambda: _push_body(server.port, declared=declared, sent=sent))
    listing = await normal_call(server.url)
    passed = status == 413 and bool(listing["tracks"])
    record(f"body: {attack}", "413, server up", f"{status}, server up", passed)
    assert status == 413
    assert listing["tracks"]


async def test_a_body_just_under_the_limit_is_read_not_refused_for_its_size(server: UvicornThread) -> None:
    padding = "x" * (MAX_BODY_BYTES - 1024)
    message = {**INITIALIZE, "params": {**INITIALIZE["params"], "clientInfo": {"name": padding, "version": "1"}}}
    async with httpx.AsyncClient(timeout=CALL_BOUND) as raw:
        answer = await raw.post(f"{server.url}/mcp", json=message, headers=MCP_HEADERS)
    record("body: just under 1 MiB, valid", "200", answer.status_code, answer.status_code == 200)
    assert answer.status_code == 200
    assert sse_messages(answer)[0]["result"]["serverInfo"]["name"] == "suno-stems-mcp"


# --- slow and silent clients --------------------------------------------------------------------------------

class Dribbler(threading.Thread):
    """A raw client that sends `payload` one byte every `interval` seconds until stopped."""

    def __init__(self, port: int, payload: bytes, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.payload, self.interval = payload, interval
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        for byte in self.payload:
            if self.stop.wait(self.interval):
                return
            try:
                self.sock.send(bytes([byte]))
            except OSError:
                return
            self.sent += 1

    def close(self) -> None:
        self.stop.set()
        self.join(timeout=5)
        self.sock.close()


async def test_slow_and_silent_clients_do_not_block_a_normal_call(server: UvicornThread) -> None:
    slow_headers = Dribbler(server.port, f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()
                            + b"X-Padding: " + b"a" * 4096)
    slow_body = Dribbler(server.port, (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                                       "Content-Type: application/json\r\nAccept: application/json, text/event-stream"
                                       "\r\nContent-Length: 100000\r\n\r\n").encode() + b"[" * 4096, interval=0.01)
    silent = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(20)]
    try:
        slow_headers.start()
        slow_body.start()
        await anyio.sleep(1.0)  # they are all connected and mid-request
        started = time.monotonic()
        listing = await normal_call(server.url)
        took = time.monotonic() - started
        overlapped = slow_headers.is_alive() and slow_body.is_alive() and 0 < slow_headers.sent < 4096
    finally:
        slow_headers.close()
        slow_body.close()
        for sock in silent:
            sock.close()
    passed = bool(listing["tracks"]) and overlapped
    record("slow client: headers 1 byte / 0.2 s + slow body + 20 silent sockets",
           f"other calls served (< {CALL_BOUND:.0f} s)", f"normal call served in {took:.2f} s", passed)
    assert overlapped, "the slow clients were not still mid-request while the normal call ran"
    assert listing["tracks"] and took < CALL_BOUND


# --- crowds ---------------------------------------------------------------------------------------------------

async def test_fifty_concurrent_sdk_sessions_are_all_served(server: UvicornThread) -> None:
    total = 50
    served: list[int] = []
    failures: list[str] = []

    async def one(n: int) -> None:
        try:
            with anyio.fail_after(60):
                async with mcp_client(f"{server.url}/mcp") as session:
                    names = {tool.name for tool in (await session.list_tools()).tools}
            if names == {"list_tracks", "split_stems", "get_job"}:
                served.append(n)
            else:
                failures.append(f"session {n}: tools {sorted(names)}")
        except Exception as exc:
            failures.append(f"session {n}: {type(exc).__name__}: {exc}")

    async with anyio.create_task_group() as group:
        for n in range(total):
            group.start_soon(one, n)
    listing = await normal_call(server.url)
    passed = len(served) == total and not failures and bool(listing["tracks"])
    record(f"{total} concurrent SDK sessions (initialize + tools/list)", "all served, server up",
           f"{len(served)} served, {len(failures)} failed, server up", passed)
    assert not failures, failures[:5]
    assert len(served) == total


async def test_two_hundred_concurrent_raw_initializes_are_served_or_cleanly_refused(server: UvicornThread) -> None:
    total = 200
    outcomes: dict[str, int] = {}
    bad: list[str] = []
    limits = httpx.Limits(max_connections=total, max_keepalive_connections=0)

    async def one(raw: httpx.AsyncClient, n: int) -> None:
        message = {**INITIALIZE, "id": n}
        try:
            answer = await raw.post(f"{server.url}/mcp", json=message, headers=MCP_HEADERS)
        except httpx.HTTPError as exc:
            bad.append(f"{n}: {type(exc).__name__}")
            return
        if answer.status_code == 200:
            replies = sse_messages(answer)
            if replies and replies[0].get("id") == n and "serverInfo" in replies[0].get("result", {}):
                outcomes["served"] = outcomes.get("served", 0) + 1
                session = answer.headers.get("mcp-session-id")
                if session:
                    await raw.delete(f"{server.url}/mcp", headers={**MCP_HEADERS, "mcp-session-id": session})
                return
            bad.append(f"{n}: 200 without a matching initialize result")
        elif answer.status_code in (429, 503):
            outcomes["refused"] = outcomes.get("refused", 0) + 1
        else:
            bad.append(f"{n}: HTTP {answer.status_code}")

    async with httpx.AsyncClient(timeout=60, limits=limits) as raw, anyio.create_task_group() as group:
        for n in range(total):
            group.start_soon(one, raw, n)
    listing = await normal_call(server.url)
    served, refused = outcomes.get("served", 0), outcomes.get("refused", 0)
    passed = not bad and served + refused == total and bool(listing["tracks"])
    record(f"{total} concurrent raw initialize POSTs", "each served or 429/503, server up",
           f"{served} served, {refused} refused, {len(bad)} bad, server up", passed)
    assert not bad, bad[:5]
    assert served + refused == total and served > 0


# --- malformed JSON-RPC -----------------------------------------------------------------------------------------

MALFORMED: list[tuple[str, bytes, dict[str, str]]] = [
    ("invalid JSON", b"{not json", MCP_HEADERS),
    ("truncated JSON", json.dumps(INITIALIZE).encode()[:-7], MCP_HEADERS),
    ("JSON array of junk", b'[1, "x", null, {}, [[]], {"jsonrpc": 2}]', MCP_HEADERS),
    ("empty JSON array", b"[]", MCP_HEADERS),
    ("JSON null", b"null", MCP_HEADERS),
    ("empty body", b"", MCP_HEADERS),
    ("not UTF-8", b"\xff\xfe\x00{", MCP_HEADERS),
    ("100k nested arrays", b"[" * 100_000 + b"]" * 100_000, MCP_HEADERS),
    ("request with a 400-digit id", json.dumps({**INITIALIZE, "id": 10**400}).encode(), MCP_HEADERS),
    ("request with a float id", json.dumps({**INITIALIZE, "id": 1.5}).encode(), MCP_HEADERS),
    ("request with an object id", json.dumps({**INITIALIZE, "id": {"a": 1}}).encode(), MCP_HEADERS),
    ("jsonrpc 1.0", json.dumps({**INITIALIZE, "jsonrpc": "1.0"}).encode(), MCP_HEADERS),
    ("method is a number", json.dumps({**INITIALIZE, "method": 7}).encode(), MCP_HEADERS),
    ("initialize with params a string", json.dumps({**INITIALIZE, "params": "x"}).encode(), MCP_HEADERS),
    ("tools/call without a session", json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                                 "params": {"name": "get_job", "arguments": {}}}).encode(),
     MCP_HEADERS),
    ("unknown session id", json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).encode(),
     {**MCP_HEADERS, "mcp-session-id": "0" * 32}),
    ("content-type text/plain", json.dumps(INITIALIZE).encode(), {**MCP_HEADERS, "Content-Type": "text/plain"}),
    ("content-type form", json.dumps(INITIALIZE).encode(),
     {**MCP_HEADERS, "Content-Type": "application/x-www-form-urlencoded"}),
    ("no content-type", json.dumps(INITIALIZE).encode(), {"Accept": MCP_HEADERS["Accept"]}),
]


@pytest.mark.parametrize(("attack", "body", "headers"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_malformed_json_rpc_gets_a_4xx_or_a_json_rpc_error_never_a_5xx(
        server: UvicornThread, attack: str, body: bytes, headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=CALL_BOUND) as raw:
        answer = await raw.post(f"{server.url}/mcp", content=body, headers=headers)
    status = answer.status_code
    if 400 <= status < 500:
        observed, passed = str(status), True
    elif status == 200:
        # Accepted at the HTTP level: then it must be a proper JSON-RPC answer (a result or an error) with an id.
        replies = sse_messages(answer)
        passed = bool(replies) and all(r.get("jsonrpc") == "2.0" and ("result" in r or "error" in r)
                                       for r in replies)
        first = replies[0] if replies else {}
        observed = f"200 {'error ' + str(first['error']['code']) if 'error' in first else 'result'}"
    else:
        observed, passed = str(status), False
    listing = await normal_call(server.url)
    record(f"JSON-RPC: {attack}", "4xx or JSON-RPC error, server up", f"{observed}, server up",
           passed and bool(listing["tracks"]))
    assert status < 500, f"{attack}: HTTP {status}: {answer.text[:300]}"
    assert passed, f"{attack}: {status} {answer.text[:300]}"


# --- the scheme, the bound address, connection and session caps, header timeouts ---------------------------

@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_the_bearer_scheme_is_accepted_in_any_case(guarded: UvicornThread, scheme: str) -> None:
    async with httpx.AsyncClient(timeout=CALL_BOUND) as raw:
        answer = await raw.post(f"{guarded.url}/mcp", json=INITIALIZE,
                                headers={**MCP_HEADERS, "Authorization": f"{scheme} {TOKEN}"})
    record(f"bearer: the exact token after the scheme {scheme!r}", "served (RFC 7235: case-insensitive)",
           answer.status_code, answer.status_code == 200)
    assert answer.status_code == 200


def _half_open(port: int, count: int) -> list[socket.socket]:
    """`count` connections, each having sent the start of a request head and then nothing more."""
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Half: ".encode())
        held.append(sock)
    return held


async def test_a_token_holder_gets_through_while_an_attacker_holds_200_half_open_connections(
        guarded: UvicornThread) -> None:
    held = await anyio.to_thread.run_sync(_half_open, guarded.port, 200)
    try:
        async with httpx.AsyncClient(timeout=CALL_BOUND) as raw:  # and keeps knocking without the token
            knocks = [await raw.post(f"{guarded.url}/mcp", json=INITIALIZE, headers=MCP_HEADERS) for _ in range(20)]
        started = time.monotonic()
        listing = await normal_call(guarded.url, TOKEN)
        took = time.monotonic() - started
    finally:
        for sock in held:
            sock.close()
    passed = bool(listing["tracks"]) and all(k.status_code == 401 for k in knocks)
    record("200 half-open connections without the token, 20 requests without it", "the token holder is served",
           f"served in {took:.2f} s", passed)
    assert passed and took < CALL_BOUND


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """How long until the server closed `sock` (None: still open after `seconds`)."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except OSError:
        pass
    return time.monotonic() - started


class QuickHeaderTimeout(GuardedH11Protocol):
    header_timeout = 1.0


async def test_a_connection_that_never_finishes_its_headers_is_closed_and_the_cap_answers_503(
        sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    limits = {"http": QuickHeaderTimeout, "limit_concurrency": 5}
    with serving(sandbox, tmp_path, limits=limits) as running:
        silent = socket.create_connection(("127.0.0.1", running.port), timeout=5)
        partial = _half_open(running.port, 1)[0]
        closed = [await anyio.to_thread.run_sync(_closed_within, sock, 8.0) for sock in (silent, partial)]
        crowd = _half_open(running.port, 6)
        try:
            async with httpx.AsyncClient(timeout=CALL_BOUND) as raw:
                crowded = await raw.post(f"{running.url}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
                await anyio.sleep(2.5)  # the crowd's header time runs out
                after = await raw.post(f"{running.url}/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        finally:
            for sock in (silent, partial, *crowd):
                sock.close()
    record("a silent and a half-sent connection, header timeout 1 s", "closed", closed,
           all(c is not None for c in closed))
    record("6 half-open connections over a cap of 5", "503, then served once they time out",
           f"{crowded.status_code}, then {after.status_code}", crowded.status_code == 503 and after.status_code == 200)
    assert all(c is not None and c < 5 for c in closed)
    assert crowded.status_code == 503 and after.status_code == 200


async def test_a_server_bound_to_another_loopback_address_answers_requests_for_it(
        sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path, transport="http", download=False)
    app = build_http_app(build_server(settings), settings, host="127.0.0.2")
    try:
        running = UvicornThread(app, host="127.0.0.2", **http_limits())
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound on this machine")
    with running:
        async with httpx.AsyncClient(timeout=CALL_BOUND) as raw:
            served = await raw.post(f"{running.url}/mcp", json=INITIALIZE,
                                    headers={**MCP_HEADERS, "Origin": running.url})
            foreign = await raw.post(f"{running.url}/mcp", json=INITIALIZE,
                                     headers={**MCP_HEADERS, "Host": "evil.example.com"})
    record("--host 127.0.0.2: a request for 127.0.0.2", "served (not 421)", served.status_code,
           served.status_code == 200)
    assert served.status_code == 200 and foreign.status_code == 421


async def test_stateful_sessions_are_capped_with_a_clear_503(sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path, transport="http", download=False)
    app = build_http_app(build_server(settings), settings, host="127.0.0.1", max_sessions=3)
    with UvicornThread(app, **http_limits()) as running:
        async with httpx.AsyncClient(timeout=CALL_BOUND) as raw:
            answers = [await raw.post(f"{running.url}/mcp", json=INITIALIZE, headers=MCP_HEADERS) for _ in range(4)]
    statuses = [a.status_code for a in answers]
    record("a 4th session over a cap of 3", "503", statuses, statuses == [200, 200, 200, 503])
    assert statuses == [200, 200, 200, 503] and "sessions" in answers[-1].text.lower()
