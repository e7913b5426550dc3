"""Hosted mode behind a load balancer: calls per second and p50/p99 of `get_job` through HAProxy with 1 and with
3 `--hosted` replicas, against the sandbox's own throughput as the floor; and memory per replica while 300 users
(each with their own key) have a `split_stems` in flight at once.

    .venv/bin/python bench/hosted.py [--quick]

Needs the `haproxy` binary (Debian: apt-get install -y haproxy). Everything is on 127.0.0.1: the sandbox as one
process (`suno-stems-mcp sandbox --port 0`), the replicas, HAProxy (deploy/haproxy.cfg.template) and the load,
made by this process with raw stateless MCP requests (a `tools/call` POST with `MCP-Protocol-Version`, no
initialize) over keep-alive connections, one key per simulated user. Each phase is bounded in time and count.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (
    banner,
    child_env,
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


def key_of(n: int) -> str:
    return f"afk_sandbox_bench{n}"


def start_sandbox(state: Path) -> tuple[subprocess.Popen[str], str]:
    env = child_env(SUNO_STEMS_SANDBOX_DIR=str(state), SUNO_STEMS_SANDBOX_QUEUE_SECONDS="0.3",
                    SUNO_STEMS_SANDBOX_STEMS_SECONDS="8")
    process = subprocess.Popen([*our_command(), "sandbox", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
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


def start_replicas(count: int, sandbox_url: str) -> list[tuple[subprocess.Popen[bytes], int]]:
    replicas = []
    for _ in range(count):
        port = free_port()
        process = subprocess.Popen([*our_command(), "--transport", "http", "--hosted", "--port", str(port)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=child_env(APIFRAME_BASE_URL=sandbox_url, SUNO_STEMS_MAX_WAIT="10",
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


def succeeded(response: httpx.Response) -> bool:
    if response.status_code != 200:
        return False
    text = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        text = next((line[5:] for line in text.splitlines() if line.startswith("data:") and '"result"' in line), "")
    try:
        result = json.loads(text)["result"]
    except (ValueError, KeyError, TypeError):
        return False
    return not result.get("isError", False)


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


async def concurrent_splits(url: str, users: int, index: int) -> dict[str, Any]:
    """Every user submits one split at once and waits up to 3 s in the call: `users` calls in flight."""
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=users)) as client:
        async def one(n: int) -> bool:
            key = key_of(n)
            body = tool_call("split_stems", {"parent_job_id": seeded_id(key, "Paper Satellites"), "index": index,
                                             "wait_seconds": 3}, n)
            try:
                return succeeded(await client.post(f"{url}/mcp", json=body, headers={**HEADERS, "X-Apiframe-Key": key}))
            except httpx.HTTPError:
                return False

        results = await asyncio.gather(*(one(n) for n in range(users)))
    return {"ok": sum(results), "failed": len(results) - sum(results)}


def memory_phase(sandbox_url: str, replicas_count: int, users: int, workdir: Path) -> dict[str, Any]:
    replicas = start_replicas(replicas_count, sandbox_url)
    try:
        pids = [process.pid for process, _ in replicas]
        idle = [rss(pid) for pid in pids]
        for pid in pids:
            reset_hwm(pid)
        with LocalLoadBalancer([port for _, port in replicas], workdir=workdir) as lb:
            lb.wait_for_states({f"r{i + 1}": "UP" for i in range(replicas_count)}, timeout=15)
            outcome = asyncio.run(concurrent_splits(lb.url, users, index=1 if replicas_count == 1 else 2))
        peaks = [hwm(pid) for pid in pids]
    finally:
        stop_replicas(replicas)
    return {"replicas": replicas_count, "users": users, **outcome, "idle_mib": [mib(v) for v in idle],
            "peak_mib": [mib(v) for v in peaks], "per_user_kib": [
                (p - i) / 1024 / (users / replicas_count) for p, i in zip(peaks, idle, strict=True)]}


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
            memory = {count: memory_phase(sandbox_url, count, crowd, work / f"mem{count}") for count in (1, 3)}
        finally:
            sandbox.send_signal(signal.SIGINT)
            try:
                sandbox.wait(timeout=15)
            except subprocess.TimeoutExpired:
                sandbox.kill()

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
    print(f"   memory while {crowd} users each have a split_stems in flight (own key each)")
    table([[f"{m['replicas']} replica{'s' if m['replicas'] > 1 else ''}", f"{m['ok']}/{crowd}",
            "/".join(f"{v:.1f}" for v in m["idle_mib"]), "/".join(f"{v:.1f}" for v in m["peak_mib"]),
            "/".join(f"{v:.0f}" for v in m["per_user_kib"])] for m in memory.values()],
          ["", "ok", "idle MiB", "peak MiB", "KiB per user in flight"])
    one = memory[1]
    print(f"   1 replica: peak / idle {ratio(one['peak_mib'][0], one['idle_mib'][0]):.2f}x at {crowd} users")
    emit_json("hosted", quick, {"users": users, "seconds": seconds, "sandbox_floor": floor,
                                "phases": {str(c): p for c, p in phases.items()}, "scale_3_over_1": scale,
                                "memory": {str(c): m for c, m in memory.items()}, "met": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
