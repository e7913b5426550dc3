"""Serving MCP: read the settings, set up logging on stderr, and run over stdio or streamable HTTP."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

import anyio

from . import logs
from .config import Settings, Transport
from .errors import SettingsError
from .mcp_server import RunningSandbox, build_server


def _shared_sandbox(environ: Mapping[str, str]) -> Callable[[], RunningSandbox]:
    """The sandbox every sandbox process of this user shares (its state dir and timing read now, once)."""
    from .sandbox import SandboxConfig, SharedSandbox, default_state_dir

    state_dir, config = default_state_dir(environ), SandboxConfig.from_env(environ)
    return lambda: SharedSandbox.start(state_dir, config)


def serve(*, transport: Transport, host: str, port: int, sandbox_flag: bool) -> int:
    try:
        settings = Settings.from_env(transport=transport, sandbox=sandbox_flag)
        shared = _shared_sandbox(os.environ) if settings.sandbox else None
    except SettingsError as problem:
        print(f"suno-stems-mcp: {problem}", file=sys.stderr)
        return 2
    secrets = [s.get_secret_value() for s in (settings.api_key, settings.http_token) if s is not None]
    logs.configure(settings.log_level, secrets)
    server = build_server(settings, start_sandbox=shared)
    if transport == "stdio":
        from .diagnostics import install_status_signal

        install_status_signal()  # SIGUSR1 logs a status line; by default it would kill the server
        anyio.run(server.run_stdio_async)
        return 0
    from .http_transport import run_http

    return run_http(server, settings, host=host, port=port)
