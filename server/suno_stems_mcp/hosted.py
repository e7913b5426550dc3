"""`--hosted`: one stateless HTTP server for many users, each bringing their own apiframe key per request.

The process holds no key of its own (it refuses to start with APIFRAME_API_KEY set) and saves no files; what
it remembers is filed per user under a hash of the key (core.runtime), and only ever as hints, so any replica
answers any request. Health, readiness and draining: http_transport.
"""

from __future__ import annotations

import sys

from . import logs
from .config import Settings, Transport
from .errors import SettingsError


def serve_hosted(*, transport: Transport, host: str, port: int, sandbox_flag: bool) -> int:
    try:
        settings = Settings.from_env(transport=transport, sandbox=sandbox_flag, hosted=True)
    except SettingsError as problem:
        print(f"suno-stems-mcp: {problem}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, [settings.http_token.get_secret_value()] if settings.http_token else [])
    from .http_transport import run_http
    from .mcp_server import build_server

    return run_http(build_server(settings), settings, host=host, port=port)
