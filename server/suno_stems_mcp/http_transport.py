"""MCP over streamable HTTP at `/mcp`, for agent frameworks and remote clients.

Loopback by default, with the SDK's DNS-rebinding protection (a foreign Host or Origin is refused).
A non-loopback bind refuses to start without `SUNO_STEMS_HTTP_TOKEN`; with a token set, every request
needs `Authorization: Bearer <token>` (the scheme in any case), the token compared in constant time.

Hosted (`--hosted`): stateless, so any replica answers any request; each request carries its user's key.
Both modes: `GET /healthz` and `GET /readyz` outside the token; SIGTERM drains (readiness and new requests
503, calls in flight finish within their bound, then exit); bounded header and idle times, a connection cap
answered with 503, a session cap in stateful mode.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
import sys
import time
from types import FrameType
from typing import Any

import h11
import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import Settings
from .diagnostics import install_status_signal
from .mcp_server import StemsServer
from .net import bind_tcp, is_loopback_host, uvicorn_config

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]

HEADER_TIMEOUT = 10.0
"""Most seconds a connection may take to send a request's headers (from when it opened, or its last answer)."""
KEEP_ALIVE_TIMEOUT = 15
"""Most seconds an idle keep-alive connection stays open."""
MAX_CONNECTIONS = 1000
"""Connections (and requests in progress) one process takes; beyond, requests get a 503."""
MAX_HEADER_BYTES = 16 * 1024
MAX_SESSIONS = 1000
"""Open stateful sessions (single-user HTTP); a new one beyond that gets a 503."""
SESSION_IDLE_TIMEOUT = 600.0
DRAIN_EXTRA = 10.0
"""Seconds past the longest call (SUNO_STEMS_MAX_WAIT) that a draining server waits for calls in flight."""


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header timeout: a connection that has not sent a whole request head within
    `header_timeout` of opening (or of its last response) is closed. uvicorn bounds only idle keep-alive time,
    so without it silent or slow clients could hold connections, and the connection cap, forever."""

    header_timeout = HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _header_timed_out(self) -> None:
        waiting = self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)
        if waiting and not self.transport.is_closing():
            self.transport.close()


def http_limits() -> dict[str, Any]:
    """The uvicorn settings that bound what one client can hold: header and idle times, connections."""
    return {"http": GuardedH11Protocol, "timeout_keep_alive": KEEP_ALIVE_TIMEOUT,
            "limit_concurrency": MAX_CONNECTIONS, "h11_max_incomplete_event_size": MAX_HEADER_BYTES}


def _bearer(header: bytes) -> bytes | None:
    """The credentials of an `Authorization: Bearer <token>` header, the scheme in any case (RFC 7235)."""
    scheme, _, credentials = header.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    return credentials.strip()


class BearerToken:
    """Refuses every request whose `Authorization` is not `Bearer <token>` (401, without saying more)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = next((v for k, v in scope["headers"] if k.lower() == b"authorization"), b"")
            if not hmac.compare_digest(_bearer(given) or b"", self._expected):  # the token is never empty
                body = json.dumps({"error": "Missing or wrong bearer token: send Authorization: Bearer "
                                            "<SUNO_STEMS_HTTP_TOKEN>."}).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="suno-stems-mcp"')]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class Gate:
    """Health, readiness and draining in front of everything else. Counts the requests in progress; once
    draining, answers readiness and every new request with 503 (and closes the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.draining = False
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/healthz":
            await _json(send, 200, {"status": "alive"})
            return
        if path == "/readyz":
            await _json(send, 503 if self.draining else 200, {"status": "draining" if self.draining else "ready"},
                        close=self.draining)
            return
        if self.draining:
            await _json(send, 503, {"error": "This server is shutting down and takes no new requests: send the "
                                             "request again (another replica, or this server once restarted, "
                                             "will answer it)."}, close=True, retry_after=True)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


async def _json(send: Send, status: int, body: dict[str, str], *, close: bool = False,
                retry_after: bool = False) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
               (b"cache-control", b"no-store")]
    if close:
        headers.append((b"connection", b"close"))
    if retry_after:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _security(host: str) -> TransportSecuritySettings:
    if is_loopback_host(host):
        bound = f"[{host.strip('[]')}]" if ":" in host else host
        hosts = [*LOOPBACK_HOSTS, *([f"{bound}:*", bound] if bound not in LOOPBACK_HOSTS else [])]
        origins = [*LOOPBACK_ORIGINS, *([f"http://{bound}:*"] if bound not in LOOPBACK_HOSTS else [])]
        return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                         allowed_origins=origins)
    # Reached only with a token (see run_http): a rebinding page cannot know it, and the names clients
    # use for a non-loopback address cannot be known here.
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


def build_http_app(server: StemsServer, settings: Settings, *, host: str, max_sessions: int = MAX_SESSIONS) -> Gate:
    """The ASGI app serving `server` at /mcp, with the protections these settings call for; health and
    readiness outside the token."""
    app: Starlette = server.streamable_http_app(
        streamable_http_path="/mcp", transport_security=_security(host), host=host,
        max_request_body_size=MAX_BODY_BYTES, stateless_http=settings.hosted,
        max_sessions=max_sessions, session_idle_timeout=SESSION_IDLE_TIMEOUT)
    inner: ASGIApp = app
    if settings.http_token is not None:
        inner = BearerToken(app, settings.http_token.get_secret_value())
    return Gate(inner)


class DrainingServer(uvicorn.Server):
    """uvicorn, except that the first SIGTERM drains: the gate refuses new requests with 503 while the calls in
    flight finish (at most `drain_seconds`), then the server exits. A second signal exits at once."""

    def __init__(self, config: uvicorn.Config, gate: Gate, drain_seconds: float) -> None:
        super().__init__(config)
        self.gate = gate
        self.drain_seconds = drain_seconds
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig == signal.SIGTERM and self._drain_until is None:
            self.gate.draining = True
            self._drain_until = time.monotonic() + self.drain_seconds
            log.info("SIGTERM: draining (no new requests; %d in flight, waiting up to %.0f s)",
                     self.gate.in_flight, self.drain_seconds)
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and not self.should_exit and (
                self.gate.in_flight == 0 or time.monotonic() >= self._drain_until):
            log.info("drained (%d calls still in flight): exiting", self.gate.in_flight)
            self.should_exit = True
        return await super().on_tick(counter)


def run_http(server: StemsServer, settings: Settings, *, host: str, port: int) -> int:
    if not is_loopback_host(host) and settings.http_token is None:
        print(f"suno-stems-mcp: refusing to serve on {host}, which is not a loopback address, without "
              "SUNO_STEMS_HTTP_TOKEN: set it to a long random secret (clients then send "
              "'Authorization: Bearer <token>'), or use --host 127.0.0.1.", file=sys.stderr)
        return 2
    try:
        sock = bind_tcp(host, port)
    except OSError as exc:
        print(f"suno-stems-mcp: cannot listen on {host}:{port}: {exc.strerror}. Use --port to pick another.",
              file=sys.stderr)
        return 2
    app = build_http_app(server, settings, host=host)
    shown = f"[{host}]" if ":" in host else host
    log.info("serving MCP over streamable HTTP at http://%s:%d/mcp%s%s", shown, sock.getsockname()[1],
             " (hosted: each request brings its key in X-Apiframe-Key)" if settings.hosted else "",
             " (bearer token required)" if settings.http_token else "")
    # No access log: a request line is harmless, but nothing about a request is worth a line per call.
    config = uvicorn_config(app, sock, log_level=settings.log_level.lower(), access_log=False,
                            timeout_graceful_shutdown=5, **http_limits())
    install_status_signal()
    DrainingServer(config, app, drain_seconds=settings.max_wait + DRAIN_EXTRA).run(sockets=[sock])
    return 0
