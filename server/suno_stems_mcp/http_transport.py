"""MCP over streamable HTTP at `/mcp`, for agent frameworks and remote clients.

Loopback by default, with the SDK's DNS-rebinding protection (a foreign Host or Origin is refused).
A non-loopback bind refuses to start without `SUNO_STEMS_HTTP_TOKEN`; with a token set, every request
needs `Authorization: Bearer <token>`, compared in constant time.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys

import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import Settings
from .diagnostics import install_status_signal
from .mcp_server import StemsServer
from .net import bind_tcp, is_loopback_host, uvicorn_config

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*", "127.0.0.1", "localhost", "[::1]"]
LOOPBACK_ORIGINS = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]


class BearerToken:
    """Refuses every request whose `Authorization` is not `Bearer <token>` (401, without saying more)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = next((v for k, v in scope["headers"] if k.lower() == b"authorization"), b"")
            if not hmac.compare_digest(given, self._expected):
                body = json.dumps({"error": "Missing or wrong bearer token: send Authorization: Bearer "
                                            "<SUNO_STEMS_HTTP_TOKEN>."}).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="suno-stems-mcp"')]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def build_http_app(server: StemsServer, settings: Settings, *, host: str) -> ASGIApp:
    """The ASGI app serving `server` at /mcp, with the protections these settings call for."""
    if is_loopback_host(host):
        security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=LOOPBACK_HOSTS,
                                             allowed_origins=LOOPBACK_ORIGINS)
    else:
        # Reached only with a token (see run_http): a rebinding page cannot know it, and the names clients
        # use for a non-loopback address cannot be known here.
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    app: Starlette = server.streamable_http_app(streamable_http_path="/mcp", transport_security=security,
                                                host=host, max_request_body_size=MAX_BODY_BYTES)
    if settings.http_token is not None:
        return BearerToken(app, settings.http_token.get_secret_value())
    return app


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
    log.info("serving MCP over streamable HTTP at http://%s:%d/mcp%s", shown, sock.getsockname()[1],
             " (bearer token required)" if settings.http_token else "")
    config = uvicorn_config(app, sock, log_level=settings.log_level.lower(), access_log=False,
                            timeout_graceful_shutdown=5)
    install_status_signal()
    uvicorn.Server(config).run(sockets=[sock])
    return 0
