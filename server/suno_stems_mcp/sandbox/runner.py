"""Running a sandbox on a real loopback port: in a background thread, or in the foreground as a command."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Mapping

import uvicorn

from ..net import UvicornThread, bind_tcp, uvicorn_config
from .config import SandboxConfig
from .emulator import Sandbox
from .persistence import SharedStore
from .shared import default_state_dir, reset

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


def serve_forever(port: int, *, fresh: bool = False, environ: Mapping[str, str] | None = None) -> int:
    """`suno-stems-mcp sandbox`: serve the shared sandbox state until interrupted; prints where, and the key to use.

    `fresh` starts the state afresh first (`--reset`); `environ` (default: this process's) gives the timing and
    the state's folder.
    """
    from ..errors import SettingsError

    env = os.environ if environ is None else environ
    try:
        config = SandboxConfig.from_env(env)
        state_dir = default_state_dir(env)
        said = reset(state_dir) if fresh else None
        sandbox = Sandbox(config, state_dir=state_dir)
    except SettingsError as exc:
        print(f"suno-stems-mcp sandbox: {exc}", file=sys.stderr)
        return 2
    try:
        sock = bind_tcp(LOOPBACK, port)
    except OSError as exc:
        sandbox.close()
        print(f"suno-stems-mcp sandbox: cannot listen on {LOOPBACK}:{port}: {exc.strerror}. "
              "Pick another port with --port N (0 picks a free one).", file=sys.stderr)
        return 2
    assert isinstance(sandbox.store, SharedStore)
    sandbox.store.share_timing()
    url = f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    print(f"apiframe sandbox listening on {url}", flush=True)
    print(f"  APIFRAME_BASE_URL={url}", flush=True)
    print(f"  APIFRAME_API_KEY={sandbox.demo_key}", flush=True)
    print("  try: curl -H 'X-API-Key: " + sandbox.demo_key + f"' {url}/v2/jobs", flush=True)
    print("Every key afk_sandbox_<name> (name: 1-64 letters, digits, _ or -) opens an account of its own, seeded "
          "like the demo one.", flush=True)
    if said:
        print(said, flush=True)
    print(f"State: {state_dir}, shared with every sandbox process (--reset starts it afresh).", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    server = uvicorn.Server(uvicorn_config(sandbox.app, sock))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(server.serve(sockets=[sock]))
    finally:
        sandbox.close()
    return 0
