"""One sandbox for all of a user's sandbox processes: one state on disk, served on one port.

What a server started with `--sandbox` does in its lifespan (blocking calls; run them in a worker thread)::

    handle = SharedSandbox.start(default_state_dir(os.environ), SandboxConfig.from_env(os.environ))
    handle.url, handle.demo_key      # the API base URL and key to use
    handle.stop()                    # on shutdown

The state file (`persistence`) records the port. The first process to start binds it and serves; a process that
finds it served by a sandbox of the same state attaches: it serves nothing and uses that URL. An attached
process tries to bind its URL's port every POLL_SECONDS, which succeeds only once nobody listens there any more,
so when the serving process exits, one of the others serves in its place within POLL_SECONDS (and otherwise the
next sandbox process to start does): the audio URLs in results keep working while any sandbox process runs.
A port held by some other program makes the next process pick a free one and record it.

A state nobody has changed for STALE_SECONDS starts afresh when a process next serves it (its seeded songs
would otherwise have expired). `reset(state_dir)` starts afresh at once, safely while processes use it.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import logging
import os
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..net import UvicornThread
from .config import DEMO_KEY, SandboxConfig
from .emulator import Sandbox
from .persistence import StateFileError, clear, connect, meta, record_timing, set_meta, transaction

log = logging.getLogger(__name__)

STATE_DIR_VARIABLE = "SUNO_STEMS_SANDBOX_DIR"
LOOPBACK = "127.0.0.1"
IDENTITY_PATH = "/.well-known/suno-stems-sandbox"
POLL_SECONDS = 0.2
PROBE_SECONDS = 3.0
STALE_SECONDS = 12 * 3600.0
_CLAIM_ATTEMPTS = 5


def default_state_dir(environ: Mapping[str, str], platform: str = sys.platform) -> Path:
    """Where this environment keeps the shared state: SUNO_STEMS_SANDBOX_DIR, else the user's state folder."""
    explicit = environ.get(STATE_DIR_VARIABLE, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    if platform == "win32":
        base = environ.get("LOCALAPPDATA", "").strip()
        return (Path(base) if base else Path.home() / "AppData" / "Local") / "suno-stems-mcp" / "sandbox"
    base = environ.get("XDG_STATE_HOME", "").strip()
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".local" / "state"  # XDG ignores relative ones
    return root / "suno-stems-mcp" / "sandbox"


class SharedSandbox:
    """This process's part in the shared sandbox: serving it, or attached to the process that does."""

    demo_key = DEMO_KEY

    def __init__(self, state_dir: Path, config: SandboxConfig, port: int, state_id: str) -> None:
        self.state_dir = state_dir
        self.config = config
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"
        self._state_id = state_id
        self._server: UvicornThread | None = None
        self._sandbox: Sandbox | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @classmethod
    def start(cls, state_dir: Path, config: SandboxConfig | None = None) -> SharedSandbox:
        """Serve the shared sandbox of `state_dir`, or attach to the process serving it.

        New jobs take `config`'s timing from now on, whichever process makes them. Raises `SettingsError`
        when `state_dir` cannot hold the state.
        """
        config = config or SandboxConfig()
        with _opened(state_dir) as conn:
            port, sock, state_id = _claim(conn, config)
        handle = cls(state_dir, config, port, state_id)
        if sock is None:
            handle._watcher = threading.Thread(target=handle._watch, name=f"sandbox-watch:{port}", daemon=True)
            handle._watcher.start()
        else:
            try:
                handle._serve(sock)
            except BaseException:
                sock.close()
                raise
        return handle

    @property
    def serving(self) -> bool:
        """Whether this process is the one answering at `url` (it may become so later)."""
        return self._server is not None

    @property
    def sandbox(self) -> Sandbox | None:
        """The sandbox this process serves, if it serves."""
        return self._sandbox

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        if self._server is not None and self._sandbox is not None:
            self._server.stop()
            self._sandbox.close()
            self._server = self._sandbox = None
            try:
                with _opened(self.state_dir) as conn, transaction(conn):
                    if _server_record(meta(conn)).get("pid") == os.getpid():
                        conn.execute("DELETE FROM meta WHERE name = 'server'")
            except Exception:  # only a note for `reset`'s message; stopping must not fail over it
                log.warning("could not note in %s that this process stopped serving", self.state_dir, exc_info=True)

    def __enter__(self) -> SharedSandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _serve(self, sock: socket.socket) -> None:
        sandbox = Sandbox(self.config, state_dir=self.state_dir)
        try:
            self._server = UvicornThread(identified(sandbox.app, self._state_id), sock=sock).start()
        except BaseException:
            sandbox.close()
            raise
        self._sandbox = sandbox

    def _watch(self) -> None:
        while not self._stopping.wait(POLL_SECONDS):
            sock = _bind(self.port)
            if sock is None:
                continue
            try:
                self._serve(sock)
                with _opened(self.state_dir) as conn, transaction(conn):
                    set_meta(conn, server={"pid": os.getpid(), "port": self.port})
            except Exception:
                log.exception("could not take over serving the shared sandbox at %s", self.url)
                sock.close()
                continue
            log.info("now serving the shared sandbox at %s", self.url)
            return


def reset(state_dir: Path) -> str:
    """Start the shared state afresh; returns a sentence saying what was done.

    Safe while sandbox processes run: they drop their copy of the state at their next request.
    """
    with _opened(state_dir) as conn, transaction(conn):
        values = meta(conn)
        clear(conn)
    said = f"Started the sandbox state in {state_dir} afresh."
    port = _server_record(values).get("port")
    alive = identity(port) if isinstance(port, int) else None
    if alive is not None and alive.get("state") == values["state_id"]:
        said += (f" Process {alive.get('pid')} keeps serving it at http://{LOOPBACK}:{port}; its jobs from "
                 "before are gone.")
    return said


# serving ----------------------------------------------------------------------------------------------------


def identified(app: Any, state_id: str) -> Any:
    """`app`, also answering IDENTITY_PATH with which state it serves, so other processes can recognise it."""
    body = json.dumps({"state": state_id, "pid": os.getpid()}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == IDENTITY_PATH:
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)

    return answer


def identity(port: int) -> dict[str, Any] | None:
    """What the sandbox on this loopback port says it serves; None when nothing there answers as one."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=PROBE_SECONDS)
    try:
        conn.request("GET", IDENTITY_PATH)
        response = conn.getresponse()
        found = json.loads(response.read(4096)) if response.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    return found if isinstance(found, dict) else None


# claiming the port ------------------------------------------------------------------------------------------


def _claim(conn: sqlite3.Connection, config: SandboxConfig) -> tuple[int, socket.socket | None, str]:
    """(the port, a socket listening on it if this process is to serve, the state's id).

    The port is bound inside a transaction, so racing processes agree on one; a taken port is probed outside
    it, since the process serving it may be waiting for the same transaction to answer.
    """
    for _ in range(_CLAIM_ATTEMPTS):
        with transaction(conn):
            record_timing(conn, config)
            values = meta(conn)
            recorded = int(values["port"]) if "port" in values else None
            sock = _bind(recorded if recorded is not None else 0)
            if sock is not None:
                return _serving_from_here(conn, values, sock), sock, values["state_id"]
        assert recorded is not None
        found = identity(recorded)
        if found is not None and found.get("state") == values["state_id"]:
            return recorded, None, values["state_id"]
        with transaction(conn):
            values = meta(conn)
            if values.get("port") == str(recorded):  # some other program holds it: move to a free port
                log.warning("port %s is held by something other than this sandbox; moving to a free one", recorded)
                sock = _bind(0)
                if sock is not None:
                    return _serving_from_here(conn, values, sock), sock, values["state_id"]
    raise RuntimeError("could not agree with the other sandbox processes on a port")


def _serving_from_here(conn: sqlite3.Connection, values: Mapping[str, str], sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    if time.time() - float(values.get("changed_at", "0")) > STALE_SECONDS:
        clear(conn)
    set_meta(conn, port=port, server={"pid": os.getpid(), "port": port})
    return port


def _bind(port: int) -> socket.socket | None:
    """A socket listening on the loopback port; None when someone else listens there (or may not be displaced)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if sys.platform == "win32":  # there SO_REUSEADDR would let a second socket take a port that is in use
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES) or getattr(exc, "winerror", None) in (10013, 10048):
            return None
        raise
    return sock


def _server_record(values: Mapping[str, str]) -> dict[str, Any]:
    record = json.loads(values.get("server", "{}"))
    return record if isinstance(record, dict) else {}


@contextlib.contextmanager
def _opened(state_dir: Path) -> Iterator[sqlite3.Connection]:
    """A connection to the state file of `state_dir`, closed after; SettingsError when it cannot be used."""
    try:
        conn = connect(state_dir)
    except (OSError, sqlite3.Error, StateFileError) as exc:
        from ..errors import SettingsError  # the mcp SDK behind it is heavy; the sandbox does not need it otherwise

        raise SettingsError(f"The sandbox cannot keep its state in {state_dir}: {exc}. Set {STATE_DIR_VARIABLE} "
                            "to a folder you can write to, or start afresh with `suno-stems-mcp sandbox --reset`."
                            ) from exc
    try:
        yield conn
    finally:
        conn.close()
