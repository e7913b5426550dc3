"""Concurrency: 100 concurrent `split_stems` over streamable HTTP against the sandbox.

Subject: `suno-stems-mcp --transport http --port 0` as a subprocess (so its memory can be read from
/proc/<pid>/status: VmRSS now, VmHWM = peak), pointed at a ThreadedSandbox in this process through
APIFRAME_BASE_URL / APIFRAME_API_KEY. 100 MCP client sessions (the SDK's streamable HTTP client, one session
per call, as 100 agents would) connect, then all call split_stems at once on 100 different songs; the splits
take 0.5 s queued + 5 s running in the sandbox, so every call waits and polls.

Measured: all complete; p50/p95 tool latency; the server's peak RSS; and the connection pool: the distinct
client (host, port) pairs the sandbox saw during the burst (one pool of max 100 connections => at most 100),
and whether 10 sequential get_job calls right after the burst open any new connection (a pool reuses).

Baselines, alternated with the subject round by round:
  - memory: bench/hello_server.py over streamable HTTP, 100 sessions each holding a `hello(delay=...)` call
    open as long as a split takes (the SDK's own floor for 100 calls in flight);
  - latency: the same 100 splits made directly with httpx from this process (POST, then apiframe's SDK
    schedule: first poll at 2 s, x1.5, capped at 5 s).
Target: peak RSS <= 150 MB; one connection pool.

    .venv/bin/python bench/concurrency.py [--quick] [--calls 100] [--rounds 3] [--mode legacy|auto]
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from suno_stems_mcp.sandbox import DEMO_KEY, Sandbox, SandboxConfig, ThreadedSandbox

TARGET_RSS_MB = 150.0
POOL_MAX = 100  # server/runtime.py: httpx.Limits(max_connections=100)
QUEUE_S, RUN_S = 0.5, 5.0
FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


class ServerProcess:
    """A server subprocess that says on stderr where it listens; stderr is drained in a thread."""

    def __init__(self, command: list[str], env: dict[str, str], url_pattern: str | None = None,
                 url: str | None = None) -> None:
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.url = url
        found = threading.Event()

        def drain() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.lines.append(line)
                if url_pattern and not found.is_set():
                    match = re.search(url_pattern, line)
                    if match:
                        self.url = match.group(1)
                        found.set()

        threading.Thread(target=drain, daemon=True).start()
        if url_pattern and not found.wait(60):
            self.stop()
            raise RuntimeError("the server never said where it listens:\n" + "".join(self.lines[-20:]))

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def wait_http(url: str) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as probe:
        while time.monotonic() < deadline:
            try:
                await probe.get(url)
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing answers at {url}")


async def burst(url: str, calls: list[tuple[str, dict[str, Any]]], mode: str) -> list[dict[str, Any]]:
    """One MCP session per call; all sessions connect first, then every call starts at once."""
    go = asyncio.Event()
    ready = 0
    results: list[dict[str, Any]] = [{} for _ in calls]
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx2.AsyncClient(timeout=120, limits=limits) as http:

        async def one(i: int, tool: str, arguments: dict[str, Any]) -> None:
            nonlocal ready
            async with Client(streamable_http_client(url, http_client=http), mode=mode) as session:  # type: ignore[arg-type]
                ready += 1
                if ready == len(calls):
                    go.set()
                await go.wait()
                t0 = time.perf_counter()
                result = await session.call_tool(tool, arguments)
                results[i] = {"latency_s": time.perf_counter() - t0, "returned_at": time.time(),
                              "error": result.is_error,
                              "job": result.structured_content or {}, "text": getattr(result.content[0], "text", "")
                              if result.content else ""}

        await asyncio.gather(*(one(i, tool, args) for i, (tool, args) in enumerate(calls)))
    return results


async def sequential(url: str, job_ids: list[str], mode: str) -> list[float]:
    out = []
    async with httpx2.AsyncClient(timeout=60) as http, \
            Client(streamable_http_client(url, http_client=http), mode=mode) as session:  # type: ignore[arg-type]
        for job_id in job_ids:
            t0 = time.perf_counter()
            result = await session.call_tool("get_job", {"job_id": job_id})
            assert not result.is_error, result
            out.append(time.perf_counter() - t0)
    return out


class Bench:
    def __init__(self, calls: int, mode: str) -> None:
        self.calls = calls
        self.mode = mode
        self.sandbox = Sandbox(SandboxConfig(credits=10**7, queue_seconds=QUEUE_S, stems_seconds=RUN_S,
                                             seed_demo_data=False))
        self.log = c.RequestLog(self.sandbox.app)
        self.sandbox.app = self.log
        self.running = ThreadedSandbox(self.sandbox).start()

    async def ours(self) -> dict[str, Any]:
        songs = [c.new_song(self.sandbox) for _ in range(self.calls)]
        env = c.child_env(APIFRAME_BASE_URL=self.running.url, APIFRAME_API_KEY=DEMO_KEY, SUNO_STEMS_LOG_LEVEL="INFO")
        server = ServerProcess([*c.our_command(), "--transport", "http", "--port", "0"], env,
                               url_pattern=r"at (http://127\.0\.0\.1:\d+/mcp)")
        try:
            assert server.url
            idle = c.proc_status(server.pid)
            since = time.time()
            cpu0 = c.cpu_seconds(server.pid)
            with c.ConnectionSampler(server.pid, self.running.port) as sampler, \
                    c.CpuSampler({"server": server.pid, "bench": "self"}) as cpu:
                results = await burst(server.url, [("split_stems", {"parent_job_id": s, "index": 1,
                                                                    "wait_seconds": 40}) for s in songs], self.mode)
            server_cpu = c.cpu_seconds(server.pid) - cpu0
            after_burst = c.proc_status(server.pid)
            burst_conns = self.log.connections(since)
            seq_since = time.time()
            job_ids = [r["job"].get("job_id") for r in results if r["job"].get("job_id")][:10]
            seq = await sequential(server.url, job_ids, self.mode)
            new_conns = self.log.connections(seq_since) - burst_conns
            end = c.proc_status(server.pid)
        finally:
            server.stop()
        done = [r for r in results if not r.get("error") and r["job"].get("status") == "COMPLETED"]
        lat = [r["latency_s"] for r in results]
        failures = [r["text"][:200] for r in results if r.get("error") or r["job"].get("status") != "COMPLETED"]
        lags, gets, timelines = [], [], []
        submit, seen, delivery = [], [], []
        for r in done:
            job = self.sandbox.store.jobs[r["job"]["job_id"]]
            true_end = job.created_at + job.queued_for + job.runs_for
            lags.append(r["returned_at"] - true_end)
            polls = [t for t in self.log.times("GET", f"/v2/jobs/{job.id}") if t < seq_since]  # the burst's own
            gets.append(len(polls))
            submit.append(job.created_at - (r["returned_at"] - r["latency_s"]))  # call start -> job created
            seen.append(polls[-1] - true_end)  # job's end -> the GET that saw it completed
            delivery.append(r["returned_at"] - polls[-1])  # that GET -> the client has the result
            timelines.append((lags[-1], [round(t - job.created_at, 2) for t in polls],
                              round(r["returned_at"] - job.created_at, 2)))
        timelines.sort()
        return {"completed": len(done), "calls": len(results), "failures": failures[:3],
                "p50_s": c.median(lat), "p95_s": c.p95(lat), "max_s": max(lat),
                "rss_idle_mb": c.mib(idle["VmRSS"]), "hwm_mb": c.mib(max(after_burst["VmHWM"], end["VmHWM"])),
                "rss_after_mb": c.mib(end["VmRSS"]),
                "lag_p50_s": c.median(lags), "lag_p95_s": c.p95(lags), "gets_per_job": c.median(gets),
                "server_cpu_s": server_cpu, "peak_open_connections": sampler.peak,
                "submit_p50_s": c.median(submit), "seen_after_end_p50_s": c.median(seen),
                "delivery_p50_s": c.median(delivery), "delivery_p95_s": c.p95(delivery),
                "server_busy_s": cpu.busy_seconds("server"), "server_peak_util": cpu.peak("server"),
                "bench_busy_s": cpu.busy_seconds("bench"), "bench_peak_util": cpu.peak("bench"),
                "example_timelines": [{"lag_s": round(t[0], 2), "polls_at_s": t[1], "returned_at_s": t[2]}
                                      for t in (timelines[0], timelines[len(timelines) // 2], timelines[-1])]
                if timelines else [],
                "connections_burst": len(burst_conns), "new_connections_sequential": len(new_conns),
                "sequential_gets": len(seq), "sandbox_requests_burst": sum(1 for e in self.log.events
                                                                            if since <= e[0] < seq_since)}

    async def hello(self) -> dict[str, Any]:
        port = c.free_port()
        server = ServerProcess([c.PYTHON, str(c.HELLO_SERVER), "--http", "--port", str(port)], c.child_env(),
                               url=f"http://127.0.0.1:{port}/mcp")
        try:
            await wait_http(server.url)  # type: ignore[arg-type]
            idle = c.proc_status(server.pid)
            cpu0 = c.cpu_seconds(server.pid)
            with c.CpuSampler({"server": server.pid, "bench": "self"}) as cpu:
                results = await burst(server.url, [("hello", {"name": f"agent {i}", "delay": QUEUE_S + RUN_S})  # type: ignore[arg-type]
                                                   for i in range(self.calls)], self.mode)
            server_cpu = c.cpu_seconds(server.pid) - cpu0
            end = c.proc_status(server.pid)
        finally:
            server.stop()
        lat = [r["latency_s"] for r in results]
        return {"completed": sum(1 for r in results if not r.get("error")), "calls": len(results),
                "p50_s": c.median(lat), "p95_s": c.p95(lat), "rss_idle_mb": c.mib(idle["VmRSS"]),
                "hwm_mb": c.mib(end["VmHWM"]), "server_cpu_s": server_cpu,
                "over_delay_p50_s": c.median(lat) - (QUEUE_S + RUN_S),
                "server_busy_s": cpu.busy_seconds("server"), "bench_busy_s": cpu.busy_seconds("bench")}

    async def direct(self) -> dict[str, Any]:
        songs = [c.new_song(self.sandbox) for _ in range(self.calls)]
        limits = httpx.Limits(max_connections=POOL_MAX, max_keepalive_connections=20)
        async with httpx.AsyncClient(base_url=self.running.url, headers={"X-API-Key": DEMO_KEY}, timeout=30,
                                     limits=limits) as http:
            go = asyncio.Event()

            async def one(song: str) -> tuple[float, str]:
                await go.wait()
                t0 = time.perf_counter()
                answer = await http.post("/v2/music/suno/action", json={"parentJobId": song, "action": "stems",
                                                                        "index": 1},
                                         headers={"Idempotency-Key": str(uuid.uuid4())})
                answer.raise_for_status()
                job_id, delay = answer.json()["jobId"], 2.0
                while True:
                    await asyncio.sleep(delay)
                    job = (await http.get(f"/v2/jobs/{job_id}")).json()
                    if job["status"] in FINAL:
                        return time.perf_counter() - t0, job["status"]
                    delay = min(delay * 1.5, 5.0)

            tasks = [asyncio.create_task(one(s)) for s in songs]
            await asyncio.sleep(0.05)
            go.set()
            out = await asyncio.gather(*tasks)
        lat = [t for t, _ in out]
        return {"completed": sum(1 for _, s in out if s == "COMPLETED"), "calls": len(out),
                "p50_s": c.median(lat), "p95_s": c.p95(lat)}


async def run(calls: int, rounds: int, mode: str) -> dict[str, list[dict[str, Any]]]:
    bench = Bench(calls, mode)
    c.quiet()
    out: dict[str, list[dict[str, Any]]] = {"ours": [], "hello": [], "direct": []}
    try:
        for r in range(rounds):
            order = ("ours", "hello", "direct") if r % 2 == 0 else ("direct", "hello", "ours")
            for who in order:
                figures = await getattr(bench, who)()
                out[who].append(figures)
                shown = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()
                                  if k not in ("failures", "example_timelines"))
                print(f"   round {r + 1}/{rounds} {who:6}: {shown}", flush=True)
                if figures.get("failures"):
                    print(f"      failures: {figures['failures']}")
    finally:
        bench.running.stop()
    return out


def main() -> None:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=None, help="concurrent calls (default 100; --quick 10)")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 3; --quick 1)")
    p.add_argument("--mode", default="legacy", choices=("legacy", "auto"),
                   help="MCP client mode: legacy = initialize handshake with a session per client (what hosts "
                        "speak today; default), auto = the SDK default (2026-07-28 stateless when offered)")
    args = p.parse_args()
    calls = args.calls or (10 if args.quick else 100)
    rounds = args.rounds or (1 if args.quick else 3)
    c.banner(f"concurrency: {calls} concurrent split_stems over streamable HTTP", args.quick)
    print(f"   client mode {args.mode}; splits take {QUEUE_S:g} s queued + {RUN_S:g} s running; {rounds} rounds\n")
    out = asyncio.run(run(calls, rounds, args.mode))

    def med(who: str, key: str) -> float:
        return c.median([r[key] for r in out[who]])

    ours_hwm = max(r["hwm_mb"] for r in out["ours"])
    all_done = all(r["completed"] == r["calls"] for r in out["ours"])
    conns = max(r["connections_burst"] for r in out["ours"])
    peak_open = max(r["peak_open_connections"] for r in out["ours"])
    new_seq = max(r["new_connections_sequential"] for r in out["ours"])
    # one shared, bounded pool: never more than its limit open at once, and later calls reuse its connections
    one_pool = peak_open <= POOL_MAX and new_seq == 0
    rss_met = ours_hwm <= TARGET_RSS_MB
    print("\n   medians over rounds:")
    c.table([
        ["suno-stems-mcp (subject)", f"{med('ours', 'completed'):.0f}/{calls}", med("ours", "p50_s"),
         med("ours", "p95_s"), med("ours", "rss_idle_mb"), med("ours", "hwm_mb")],
        ["hello world, hello(delay) (RSS baseline)", f"{med('hello', 'completed'):.0f}/{calls}", med("hello", "p50_s"),
         med("hello", "p95_s"), med("hello", "rss_idle_mb"), med("hello", "hwm_mb")],
        ["direct httpx + SDK schedule (latency baseline)", f"{med('direct', 'completed'):.0f}/{calls}",
         med("direct", "p50_s"), med("direct", "p95_s"), float("nan"), float("nan")],
    ], ["who", "completed", "p50 s", "p95 s", "idle RSS MB", "peak RSS MB"])
    print(f"   p95 latency ratio ours/direct: {med('ours', 'p95_s') / med('direct', 'p95_s'):.2f}x;"
          f" peak RSS ratio ours/hello: {med('ours', 'hwm_mb') / med('hello', 'hwm_mb'):.2f}x;"
          f" a split's own duration is {QUEUE_S + RUN_S:g} s")
    print(f"   subject: lag after the split's true end p50 {med('ours', 'lag_p50_s'):.2f} s, p95"
          f" {med('ours', 'lag_p95_s'):.2f} s; {med('ours', 'gets_per_job'):.0f} GETs per job; server CPU"
          f" {med('ours', 'server_cpu_s'):.2f} s for the burst")
    print(f"   where a subject call's time goes (p50): call start -> job created {med('ours', 'submit_p50_s'):.2f} s;"
          f" the job runs {QUEUE_S + RUN_S:g} s; "
          f"its end -> the GET that saw it {med('ours', 'seen_after_end_p50_s'):.2f} s;"
          f" that GET -> result at the client {med('ours', 'delivery_p50_s'):.2f} s (p95"
          f" {med('ours', 'delivery_p95_s'):.2f})")
    print(f"   CPU during the burst (s at >= 90% of a core): server {med('ours', 'server_busy_s'):.1f} (its total"
          f" {med('ours', 'server_cpu_s'):.2f} s), bench process (sandbox + 100 clients, one GIL)"
          f" {med('ours', 'bench_busy_s'):.1f}; hello world: server {med('hello', 'server_busy_s'):.1f} (total"
          f" {med('hello', 'server_cpu_s'):.2f} s), bench {med('hello', 'bench_busy_s'):.1f}, its calls return"
          f" {med('hello', 'over_delay_p50_s'):.2f} s after their {QUEUE_S + RUN_S:g} s sleep (p50)")
    for label, t in zip(("fastest", "median", "slowest"), out["ours"][0]["example_timelines"], strict=False):
        print(f"      {label} job: GETs at {t['polls_at_s']} s after creation (true end {QUEUE_S + RUN_S:g}),"
              f" call returned at {t['returned_at_s']} s")
    print(f"   connections server -> sandbox: at most {peak_open} open at once (sampled from /proc; pool max"
          f" {POOL_MAX}); {conns} distinct (client host, port) pairs over the burst for"
          f" {med('ours', 'sandbox_requests_burst'):.0f} requests; new connections for 10 sequential get_job"
          f" after it: {new_seq}")
    if conns > peak_open + 1:
        print(f"   -> connection churn: {conns} connections opened for {peak_open} ever open at once: the pool"
              " closed idle connections and reconnected (core/runtime.py: MAX_KEEPALIVE)")
    print(f"   target: all complete: {'yes' if all_done else 'NO'}; peak RSS <= {TARGET_RSS_MB:g} MB:"
          f" {ours_hwm:.1f} MB -> {c.verdict(rss_met)}; one connection pool: {c.verdict(one_pool)}")
    c.emit("concurrency", args.quick, {
        "calls": calls, "rounds": rounds, "mode": args.mode, "rounds_detail": out,
        "ours_p50_s": med("ours", "p50_s"), "ours_p95_s": med("ours", "p95_s"),
        "direct_p95_s": med("direct", "p95_s"), "hello_p95_s": med("hello", "p95_s"),
        "p95_ratio_vs_direct": med("ours", "p95_s") / med("direct", "p95_s"),
        "ours_peak_rss_mb_max": ours_hwm, "ours_peak_rss_mb_median": med("ours", "hwm_mb"),
        "ours_idle_rss_mb": med("ours", "rss_idle_mb"), "hello_peak_rss_mb_median": med("hello", "hwm_mb"),
        "hello_idle_rss_mb": med("hello", "rss_idle_mb"),
        "rss_ratio_vs_hello": med("ours", "hwm_mb") / med("hello", "hwm_mb"),
        "connections_burst_max": conns, "new_connections_sequential_max": new_seq, "pool_max": POOL_MAX,
        "peak_open_connections": peak_open, "ours_lag_p50_s": med("ours", "lag_p50_s"),
        "ours_lag_p95_s": med("ours", "lag_p95_s"), "ours_gets_per_job": med("ours", "gets_per_job"),
        "ours_server_cpu_s": med("ours", "server_cpu_s"),
        "ours_submit_p50_s": med("ours", "submit_p50_s"),
        "ours_seen_after_end_p50_s": med("ours", "seen_after_end_p50_s"),
        "ours_delivery_p50_s": med("ours", "delivery_p50_s"), "ours_server_busy_s": med("ours", "server_busy_s"),
        "ours_bench_busy_s": med("ours", "bench_busy_s"), "hello_server_busy_s": med("hello", "server_busy_s"),
        "hello_over_delay_p50_s": med("hello", "over_delay_p50_s"),
        "all_completed": all_done, "target_rss_mb": TARGET_RSS_MB, "rss_met": rss_met, "one_pool": one_pool,
        "met": rss_met and one_pool and all_done,
    })


if __name__ == "__main__":
    main()
