"""Fixtures for the agent-framework compatibility suite.

- `server_command`: how to start the server. $SUNO_STEMS_MCP_COMMAND (a shell-style command line), else the
  `suno-stems-mcp` next to the Python running pytest. Nothing else here knows where the server lives.
- `server_env`: what the server is started with: the sandbox's split time (SUNO_STEMS_SANDBOX_STEMS_SECONDS=30,
  longer than the frameworks' default tool-call timeouts; a server that ignores it keeps its own timing, and
  each report shows the split's measured length) and a private output folder.
- the framework venvs (envs.py) are built once per session, 3 at a time, before the tests run.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import envs  # noqa: E402

STEMS_SECONDS = "30"
"""With the sandbox's 1 s in the queue, a split lasts 31 s: longer than every framework's default timeout."""
RESULTS = Path(os.environ.get("SUNO_STEMS_COMPAT_RESULTS") or HERE / ".results")


def resolve_server_command() -> list[str]:
    raw = os.environ.get("SUNO_STEMS_MCP_COMMAND", "").strip()
    if raw:
        return shlex.split(raw)
    return [str(Path(sys.executable).parent / "suno-stems-mcp")]


def pytest_sessionstart(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller builds the venvs
        return
    if not any("test_frameworks" in str(a) or Path(str(a)).resolve() == HERE or Path(str(a)).resolve() in HERE.parents
               for a in session.config.args):
        return
    started = time.monotonic()
    built = envs.ensure_all(list(envs.FRAMEWORKS), workers=3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "envs.json").write_text(json.dumps({
        "seconds": round(time.monotonic() - started, 1),
        "envs": {n: {"install_seconds": e.install_seconds, "error": e.error, "cached": e.cached,
                     "path": str(e.path), "versions": {k: v for k, v in e.versions.items()
                                                        if k in ("mcp", n, *_dists(n))}}
                 for n, e in built.items()},
    }, indent=1))


def _dists(name: str) -> list[str]:
    return [r.split("[")[0].split("=")[0].lower() for r in envs.FRAMEWORKS[name]]


@pytest.fixture(scope="session")
def server_command() -> list[str]:
    command = resolve_server_command()
    probe = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, f"the server command {command} does not run: {probe.stderr[-500:]}"
    return command


@pytest.fixture
def server_env(tmp_path: Path) -> dict[str, str]:
    return {
        "SUNO_STEMS_SANDBOX_STEMS_SECONDS": STEMS_SECONDS,
        "SUNO_STEMS_OUTPUT_DIR": str(tmp_path / "stems"),
        "SUNO_STEMS_SANDBOX_DIR": str(tmp_path / "sandbox-state"),  # never the user's own sandbox
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HttpServer:
    """`<server> --sandbox --transport http --port P`, up until the test ends."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self._log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([*command, "--sandbox", "--transport", "http", "--port", str(self.port)],
                                     env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"HTTP server exited with {self.proc.returncode}: {log.read_text()[-800:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("HTTP server did not listen within 30 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def http_server_factory(server_command, server_env, tmp_path):  # type: ignore[no-untyped-def]
    started: list[HttpServer] = []

    def start() -> HttpServer:
        server = HttpServer(server_command, server_env, tmp_path / f"http-server-{len(started)}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
