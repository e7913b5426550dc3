"""Running a sandbox on a real loopback port: in a background thread, or in the foreground as a command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator

import uvicorn

from .app import Sandbox
from .config import SandboxConfig

LOOPBACK = "127.0.0.1"


def _bind(host: str, port: int) -> socket.socket:
    # proto must say TCP: asyncio turns Nagle off only for sockets that do (else 40 ms per keep-alive request)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _uvicorn_config(sandbox: Sandbox, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        sandbox.app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=30,
        limit_concurrency=None,
        timeout_graceful_shutdown=1,
    )


class ThreadedSandbox:
    """A sandbox served by uvicorn on a loopback port from a daemon thread; `url` is its base URL."""

    def __init__(self, sandbox: Sandbox | None = None, *, port: int = 0) -> None:
        self.sandbox = sandbox or Sandbox()
        self._socket = _bind(LOOPBACK, port)
        self.port: int = self._socket.getsockname()[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._server = uvicorn.Server(_uvicorn_config(self.sandbox, LOOPBACK, self.port))
        self._thread = threading.Thread(target=self._run, name=f"sandbox:{self.port}", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def start(self) -> ThreadedSandbox:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> ThreadedSandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_sandbox(config: SandboxConfig | None = None) -> Iterator[ThreadedSandbox]:
    with ThreadedSandbox(Sandbox(config)) as running:
        yield running


def serve_forever(port: int) -> int:
    """`suno-stems-mcp sandbox`: serve until interrupted; prints where, and the key to use."""
    sandbox = Sandbox()
    try:
        sock = _bind(LOOPBACK, port)
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
    server = uvicorn.Server(_uvicorn_config(sandbox, LOOPBACK, sock.getsockname()[1]))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(sockets=[sock]))
    return 0
