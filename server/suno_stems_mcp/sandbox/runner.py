"""Running a sandbox on a real loopback port: in a background thread, or in the foreground as a command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import uvicorn

from ..net import UvicornThread, bind_tcp, uvicorn_config
from .emulator import Sandbox

LOOPBACK = "127.0.0.1"


class ThreadedSandbox(UvicornThread):
    """A sandbox served on a loopback port from a daemon thread; `url` is its base URL."""

    def __init__(self, sandbox: Sandbox | None = None, *, port: int = 0) -> None:
        self.sandbox = sandbox or Sandbox()
        super().__init__(self.sandbox.app, host=LOOPBACK, port=port)

    def start(self) -> ThreadedSandbox:
        super().start()
        return self

    def __enter__(self) -> ThreadedSandbox:
        return self.start()


def serve_forever(port: int) -> int:
    """`suno-stems-mcp sandbox`: serve until interrupted; prints where, and the key to use."""
    sandbox = Sandbox()
    try:
        sock = bind_tcp(LOOPBACK, port)
    except OSError as exc:
        print(f"suno-stems-mcp sandbox: cannot listen on {LOOPBACK}:{port}: {exc.strerror}. "
              "Pick another port with --port N (0 picks a free one).", file=sys.stderr)
        return 2
    url = f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    print(f"apiframe sandbox listening on {url}", flush=True)
    print(f"  APIFRAME_BASE_URL={url}", flush=True)
    print(f"  APIFRAME_API_KEY={sandbox.demo_key}", flush=True)
    print("  try: curl -H 'X-API-Key: " + sandbox.demo_key + f"' {url}/v2/jobs", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = uvicorn.Server(uvicorn_config(sandbox.app, sock))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(sockets=[sock]))
    return 0
