"""Shared helpers for the benchmark scripts (not a benchmark itself: run_all skips files starting with `_`).

Everything here is standard library plus what the project already depends on. Memory is read from
/proc/<pid>/status (VmRSS = resident now, VmHWM = peak resident since start or since the last reset through
/proc/<pid>/clear_refs), which works on Linux only; no psutil.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import itertools
import json
import math
import os
import platform
import socket
import statistics
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = Path(sys.executable).parent
PYTHON = sys.executable
HELLO_SERVER = BENCH / "hello_server.py"

def our_command() -> list[str]:
    """The installed console script (what Claude Desktop runs), as the demo starts it."""
    from suno_stems_mcp.cli import own_command

    return own_command()


def child_env(**extra: str) -> dict[str, str]:
    """A subprocess environment without this project's settings (no key leaks in from the shell)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APIFRAME_", "SUNO_STEMS_"))}
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    env.update(extra)
    return env


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smoke run with tiny sizes (seconds; for CI)")
    return p


def quiet() -> None:
    """Silence in-process library logs and deprecation chatter so the output stays readable (call after any
    MCPServer is constructed: the SDK sets up root logging at INFO)."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*ping is removed.*")
    for name in ("httpx", "httpcore", "httpx2", "httpcore2", "mcp", "suno_stems_mcp", "uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.WARNING)


# statistics -----------------------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): the value at or below which q% of the samples fall."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def p95(values: Sequence[float]) -> float:
    return percentile(values, 95)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def rounded(value: Any, digits: int = 4) -> Any:
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


# memory (Linux /proc) ---------------------------------------------------------------------------------------

def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmRSS, VmHWM, ... of a process in bytes, from /proc/<pid>/status."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key.startswith(("Vm", "Rss")):
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    values[key] = int(parts[0]) * 1024
    return values


def rss(pid: int | str = "self") -> int:
    return proc_status(pid)["VmRSS"]


def hwm(pid: int | str = "self") -> int:
    return proc_status(pid)["VmHWM"]


def reset_hwm(pid: int | str = "self") -> bool:
    """Reset the peak-RSS counter (VmHWM := VmRSS): `echo 5 > /proc/<pid>/clear_refs` (Linux >= 4.0)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid: int | str = "self") -> float:
    """user + system CPU time of a process so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuSampler:
    """Samples the CPU time of processes every `interval` s; `busy_seconds(pid, 0.9)` is how long a process ran at
    >= 90% of a core, `peak(pid)` its highest utilisation over one interval."""

    def __init__(self, pids: dict[str, int | str], interval: float = 0.1) -> None:
        import threading
        import time

        self.pids, self.interval = pids, interval
        self._clock = time.monotonic
        self.series: dict[str, list[tuple[float, float]]] = {name: [] for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = self._clock()
            for name, pid in self.pids.items():
                with contextlib.suppress(OSError):
                    self.series[name].append((now, cpu_seconds(pid)))
            self._stop.wait(self.interval)

    def utilisation(self, name: str) -> list[float]:
        points = self.series[name]
        return [(c1 - c0) / (t1 - t0) for (t0, c0), (t1, c1) in itertools.pairwise(points) if t1 > t0]

    def busy_seconds(self, name: str, threshold: float = 0.9) -> float:
        points = self.series[name]
        return sum(t1 - t0 for (t0, c0), (t1, c1) in itertools.pairwise(points) if t1 > t0
                   and (c1 - c0) / (t1 - t0) >= threshold)

    def peak(self, name: str) -> float:
        return max(self.utilisation(name), default=0.0)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class ConnectionSampler:
    """Samples, every `interval` s, how many ESTABLISHED TCP connections process `pid` holds to `port` on
    loopback (its socket inodes from /proc/<pid>/fd matched against /proc/net/tcp). `peak` is the most seen."""

    def __init__(self, pid: int, port: int, interval: float = 0.02) -> None:
        import threading

        self.pid, self.port, self.interval = pid, port, interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def count(self) -> int:
        inodes = set()
        try:
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            return 0
        count = 0
        want = f":{self.port:04X}"
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    next(f)
                    for line in f:
                        parts = line.split()
                        if parts[3] == "01" and parts[2].endswith(want) and parts[9] in inodes:
                            count += 1
            except OSError:
                continue
        return count

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.count())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


MB = 1024 * 1024


def mib(n: float) -> float:
    return n / MB


# machine ----------------------------------------------------------------------------------------------------

def revision() -> str:
    """The commit measured, plus `+dirty(...)` naming modified product files (others edit while we measure)."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=False).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--", "server", "tools", "pyproject.toml"], cwd=ROOT,
                                capture_output=True, text=True, timeout=10, check=False).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    dirty = sorted(line[3:] for line in status if line.strip())
    return head + (f"+dirty({', '.join(dirty)})" if dirty else "")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg": [round(x, 2) for x in load],
        "revision": revision(),
    }


# networking -------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RequestLog:
    """ASGI wrapper for the sandbox: when each request arrived and from which (host, port), i.e. which TCP
    connection. Install before serving: `sandbox.app = RequestLog(sandbox.app)`."""

    def __init__(self, app: Any) -> None:
        import time

        self.app = app
        self._clock = time.time
        self.events: list[tuple[float, str, str, tuple[str, int] | None]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            self.events.append((self._clock(), scope["method"], scope["path"], tuple(client) if client else None))
        await self.app(scope, receive, send)

    def times(self, method: str, path: str) -> list[float]:
        return [t for t, m, p, _ in list(self.events) if m == method and p == path]

    def connections(self, since: float = 0.0) -> set[tuple[str, int]]:
        return {cl for t, _, _, cl in list(self.events) if cl is not None and t >= since}


def new_song(sandbox: Any, title: str = "Bench Song", duration: float | None = None) -> str:
    """A finished Suno song in the sandbox's demo account, made directly in its store (nothing charged), so every
    split in a benchmark has a parent of its own (the idempotency key is derived from parent and track)."""
    import uuid

    from suno_stems_mcp.sandbox import DEMO_KEY, JobPlan
    from suno_stems_mcp.sandbox.music import song_tracks

    store = sandbox.store
    job_id = str(uuid.uuid4())
    store.create_job(store.accounts[DEMO_KEY], kind="song", input={"model": "suno", "prompt": title},
                     tracks=song_tracks(job_id, title, "bench", duration or store.config.track_seconds),
                     job_id=job_id, created_at=store.now() - 3600, plan=JobPlan(queued_for=1.0, runs_for=10.0),
                     charge=False)
    return job_id


# output -----------------------------------------------------------------------------------------------------

def banner(title: str, quick: bool) -> None:
    m = machine()
    print(f"== {title}{' (quick)' if quick else ''}")
    print(f"   {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['date']}, load {m['loadavg']}")
    print(f"   code: {m['revision']}")


def table(rows: Iterable[Sequence[Any]], header: Sequence[str]) -> None:
    rows = [[_cell(c) for c in row] for row in rows]
    header = list(header)
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(header)]
    print("   " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=False)))
    for row in rows:
        print("   " + "  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths, strict=False)))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return "-"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("x%"))
        return True
    except ValueError:
        return False


def verdict(met: bool | None) -> str:
    return "MET" if met else ("n/a" if met is None else "MISSED")


def emit(name: str, quick: bool, figures: dict[str, Any]) -> None:
    """The final line: one JSON object with every figure (run_all and BENCHMARKS.md read it)."""
    payload = {"bench": name, "quick": quick, "machine": machine(), **figures}
    print(json.dumps(rounded(payload), separators=(",", ":"), default=str), flush=True)
