"""A local HAProxy in front of hosted suno-stems-mcp replicas on loopback, for tests and by-hand trials.

    with LocalLoadBalancer([8001, 8002, 8003]) as lb:   # replicas already listening on 127.0.0.1
        httpx.post(f"{lb.url}/mcp", ...)
        lb.server_states()                              # {"r1": "UP", "r2": "DOWN", ...}

Everything binds to 127.0.0.1. HAProxy runs in the foreground (`haproxy -db`) as a child process; its log lines
(stderr, no headers, no query strings) are kept in `log_path`. Needs the `haproxy` binary (Debian:
`apt-get install -y haproxy`); nothing else beyond the standard library.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "haproxy.cfg.template"
LOOPBACK = "127.0.0.1"


class HAProxyError(RuntimeError):
    """HAProxy refused the configuration, failed to start, or did not accept connections in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"not a TCP port: {value!r}")
    return value


def render(backend_ports: Sequence[int], listen_port: int, stats_socket: str | os.PathLike[str],
           template: str | os.PathLike[str] = TEMPLATE) -> str:
    """The HAProxy configuration for these loopback replicas, listening on 127.0.0.1:listen_port."""
    ports = [_port(p) for p in backend_ports]
    if not ports:
        raise ValueError("at least one backend port is needed")
    if len(set(ports)) != len(ports):
        raise ValueError(f"backend ports repeat: {ports}")
    if _port(listen_port) in ports:
        raise ValueError(f"listen port {listen_port} is also a backend port")
    sock = str(stats_socket)
    if any(c.isspace() for c in sock) or len(sock.encode()) > 100:  # sun_path is 108 bytes
        raise ValueError(f"stats socket path unusable by HAProxy: {sock!r}")
    servers = "\n".join(f"    server r{i} {LOOPBACK}:{p}" for i, p in enumerate(ports, 1))
    text = string.Template(Path(template).read_text(encoding="utf-8")).substitute(
        listen_port=listen_port, stats_socket=sock, servers=servers)
    return text


class LocalLoadBalancer:
    """Renders the config, checks it (`haproxy -c`), runs `haproxy -db` on loopback, and stops it."""

    def __init__(self, backend_ports: Sequence[int], listen_port: int | None = None, *,
                 haproxy: str | None = None, workdir: str | os.PathLike[str] | None = None,
                 template: str | os.PathLike[str] = TEMPLATE) -> None:
        self.backend_ports = [_port(p) for p in backend_ports]
        self._fixed_port = listen_port is not None
        self.listen_port = _port(listen_port) if listen_port is not None else free_port()
        self.haproxy = haproxy or shutil.which("haproxy") or "/usr/sbin/haproxy"
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="local-lb-"))
        self.template = Path(template)
        self.config_path = self.workdir / "haproxy.cfg"
        self.log_path = self.workdir / "haproxy.log"
        self.stats_socket = self.workdir / "admin.sock"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    # -- configuration ------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.listen_port}"

    def render(self) -> str:
        return render(self.backend_ports, self.listen_port, self.stats_socket, self.template)

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.render(), encoding="utf-8")
        return self.config_path

    def check(self) -> str:
        """`haproxy -c`: raises HAProxyError with HAProxy's own words if the configuration is refused."""
        self.write_config()
        try:
            done = subprocess.run([self.haproxy, "-c", "-f", str(self.config_path)], capture_output=True,
                                  text=True, timeout=30)
        except FileNotFoundError as exc:
            raise HAProxyError(f"haproxy not found ({self.haproxy}): apt-get install -y haproxy") from exc
        out = (done.stdout + done.stderr).strip()
        if done.returncode != 0:
            raise HAProxyError(f"haproxy -c refused {self.config_path}:\n{out}")
        return out

    # -- process ------------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> LocalLoadBalancer:
        """Start HAProxy and return once it accepts connections on the listen port (or raise)."""
        if self.running:
            return self
        attempts = 1 if self._fixed_port else 3  # a port picked by free_port() may be taken in between
        for attempt in range(attempts):
            self.check()
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            self._proc = subprocess.Popen([self.haproxy, "-db", "-f", str(self.config_path)],
                                          stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
            try:
                self._wait_accepting(timeout)
                return self
            except HAProxyError:
                self.stop()
                if attempt + 1 == attempts or "cannot bind" not in self.log_text():
                    raise
                self.listen_port = free_port()
        raise AssertionError("unreachable")

    def _wait_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise HAProxyError(f"haproxy exited with {self._proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                with socket.create_connection((LOOPBACK, self.listen_port), timeout=0.5):
                    pass
                if self.stats_socket.exists():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise HAProxyError(f"haproxy did not accept connections on {self.url} within {timeout} s:\n"
                           f"{self.log_text()[-4000:]}")

    def stop(self, timeout: float = 5.0, *, graceful: bool = False) -> int | None:
        """Stop HAProxy: SIGUSR1 (finish open requests) if graceful, else SIGTERM; SIGKILL after timeout."""
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGUSR1 if graceful else signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
            code = proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def close(self) -> None:
        """Stop, and remove the working folder if this object made it."""
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalLoadBalancer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- observation --------------------------------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def admin(self, command: str, timeout: float = 2.0) -> str:
        """One command on HAProxy's runtime API (the stats socket), e.g. "show stat"."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.stats_socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_states(self) -> dict[str, str]:
        """{"r1": "UP", "r2": "DOWN", ...}: each replica's health as HAProxy sees it now."""
        lines = self.admin("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        name, svname, status = header.index("pxname"), header.index("svname"), header.index("status")
        states = {}
        for line in lines[1:]:
            cols = line.split(",")
            if len(cols) > status and cols[name] == "mcp_replicas" and cols[svname] not in ("BACKEND", "FRONTEND"):
                states[cols[svname]] = cols[status].split()[0]  # "UP", "DOWN", "UP 1/2", "DOWN 1/2", "NOLB"...
        return states

    def wait_for_states(self, expected: dict[str, str], timeout: float = 10.0) -> dict[str, str]:
        """Wait until each named replica has the given state; raise HAProxyError at the deadline."""
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = self.server_states()
            if all(states.get(k) == v for k, v in expected.items()):
                return states
            time.sleep(0.1)
        raise HAProxyError(f"replica states {states} did not reach {expected} within {timeout} s")
