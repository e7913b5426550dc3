"""Serving MCP: read the settings, set up logging on stderr, and run over stdio or streamable HTTP."""

from __future__ import annotations

import sys

import anyio

from . import logs
from .config import Settings, Transport
from .errors import SettingsError
from .mcp_server import build_server


def serve(*, transport: Transport, host: str, port: int, sandbox_flag: bool) -> int:
    try:
        settings = Settings.from_env(transport=transport, sandbox=sandbox_flag)
    except SettingsError as problem:
        print(f"suno-stems-mcp: {problem}", file=sys.stderr)
        return 2
    secrets = [s.get_secret_value() for s in (settings.api_key, settings.http_token) if s is not None]
    logs.configure(settings.log_level, secrets)
    server = build_server(settings)
    if transport == "stdio":
        anyio.run(server.run_stdio_async)
        return 0
    from .http_transport import run_http

    return run_http(server, settings, host=host, port=port)
