"""Secret hygiene with a canary key: a fresh random `afk_canary_…` key (and, over HTTP, a canary bearer token) is
used through every transport and every error path, then looked for everywhere it must not be: results, error
texts, structured content, server logs and stderr, the requests the API received (anywhere but the value of
`X-API-Key`), CDN downloads, webhooks, `repr(Settings)` and the apiframe client's exceptions.

The secret is searched for whole and by its random part alone, so a mangled copy (prefix cut, re-cased
prefix) counts as a leak too.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import subprocess
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from suno_stems_mcp.apiframe import ApiframeClient
from suno_stems_mcp.config import Settings
from suno_stems_mcp.core.runtime import Runtime
from suno_stems_mcp.deadline import Deadline
from suno_stems_mcp.errors import ApiError
from suno_stems_mcp.logs import FORMAT
from suno_stems_mcp.net import UvicornThread
from suno_stems_mcp.sandbox import ThreadedSandbox

from . import reliability
from .support import child_env, command, connected, settings_for, stdio_params, text

pytestmark = pytest.mark.anyio

Call = Callable[[str, dict[str, Any]], Awaitable[CallToolResult]]


def new_canary() -> str:
    return "afk_canary_" + secrets.token_hex(16)


class Scan:
    """Looks for secrets in everything it is shown, and counts what it was shown."""

    def __init__(self, *secret_values: str) -> None:
        # each secret whole, and its random tail alone (what makes it this secret)
        self.needles = sorted({n for s in secret_values for n in (s, s.rsplit("_", 1)[-1])}, key=len)
        self.results = 0
        self.log_bytes = 0
        self.requests = 0
        self.leaks: list[str] = []

    def look(self, where: str, value: str) -> None:
        for needle in self.needles:
            at = value.find(needle)
            if at >= 0:
                self.leaks.append(f"{where}: …{value[max(0, at - 60):at + len(needle) + 20]!r}…")
                return

    def result(self, where: str, result: CallToolResult) -> CallToolResult:
        self.results += 1
        self.look(f"{where} text", text(result))
        self.look(f"{where} structuredContent", json.dumps(result.structured_content, ensure_ascii=False))
        self.look(f"{where} whole result", result.model_dump_json())
        return result

    def log(self, where: str, content: str) -> None:
        self.log_bytes += len(content.encode())
        self.look(where, content)

    def row(self, surface: str) -> None:
        reliability.row("secrets", surface, self.results, self.log_bytes, self.requests, len(self.leaks))


def describe() -> None:
    reliability.describe(
        "secrets",
        "A random canary key (`afk_canary_` + 32 hex digits, with its own sandbox account and a song made with "
        "it) is used through the in-memory client, a stdio subprocess (DEBUG logging, stderr captured) and the "
        "HTTP transport (as a subprocess, with a canary bearer token too), on the happy path and on error "
        "paths: 401, 400 with details, 429, 503 (recovering and persistent), dropped connections, a POST "
        "rejected, not found, an unreachable API, an unreadable body. Then every result, error text, "
        "structuredContent, log line and stderr byte is searched for the key (whole, and its random part "
        "alone), every request the sandbox received is checked to carry it only as the value of `X-API-Key` "
        "(and CDN downloads not at all), and so are a webhook, `repr(Settings)` and the apiframe client's "
        "exceptions.",
        headers=["surface", "results scanned", "log/stderr bytes scanned", "requests inspected", "leaks"],
    )


# --- the canary's world ---------------------------------------------------------------------------------------------

async def make_song(sandbox: ThreadedSandbox, key: str, **extra: Any) -> str:
    """A finished Suno song in the canary's own account, made with the canary key."""
    async with httpx.AsyncClient(base_url=sandbox.url, headers={"X-API-Key": key}, timeout=10) as api:
        made = await api.post("/v2/music/generate", json={"model": "suno", "prompt": "Canary: lo-fi test", **extra})
        assert made.status_code == 202, made.text
        job_id = made.json()["jobId"]
        with anyio.fail_after(15):
            while (await api.get(f"/v2/jobs/{job_id}")).json()["status"] != "COMPLETED":
                await anyio.sleep(0.1)
    return job_id


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def inspect_requests(sandbox: ThreadedSandbox, key: str, scan: Scan, *extra_secrets: str) -> dict[str, int]:
    """Every request the sandbox received: the key only as the whole value of X-API-Key, CDN requests without
    it, nothing secret anywhere else (path, query, body, other headers)."""
    seen = {"keyed": 0, "cdn": 0}
    secret_scan = Scan(key, *extra_secrets)
    for record in sandbox.sandbox.requests():
        scan.requests += 1
        where = f"request {record.method} {record.path}"
        for name, value in record.headers.items():
            if name == "x-api-key":
                if any(n in value for n in secret_scan.needles):
                    if value != key:
                        scan.leaks.append(f"{where}: X-API-Key holds more than the key: {value!r}")
                    seen["keyed"] += 1
                if record.path.startswith("/cdn/"):
                    scan.leaks.append(f"{where}: a CDN request carries X-API-Key")
            else:
                scan.look(f"{where} header {name}", value)
        scan.look(f"{where} path", record.path)
        scan.look(f"{where} query", record.query)
        scan.look(f"{where} body", record.body.decode("utf-8", "replace"))
        seen["cdn"] += record.path.startswith("/cdn/")
    return seen


def start_http_server(env: dict[str, str], output: IO[str]) -> subprocess.Popen[bytes]:
    """`suno-stems-mcp --transport http` on a free loopback port, stdout and stderr into `output`."""
    return subprocess.Popen([*command(), "--transport", "http", "--port", "0"], stdout=output,
                            stderr=subprocess.STDOUT, env=env)


@contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every log record of this process, formatted (tracebacks included), at DEBUG: what a server in this
    process logs, before any redaction, with the same noisy libraries quiet as `server.logs.configure` makes them."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "mcp.server.lowlevel.server")}
    before = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(before)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


async def exercise(call: Call, sandbox: ThreadedSandbox, song: str, scan: Scan, where: str) -> dict[str, int]:
    """All three tools, the happy path and the error paths, each result scanned. Returns how it went."""
    faults = sandbox.sandbox
    outcome = {"ok": 0, "errors": 0}

    async def run(label: str, tool: str, args: dict[str, Any], **fault: Any) -> CallToolResult:
        if fault:
            faults.inject(fault.pop("route"), **fault)
        try:
            result = scan.result(f"{where} {label}", await call(tool, args))
        finally:
            faults.faults.clear()
        outcome["errors" if result.is_error else "ok"] += 1
        return result

    await run("list recent", "list_tracks", {})
    await run("list song", "list_tracks", {"job_id": song})
    split = await run("split", "split_stems", {"parent_job_id": song, "index": 1, "wait_seconds": 0})
    assert not split.is_error, text(split)
    job_id = split.structured_content["job_id"]
    for _ in range(60):  # until done (or, over stdio without the sandbox flag, the refused http download)
        polled = await run("get_job", "get_job", {"job_id": job_id})
        if polled.is_error or polled.structured_content["done"]:
            break
        await anyio.sleep(0.25)
    gets = {"route": "GET /v2/jobs/*"}
    await run("401", "get_job", {"job_id": song}, **gets, status=401, body="json")
    await run("401 on split preflight", "split_stems", {"parent_job_id": song, "index": 2, "wait_seconds": 0},
              **gets, status=401, body="json")
    await run("401 on the POST", "split_stems", {"parent_job_id": song, "index": 2, "wait_seconds": 0},
              route="POST /v2/music/suno/action", status=401, body="json")
    await run("400 with details", "list_tracks", {"cursor": "not-a-cursor"})
    await run("429", "get_job", {"job_id": song}, **gets, status=429, retry_after=120)
    await run("503 then recovery", "get_job", {"job_id": song}, **gets, status=503, body="json", times=2)
    await run("dropped then recovery", "list_tracks", {"job_id": song}, **gets, drop="before", times=2)
    await run("POST answer dropped", "split_stems", {"parent_job_id": song, "index": 2, "wait_seconds": 0},
              route="POST /v2/music/suno/action", drop="after")
    await run("unreadable body", "get_job", {"job_id": song}, **gets, body="malformed", times=2)
    await run("not found", "get_job", {"job_id": str(uuid.uuid4())})
    await run("503 throughout", "get_job", {"job_id": song}, **gets, status=503, body="html", times=10_000)
    return outcome


# --- the tests --------------------------------------------------------------------------------------------------

async def test_the_key_is_not_in_settings_reprs_nor_in_apiframe_client_exceptions(
        live_sandbox: ThreadedSandbox) -> None:
    describe()
    key, token = new_canary(), "tok_canary_" + secrets.token_hex(16)
    live_sandbox.sandbox.add_account(key, credits=1000)
    song = await make_song(live_sandbox, key)
    scan = Scan(key, token)
    settings = Settings(api_key=SecretStr(key), http_token=SecretStr(token), base_url=live_sandbox.url)
    from_env = Settings.from_env({"APIFRAME_API_KEY": key, "SUNO_STEMS_HTTP_TOKEN": token})
    for label, shown in [("repr(Settings)", repr(settings)), ("str(Settings)", str(settings)),
                         ("repr(Settings.from_env)", repr(from_env)), ("repr(Runtime)", repr(Runtime(settings))),
                         ("f-string of the key field", f"{settings.api_key} {settings.api_key!r}")]:
        scan.log(label, shown)

    exceptions: list[BaseException] = []
    async with httpx.AsyncClient() as http:
        def client(base: str = live_sandbox.url) -> ApiframeClient:
            return ApiframeClient(http, base_url=base, api_key=SecretStr(key))

        attempts: list[tuple[dict[str, Any], Callable[[], Awaitable[Any]]]] = [
            ({"route": "GET /v2/jobs/*", "status": 401, "body": "json"}, lambda: client().get_job(song, Deadline(5))),
            ({}, lambda: client().list_jobs(deadline=Deadline(5), cursor="not-a-cursor")),
            ({}, lambda: client().submit_stems("not-a-uuid", "no-such-track", None, idempotency_key="k",
                                               deadline=Deadline(5))),
            ({}, lambda: client().get_job(str(uuid.uuid4()), Deadline(5))),
            ({"route": "GET /v2/jobs/*", "status": 429, "retry_after": 120},
             lambda: client().get_job(song, Deadline(5))),
            ({"route": "GET /v2/jobs/*", "status": 503, "body": "json", "times": 10_000},
             lambda: client().get_job(song, Deadline(1.5))),
            ({"route": "GET /v2/jobs/*", "drop": "before", "times": 10_000},
             lambda: client().get_job(song, Deadline(1.5))),
            ({"route": "GET /v2/jobs/*", "body": "malformed", "times": 10_000},
             lambda: client().get_job(song, Deadline(1.5))),
            ({}, lambda: client(closed_port_url()).get_job(song, Deadline(1.5))),
        ]
        for fault, attempt in attempts:
            if fault:
                live_sandbox.sandbox.inject(fault.pop("route"), **fault)
            try:
                await attempt()
            except ApiError as exc:
                exceptions.append(exc)
            finally:
                live_sandbox.sandbox.faults.clear()
        scan.log("repr(ApiframeClient)", repr(client()))
    for exc in exceptions:
        scan.log(f"exception {type(exc).__name__}", "\n".join([str(exc), repr(exc), repr(exc.args),
                                                                "".join(traceback.format_exception(exc))]))
    scan.results += len(exceptions)
    inspect_requests(live_sandbox, key, scan, token)
    scan.row("`repr(Settings)`, `repr(Runtime)` and apiframe client exceptions")
    assert len(exceptions) == len(attempts), "every attempt was meant to fail with an ApiError"
    assert not scan.leaks, scan.leaks


async def test_in_memory_results_logs_and_requests_never_hold_the_key(live_sandbox: ThreadedSandbox,
                                                                      tmp_path: Path) -> None:
    describe()
    key = new_canary()
    live_sandbox.sandbox.add_account(key, credits=1000)
    song = await make_song(live_sandbox, key)
    scan = Scan(key)
    with captured_logs() as lines:
        async with connected(settings_for(live_sandbox, tmp_path, api_key=SecretStr(key), max_wait=1.0)) as client:
            outcome = await exercise(lambda tool, args: client.call_tool(tool, args), live_sandbox, song, scan,
                                     "in-memory")
        unreachable = settings_for(live_sandbox, tmp_path, api_key=SecretStr(key), max_wait=1.0,
                                   base_url=closed_port_url())
        async with connected(unreachable) as client:
            for tool, args in [("get_job", {"job_id": song}), ("list_tracks", {})]:  # each waits out its bound
                gone = scan.result(f"in-memory unreachable {tool}", await client.call_tool(tool, args))
                assert gone.is_error and "Cannot connect to apiframe" in text(gone)
    scan.log("in-process log records", "\n".join(lines))
    seen = inspect_requests(live_sandbox, key, scan)
    scan.row("in-memory client (+ this process's log records, unredacted)")
    assert outcome["ok"] >= 5 and outcome["errors"] >= 7, outcome
    assert seen["keyed"] > 20 and seen["cdn"] >= 2, seen  # the checks above had something to check
    assert any("stems job" in line for line in lines)  # the logs were captured
    assert not scan.leaks, scan.leaks


async def test_a_stdio_server_never_shows_the_key_in_results_or_stderr(live_sandbox: ThreadedSandbox,
                                                                       tmp_path: Path) -> None:
    describe()
    key = new_canary()
    live_sandbox.sandbox.add_account(key, credits=1000)
    song = await make_song(live_sandbox, key)
    scan = Scan(key)
    base = {"APIFRAME_API_KEY": key, "SUNO_STEMS_LOG_LEVEL": "DEBUG", "SUNO_STEMS_MAX_WAIT": "1",
            "SUNO_STEMS_OUTPUT_DIR": str(tmp_path / "stems")}
    logs = [tmp_path / "stderr.log", tmp_path / "stderr-unreachable.log"]
    with logs[0].open("w") as errlog:
        params = stdio_params(env=child_env(**base, APIFRAME_BASE_URL=live_sandbox.url))
        async with Client(stdio_client(params, errlog=errlog)) as client:
            outcome = await exercise(lambda tool, args: client.call_tool(tool, args), live_sandbox, song, scan,
                                     "stdio")
    with logs[1].open("w") as errlog:
        params = stdio_params(env=child_env(**base, APIFRAME_BASE_URL=closed_port_url()))
        async with Client(stdio_client(params, errlog=errlog)) as client:
            gone = scan.result("stdio unreachable", await client.call_tool("get_job", {"job_id": song}))
    assert gone.is_error and "Cannot connect to apiframe" in text(gone)
    stderr = [log.read_text(errors="replace") for log in logs]
    for log, content in zip(logs, stderr, strict=False):
        scan.log(f"stdio {log.name}", content)
    seen = inspect_requests(live_sandbox, key, scan)
    scan.row("stdio subprocess (DEBUG stderr)")
    assert outcome["ok"] >= 4 and outcome["errors"] >= 7, outcome
    assert seen["keyed"] > 20, seen
    assert "stems job" in stderr[0] and "retrying" in stderr[0]  # DEBUG/INFO logging really was on
    assert not scan.leaks, scan.leaks


async def test_the_http_transport_never_shows_the_key_or_its_token(live_sandbox: ThreadedSandbox,
                                                                   tmp_path: Path) -> None:
    describe()
    key, token = new_canary(), "tok_canary_" + secrets.token_hex(16)
    live_sandbox.sandbox.add_account(key, credits=1000)
    song = await make_song(live_sandbox, key)
    scan = Scan(key, token)
    log = tmp_path / "http-stderr.log"
    env = child_env(APIFRAME_API_KEY=key, APIFRAME_BASE_URL=live_sandbox.url, SUNO_STEMS_LOG_LEVEL="DEBUG",
                    SUNO_STEMS_MAX_WAIT="1", SUNO_STEMS_HTTP_TOKEN=token, SUNO_STEMS_OUTPUT_DIR=str(tmp_path))
    with log.open("w") as errlog:
        process = start_http_server(env, errlog)
        try:
            url = None
            with anyio.fail_after(30):
                while url is None:
                    found = re.search(r"at (http://127\.0\.0\.1:\d+/mcp)", log.read_text(errors="replace"))
                    url = found.group(1) if found else None
                    if url is None:
                        assert process.poll() is None, log.read_text()
                        await anyio.sleep(0.1)
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
            async with Client(streamable_http_client(url, http_client=http)) as client:
                outcome = await exercise(lambda tool, args: client.call_tool(tool, args), live_sandbox, song, scan,
                                         "http")
                saved = scan.result("http download refused", await client.call_tool(
                    "get_job", {"job_id": song, "download": True}))
            async with httpx.AsyncClient(timeout=10) as raw:
                wrong = await raw.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize"},
                                       headers={"Authorization": f"Bearer {token[:-1]}"})
            scan.log("http 401 answer", wrong.text + json.dumps(dict(wrong.headers)))
        finally:
            process.terminate()
            process.wait(timeout=15)
    scan.log("http server stdout+stderr", log.read_text(errors="replace"))
    seen = inspect_requests(live_sandbox, key, scan, token)
    scan.row("HTTP transport subprocess (DEBUG stderr, canary bearer token too)")
    assert wrong.status_code == 401
    assert saved.is_error  # plain-http file URLs are refused outside sandbox mode: one more error text scanned
    assert outcome["ok"] >= 5 and outcome["errors"] >= 7, outcome
    assert seen["keyed"] > 20, seen
    assert "stems job" in log.read_text()
    assert not scan.leaks, scan.leaks


async def test_a_webhook_never_carries_the_key(live_sandbox: ThreadedSandbox) -> None:
    describe()
    key = new_canary()
    live_sandbox.sandbox.add_account(key, credits=1000)
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    scan = Scan(key)
    with UvicornThread(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as receiver:
        await make_song(live_sandbox, key, webhookUrl=f"{receiver.url}/hook",
                        webhookEvents=["progress", "completed"])
        with anyio.fail_after(10):
            while not any(b'"completed"' in body for _, body in received):
                await anyio.sleep(0.05)
    for headers, body in received:
        scan.requests += 1
        scan.log("webhook headers", json.dumps(headers))
        scan.log("webhook body", body.decode("utf-8", "replace"))
    scan.row("sandbox webhook deliveries (headers and payload)")
    assert all("x-webhook-signature" in headers for headers, _ in received)
    assert not scan.leaks, scan.leaks


# --- an API that echoes the key back -------------------------------------------------------------------------

@pytest.mark.parametrize("status", [
    400, 401, 403, 404, 409, 422, 429, 500, 503,
])
async def test_an_error_body_that_repeats_the_key_is_shown_without_it(tmp_path: Path, status: int) -> None:
    """A proxy or an API in a bad mood may quote the request back; what the model sees must still not hold the key."""
    key = new_canary()

    async def echo(request: Request) -> Response:
        given = request.headers.get("x-api-key", "")
        return JSONResponse({"error": f"key {given} refused", "details": {"X-API-Key": [f"got {given}"]}},
                            status_code=status, headers={"Retry-After": "0"} if status == 429 else None)

    app = Starlette(routes=[Route("/v2/jobs", echo), Route("/v2/jobs/{job_id}", echo)])
    scan = Scan(key)
    with UvicornThread(app) as api:
        settings = Settings(api_key=SecretStr(key), base_url=api.url, output_dir=tmp_path, max_wait=1.0)
        async with connected(settings) as client:
            result = scan.result(f"echoed {status}", await client.call_tool("list_tracks", {}))
    assert result.is_error and str(status) in text(result), text(result)
    assert not scan.leaks, scan.leaks


def fragments_of(key: str, size: int = 12) -> list[str]:
    """Every `size`-character window of the key's random part, lower-cased: an echo missing a character, cut
    short or re-cased still holds one of them."""
    tail = key.rsplit("_", 1)[-1].lower()
    return [tail[i:i + size] for i in range(len(tail) - size + 1)]


@pytest.mark.parametrize("how", ["whole", "partial", "upper"])
async def test_a_key_apiframe_echoes_never_reaches_a_result_or_the_log(live_sandbox: ThreadedSandbox,
                                                                       tmp_path: Path, how: str) -> None:
    """apiframe echoing the caller's key (whole, missing its last character, upper-cased) in a job's error,
    its tracks' titles and tags, and in error bodies (400 and a retried 503): every result, error, next_step
    and stderr line of a stdio server at DEBUG is swept for any 12 characters of the key, in any case."""
    key = new_canary()
    live_sandbox.sandbox.add_account(key, credits=1000)
    song = await make_song(live_sandbox, key)
    env = child_env(APIFRAME_API_KEY=key, SUNO_STEMS_LOG_LEVEL="DEBUG", SUNO_STEMS_MAX_WAIT="8",
                    SUNO_STEMS_OUTPUT_DIR=str(tmp_path / "stems"), APIFRAME_BASE_URL=live_sandbox.url)
    pieces = fragments_of(key)
    seen: list[tuple[str, str]] = []
    inject = live_sandbox.sandbox.inject
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(stdio_params(env=env), errlog=errlog)) as client:

            async def call(where: str, tool: str, args: dict[str, Any]) -> CallToolResult:
                result = await client.call_tool(tool, args)
                seen.append((where, text(result) + json.dumps(result.structured_content or {})))
                return result

            inject("GET /v2/jobs", echo_key=how)
            await call("list_tracks, echoed in jobs", "list_tracks", {})
            inject("GET /v2/jobs/*", echo_key=how, times=100)
            split = await call("split_stems, echoed in every poll", "split_stems",
                               {"parent_job_id": song, "index": 1, "wait_seconds": 6})
            live_sandbox.sandbox.faults.clear()
            job_id = (split.structured_content or {}).get("job_id")
            assert job_id, text(split)
            inject("GET /v2/jobs/*", echo_key=how, status=400)
            refused = await call("get_job, echoed in a 400", "get_job", {"job_id": job_id})
            inject("GET /v2/jobs/*", echo_key=how, status=503, times=2)
            await call("get_job, echoed in a retried 503", "get_job", {"job_id": job_id})
            inject("POST /v2/music/suno/action", echo_key=how, status=400)
            await call("split_stems, echoed in a refused POST", "split_stems", {"parent_job_id": song, "index": 2})
    assert refused.is_error and job_id in text(refused)
    stderr = (tmp_path / "stderr.log").read_text(errors="replace")
    assert "retrying" in stderr  # the 503's body went through the logging path
    leaks = [f"{where}: {piece}" for where, content in [*seen, ("stderr", stderr)]
             for piece in pieces if piece in content.lower()]
    assert not leaks, leaks[:5]
    assert len(seen) == 5 and len(stderr) > 1000
