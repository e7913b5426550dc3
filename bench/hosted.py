"""Hosted mode behind a load balancer: calls per second and p50/p99 of `get_job` through HAProxy with 1 and with
3 `--hosted` replicas, against the sandbox's own throughput as the floor; and memory per replica while 300 users
(each with their own key) have a `split_stems` in flight at once.

    .venv/bin/python bench/hosted.py [--quick]

Needs the `haproxy` binary (Debian: apt-get install -y haproxy). Everything is on 127.0.0.1: the sandbox, the
replicas, HAProxy (deploy/haproxy.cfg.template) and the load, made by this process with raw stateless MCP
requests (a `tools/call` POST with `MCP-Protocol-Version`, no initialize), one key per simulated user. Each phase
is bounded in time and count.

The throughput phases use `suno-stems-mcp sandbox --port 0` over keep-alive connections. The memory phase:
- each user is a client of its own (its own connection, as 300 people would have; one TLS context shared, since
  making 300 costs seconds). One httpx pool of 300 connections cost this process 7-9 s of CPU in httpcore's
  bookkeeping, on the same 2 cores as the replicas.
- each user names itself, in the 2026-07-28 envelope that carries the client's name with every stateless
  request, as a host that allows long calls (claude-ai): the call waits the 3 s it asks for and may take until
  SUNO_STEMS_MAX_WAIT (45 s, as deploy/k8s sets it) + 3 s to submit. A client that gives no name gets calls
  that end 4.5 s after they start (core/budget.py), which 300 splits at once on 2 shared cores cannot meet;
  that case is measured too and reported on its own, with why each call failed.
- a fresh sandbox per phase, with the sandbox's in-memory state (as the tests run it), not the shared SQLite
  state of `suno-stems-mcp sandbox`: that one goes over every account and job at every request, so 300 new
  accounts cost it 13 CPU-s and its answers came more than 10 s late. The sandbox stands in for apiframe,
  which is not on the replicas' machine; its CPU is not what is being measured.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (
    PYTHON,
    banner,
    child_env,
    cpu_seconds,
    free_port,
    hwm,
    median,
    mib,
    our_command,
    parser,
    percentile,
    ratio,
    reset_hwm,
    rss,
    table,
)
from _common import emit as emit_json

from suno_stems_mcp.sandbox.seed import seeded_id
from tests.local_lb import LocalLoadBalancer

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
           "MCP-Protocol-Version": "2025-11-25"}
LONG_CALL_META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientInfo": {"name": "claude-ai", "version": "bench"},
                  "io.modelcontextprotocol/clientCapabilities": {}}
"""A stateless 2026-07-28 request's envelope, naming a host known to allow about 60 s per call."""
DEPLOYED_MAX_WAIT = "45"
"""SUNO_STEMS_MAX_WAIT of the memory phase's replicas: what deploy/k8s sets (the default)."""
MEMORY_SANDBOX = """
import asyncio, uvicorn
from suno_stems_mcp.net import bind_tcp, uvicorn_config
from suno_stems_mcp.sandbox import Sandbox, SandboxConfig
sandbox = Sandbox(SandboxConfig(queue_seconds=0.3, stems_seconds=8))
sock = bind_tcp("127.0.0.1", 0)
print(f"apiframe sandbox listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
try:
    asyncio.run(uvicorn.Server(uvicorn_config(sandbox.app, sock, log_level="warning")).serve(sockets=[sock]))
except KeyboardInterrupt:
    pass
"""
"""The sandbox's app with its in-memory state (what tests use), in a process of its own."""


def key_of(n: int) -> str:
    return f"afk_sandbox_bench{n}"


def start_sandbox(state: Path | None) -> tuple[subprocess.Popen[str], str]:
    """`suno-stems-mcp sandbox` with its state in `state`; None: a sandbox with in-memory state (MEMORY_SANDBOX)."""
    env = child_env(SUNO_STEMS_SANDBOX_DIR=str(state), SUNO_STEMS_SANDBOX_QUEUE_SECONDS="0.3",
                    SUNO_STEMS_SANDBOX_STEMS_SECONDS="8") if state is not None else child_env()
    argv = [*our_command(), "sandbox", "--port", "0"] if state is not None else [PYTHON, "-c", MEMORY_SANDBOX]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            return process, line.strip().rsplit(" ", 1)[-1]
    process.kill()
    raise SystemExit("the sandbox did not start")


def start_replicas(count: int, sandbox_url: str, max_wait: str = "10") -> list[tuple[subprocess.Popen[bytes], int]]:
    replicas = []
    for _ in range(count):
        port = free_port()
        process = subprocess.Popen([*our_command(), "--transport", "http", "--hosted", "--port", str(port)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=child_env(APIFRAME_BASE_URL=sandbox_url, SUNO_STEMS_MAX_WAIT=max_wait,
                                                 SUNO_STEMS_LOG_LEVEL="WARNING"))
        replicas.append((process, port))
    for process, port in replicas:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"replica on {port} did not start")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    return replicas


def stop_replicas(replicas: list[tuple[subprocess.Popen[bytes], int]]) -> None:
    for process, _ in replicas:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process, _ in replicas:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def tool_call(name: str, arguments: dict[str, Any], n: int) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": n, "method": "tools/call", "params": {"name": name, "arguments": arguments}}


def stop_sandbox(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def failure(response: httpx.Response) -> str | None:
    """None for a successful tool call; else why it failed (HTTP status, JSON-RPC error or the tool's error),
    with ids and numbers blanked so that equal causes count together."""
    text = response.text
    if response.status_code != 200:
        return _blank(f"HTTP {response.status_code}: {text[:160]}")
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        text = next((line[5:] for line in text.splitlines() if line.startswith("data:") and '"result"' in line),
                    text)
    try:
        answer = json.loads(text)
    except ValueError:
        return _blank(f"not JSON: {text[:160]}")
    if not isinstance(answer, dict) or "result" not in answer:
        return _blank(f"JSON-RPC error: {json.dumps(answer.get('error') if isinstance(answer, dict) else answer)}")
    result = answer["result"]
    if not result.get("isError", False):
        return None
    return _blank("tool error: " + " ".join(c.get("text", "") for c in result.get("content", [])))


def _blank(reason: str) -> str:
    reason = re.sub(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", "<job>", reason)
    return re.sub(r"\d+(\.\d+)?", "N", reason)[:240]


def succeeded(response: httpx.Response) -> bool:
    return failure(response) is None


async def load(url: str, users: int, seconds: float, *, direct_sandbox: bool = False) -> dict[str, Any]:
    """`users` workers, each its own key, calling back to back for `seconds`: calls/s and latency."""
    latencies: list[float] = []
    failures = 0
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        nonlocal failures
        key = key_of(n)
        job = seeded_id(key, "Midnight Harbor")
        body = tool_call("get_job", {"job_id": job}, n)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                if direct_sandbox:
                    answer = await client.get(f"{url}/v2/jobs/{job}", headers={"X-API-Key": key})
                    good = answer.status_code == 200
                else:
                    answer = await client.post(f"{url}/mcp", json=body, headers={**HEADERS, "X-Apiframe-Key": key})
                    good = succeeded(answer)
            except httpx.HTTPError:
                good = False
            if good:
                latencies.append(time.perf_counter() - started)
            else:
                failures += 1

    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        began = time.monotonic()
        await asyncio.gather(*(worker(client, n) for n in range(users)))
        took = time.monotonic() - began
    return {"calls": len(latencies), "failures": failures, "calls_per_s": len(latencies) / took,
            "p50_ms": median(latencies) * 1000, "p99_ms": percentile(latencies, 99) * 1000}


async def concurrent_splits(url: str, users: int, index: int, *, named: bool) -> dict[str, Any]:
    """Every user submits one split at once and waits up to 3 s in the call: `users` calls in flight. Each user
    is a client of its own; `named`: a long-call host (LONG_CALL_META), else a client that gives no name."""
    tls = ssl.create_default_context()  # one for all: httpx would make (and load certificates into) one each
    clients = [httpx.AsyncClient(timeout=60, verify=tls) for _ in range(users)]
    reasons: Counter[str] = Counter()
    took: list[float] = []

    async def one(n: int, client: httpx.AsyncClient) -> None:
        key = key_of(n)
        body = tool_call("split_stems", {"parent_job_id": seeded_id(key, "Paper Satellites"), "index": index,
                                         "wait_seconds": 3}, n)
        headers = {**HEADERS, "X-Apiframe-Key": key}
        if named:
            body["params"]["_meta"] = LONG_CALL_META
            headers.update({"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
                            "Mcp-Name": "split_stems"})
        started = time.perf_counter()
        try:
            reason = failure(await client.post(f"{url}/mcp", json=body, headers=headers))
        except httpx.HTTPError as exc:
            reason = _blank(f"{type(exc).__name__}: {exc}")
        took.append(time.perf_counter() - started)
        if reason is not None:
            reasons[reason] += 1

    try:
        await asyncio.gather(*(one(n, client) for n, client in enumerate(clients)))
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    failed = sum(reasons.values())
    return {"ok": users - failed, "failed": failed, "failures": dict(reasons.most_common()),
            "call_p50_s": median(took), "call_max_s": max(took)}


def memory_phase(replicas_count: int, users: int, workdir: Path, *, named: bool = True) -> dict[str, Any]:
    """A fresh in-memory sandbox and fresh replicas: RSS before, and the peak while `users` splits are in flight."""
    sandbox, sandbox_url = start_sandbox(None)
    try:
        replicas = start_replicas(replicas_count, sandbox_url, max_wait=DEPLOYED_MAX_WAIT)
        try:
            pids = [process.pid for process, _ in replicas]
            idle = [rss(pid) for pid in pids]
            for pid in pids:
                reset_hwm(pid)
            with LocalLoadBalancer([port for _, port in replicas], workdir=workdir) as lb:
                lb.wait_for_states({f"r{i + 1}": "UP" for i in range(replicas_count)}, timeout=15)
                cpu_before = [cpu_seconds(pid) for pid in (*pids, sandbox.pid, "self")]
                outcome = asyncio.run(concurrent_splits(lb.url, users, index=1 if replicas_count == 1 else 2,
                                                        named=named))
                cpu = [after - before for after, before in zip(
                    [cpu_seconds(pid) for pid in (*pids, sandbox.pid, "self")], cpu_before, strict=True)]
            peaks = [hwm(pid) for pid in pids]
        finally:
            stop_replicas(replicas)
    finally:
        stop_sandbox(sandbox)
    return {"replicas": replicas_count, "users": users, "named": named, **outcome,
            "idle_mib": [mib(v) for v in idle], "peak_mib": [mib(v) for v in peaks], "per_user_kib": [
                (p - i) / 1024 / (users / replicas_count) for p, i in zip(peaks, idle, strict=True)],
            "cpu_s": {"replicas": cpu[:-2], "sandbox": cpu[-2], "load": cpu[-1]}}


def main() -> int:
    args = parser(__doc__ or "").parse_args()
    quick = args.quick
    banner("hosted mode behind HAProxy", quick)
    if shutil.which("haproxy") is None and not Path("/usr/sbin/haproxy").exists():
        print("   haproxy is not installed (apt-get install -y haproxy): nothing measured")
        emit_json("hosted", quick, {"skipped": "haproxy not installed"})
        return 0
    users, seconds, crowd = (8, 1.0, 30) if quick else (32, 8.0, 300)
    with tempfile.TemporaryDirectory(prefix="bench-hosted-") as tmp:
        work = Path(tmp)
        sandbox, sandbox_url = start_sandbox(work / "state")
        try:
            floor = asyncio.run(load(sandbox_url, users, seconds, direct_sandbox=True))
            phases: dict[int, dict[str, Any]] = {}
            for count in (1, 3):
                replicas = start_replicas(count, sandbox_url)
                try:
                    with LocalLoadBalancer([port for _, port in replicas], workdir=work / f"lb{count}") as lb:
                        lb.wait_for_states({f"r{i + 1}": "UP" for i in range(count)}, timeout=15)
                        asyncio.run(load(lb.url, users, min(1.0, seconds)))  # warm up
                        phases[count] = asyncio.run(load(lb.url, users, seconds))
                finally:
                    stop_replicas(replicas)
        finally:
            stop_sandbox(sandbox)
        memory = {count: memory_phase(count, crowd, work / f"mem{count}") for count in (1, 3)}
        unnamed = {count: memory_phase(count, crowd, work / f"anon{count}", named=False) for count in (1, 3)}

    print(f"   get_job through HAProxy, {users} users back to back for {seconds:g} s each (own key each)")
    rows = [["sandbox alone (GET /v2/jobs/<id>)", floor["calls_per_s"], floor["p50_ms"], floor["p99_ms"],
             floor["failures"]]]
    rows += [[f"{c} replica{'s' if c > 1 else ''}", p["calls_per_s"], p["p50_ms"], p["p99_ms"], p["failures"]]
             for c, p in phases.items()]
    table(rows, ["", "calls/s", "p50 ms", "p99 ms", "failed"])
    scale = ratio(phases[3]["calls_per_s"], phases[1]["calls_per_s"])
    p50_ratio = ratio(phases[3]["p50_ms"], phases[1]["p50_ms"])
    print(f"   3 replicas / 1 replica: {scale:.2f}x calls/s, p50 {p50_ratio:.2f}x,"
          f" p99 {ratio(phases[3]['p99_ms'], phases[1]['p99_ms']):.2f}x; 1 replica / sandbox alone: "
          f"{ratio(phases[1]['calls_per_s'], floor['calls_per_s']):.2f}x calls/s")
    print(f"   memory while {crowd} users each have a split_stems (wait 3 s) in flight (own key and client each)")
    rows = [[f"{m['replicas']} replica{'s' if m['replicas'] > 1 else ''}"
             f"{', named long-call host' if m['named'] else ', no client name'}", f"{m['ok']}/{crowd}",
             "/".join(f"{v:.1f}" for v in m["idle_mib"]), "/".join(f"{v:.1f}" for v in m["peak_mib"]),
             "/".join(f"{v:.0f}" for v in m["per_user_kib"]), m["call_p50_s"], m["call_max_s"],
             "/".join(f"{v:.1f}" for v in m["cpu_s"]["replicas"]), m["cpu_s"]["sandbox"], m["cpu_s"]["load"]]
            for m in (*memory.values(), *unnamed.values())]
    table(rows, ["", "ok", "idle MiB", "peak MiB", "KiB/user", "call p50 s", "call max s",
                 "replica CPU s", "sandbox CPU s", "load CPU s"])
    for m in (*memory.values(), *unnamed.values()):
        for reason, count in m["failures"].items():
            print(f"   failed, {m['replicas']} replica(s){'' if m['named'] else ', no client name'}: {count} x "
                  f"{reason}")
    one = memory[1]
    print(f"   1 replica: peak / idle {ratio(one['peak_mib'][0], one['idle_mib'][0]):.2f}x at {crowd} users")
    emit_json("hosted", quick, {"users": users, "seconds": seconds, "sandbox_floor": floor,
                                "phases": {str(c): p for c, p in phases.items()}, "scale_3_over_1": scale,
                                "memory": {str(c): m for c, m in memory.items()},
                                "memory_unnamed": {str(c): m for c, m in unnamed.items()}, "met": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
