"""Completion detection: how late, and with how many polls, a finished split is noticed.

Jobs last N seconds in the sandbox (`plan_next(runs_for=N, queued_for=1)`; progress rises linearly as the
sandbox reports it). Subject: the server in process (`mcp.Client(build_server(settings))`, SUNO_STEMS_MAX_WAIT
default 45), driven as an assistant would: split_stems(wait_seconds=40), then get_job(wait_seconds=40) until
done. Baseline: apiframe's own SDK schedule (first poll at 2 s, x1.5, capped at 5 s) as a plain httpx loop
after the same POST. Runs alternate (subject first, then baseline first, ...).

Measured per job: lag = when the caller got COMPLETED - the job's true end (created_at + queued_for +
runs_for from the sandbox store), and the number of GET /v2/jobs/{id} the sandbox saw for that job.
Target: median lag <= 1 s, with no more requests than the SDK schedule.

    .venv/bin/python bench/completion.py [--quick] [--durations 10,30,90] [--reps 3]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import httpx
from mcp import Client
from pydantic import SecretStr

from suno_stems_mcp.config import Settings
from suno_stems_mcp.mcp_server import build_server
from suno_stems_mcp.sandbox import DEMO_KEY, Sandbox, SandboxConfig, ThreadedSandbox

TARGET_LAG_S = 1.0
QUEUED_FOR = 1.0
FINAL = {"COMPLETED", "FAILED", "CANCELLED"}


class Bench:
    def __init__(self) -> None:
        self.sandbox = Sandbox(SandboxConfig(credits=10**7, seed_demo_data=False))
        self.log = c.RequestLog(self.sandbox.app)
        self.sandbox.app = self.log
        self.running = ThreadedSandbox(self.sandbox).start()
        self.output = Path(tempfile.gettempdir()) / "bench-completion-unused"  # download=False: nothing is written

    def true_end(self, job_id: str) -> float:
        job = self.sandbox.store.jobs[job_id]
        return job.created_at + job.queued_for + job.runs_for

    def polls(self, job_id: str) -> list[float]:
        return self.log.times("GET", f"/v2/jobs/{job_id}")

    def plan(self, seconds: float) -> None:
        self.sandbox.plan_next(kinds=("stems",), runs_for=seconds, queued_for=QUEUED_FOR)

    async def ours(self, seconds: float) -> dict[str, Any]:
        settings = Settings(api_key=SecretStr(DEMO_KEY), base_url=self.running.url, download=False,
                            output_dir=self.output, log_level="WARNING")
        song = c.new_song(self.sandbox)
        async with Client(build_server(settings)) as client:
            c.quiet()
            self.plan(seconds)
            started = time.time()
            result = await client.call_tool("split_stems", {"parent_job_id": song, "index": 1, "wait_seconds": 40})
            job = result.structured_content
            assert not result.is_error and job, result
            calls = [("split_stems", time.time() - started, job["status"], job["progress"])]
            while not job["done"]:
                result = await client.call_tool("get_job", {"job_id": job["job_id"], "wait_seconds": 40})
                job = result.structured_content
                assert not result.is_error and job, result
                calls.append(("get_job", time.time() - started, job["status"], job["progress"]))
            got = time.time()
        assert job["status"] == "COMPLETED", job
        return self._figures(job["job_id"], got, calls=calls)

    async def baseline(self, seconds: float) -> dict[str, Any]:
        song = c.new_song(self.sandbox)
        async with httpx.AsyncClient(base_url=self.running.url, headers={"X-API-Key": DEMO_KEY}, timeout=20) as http:
            self.plan(seconds)
            answer = await http.post("/v2/music/suno/action", json={"parentJobId": song, "action": "stems", "index": 1},
                                     headers={"Idempotency-Key": str(uuid.uuid4())})
            answer.raise_for_status()
            job_id = answer.json()["jobId"]
            delay = 2.0
            while True:
                await asyncio.sleep(delay)
                job = (await http.get(f"/v2/jobs/{job_id}")).json()
                if job["status"] in FINAL:
                    break
                delay = min(delay * 1.5, 5.0)
            got = time.time()
        assert job["status"] == "COMPLETED", job
        return self._figures(job_id, got)

    def _figures(self, job_id: str, got: float, **extra: Any) -> dict[str, Any]:
        end = self.true_end(job_id)
        created = self.sandbox.store.jobs[job_id].created_at
        polls = self.polls(job_id)
        return {"job_id": job_id, "lag_s": got - end, "gets": len(polls),
                "polls_at_s": [round(t - created, 2) for t in polls], "end_at_s": round(end - created, 2), **extra}


async def run(durations: list[float], reps: int) -> dict[str, Any]:
    bench = Bench()
    results: dict[float, dict[str, list[dict[str, Any]]]] = {}
    try:
        for seconds in durations:
            results[seconds] = {"ours": [], "baseline": []}
            for rep in range(reps):
                order = ("ours", "baseline") if rep % 2 == 0 else ("baseline", "ours")
                for who in order:
                    run_one = bench.ours if who == "ours" else bench.baseline
                    figures = await run_one(seconds)
                    results[seconds][who].append(figures)
                    print(f"   {seconds:5.0f} s job, rep {rep + 1}/{reps}, {who:8}: lag {figures['lag_s']:6.2f} s,"
                          f" {figures['gets']:2d} GETs" + (f", {len(figures['calls'])} tool calls" if "calls" in figures
                                                          else ""), flush=True)
    finally:
        bench.running.stop()
    return results


def main() -> None:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--durations", default=None, help="comma-separated job durations in s (default 10,30,90;"
                                                      " --quick 2,4)")
    p.add_argument("--reps", type=int, default=None, help="repetitions per duration and side (default 3; --quick 1)")
    args = p.parse_args()
    durations = [float(d) for d in (args.durations or ("2,4" if args.quick else "10,30,90")).split(",")]
    reps = args.reps or (1 if args.quick else 3)
    c.banner("completion detection: lag after a job's true end, and polls", args.quick)
    print(f"   jobs: queued {QUEUED_FOR:g} s then running {', '.join(f'{d:g}' for d in durations)} s;"
          f" {reps} alternating repetitions each\n")
    results = asyncio.run(run(durations, reps))

    rows = []
    per_duration: dict[str, Any] = {}
    all_ours_lag: list[float] = []
    requests_ok = True
    for seconds, sides in results.items():
        o, b = sides["ours"], sides["baseline"]
        ol, bl = [r["lag_s"] for r in o], [r["lag_s"] for r in b]
        og, bg = [r["gets"] for r in o], [r["gets"] for r in b]
        all_ours_lag += ol
        requests_ok &= c.median(og) <= c.median(bg)
        per_duration[f"{seconds:g}"] = {
            "ours_lag_median_s": c.median(ol), "baseline_lag_median_s": c.median(bl),
            "ours_lag_max_s": max(ol), "baseline_lag_max_s": max(bl),
            "ours_gets_median": c.median(og), "baseline_gets_median": c.median(bg),
            "ours_lags_s": ol, "baseline_lags_s": bl, "ours_gets": og, "baseline_gets": bg,
            "ours_tool_calls": [len(r["calls"]) for r in o],
            "example_ours_polls_at_s": o[0]["polls_at_s"], "example_ours_calls": o[0]["calls"],
            "example_baseline_polls_at_s": b[0]["polls_at_s"], "true_end_at_s": o[0]["end_at_s"],
        }
        rows.append([f"{seconds:g} s", c.median(ol), max(ol), c.median(bl), max(bl),
                     f"{c.median(ol) / c.median(bl):.2f}x" if c.median(bl) > 0 else "-",
                     c.median(og), c.median(bg), c.median([len(r["calls"]) for r in o])])
    print("\n   medians per job duration (lag in s after the true end; GETs of the job's id):")
    c.table(rows, ["job", "ours lag", "ours max", "SDK lag", "SDK max", "lag ratio", "ours GETs", "SDK GETs",
                   "tool calls"])
    lag_med = c.median(all_ours_lag)
    worst_duration_lag = max(v["ours_lag_median_s"] for v in per_duration.values())
    met = worst_duration_lag <= TARGET_LAG_S and requests_ok
    print(f"   target: median lag <= {TARGET_LAG_S:g} s at every duration, with no more GETs than the SDK schedule:"
          f" worst per-duration median {worst_duration_lag:.2f} s, GETs {'within' if requests_ok else 'OVER'}"
          f" -> {c.verdict(met)}")

    print("\n   poll timelines of the first repetition (s after the job was created):")
    for seconds, d in per_duration.items():
        print(f"   {seconds:>3} s job, end at {d['true_end_at_s']:g}")
        print(f"      ours: {' '.join(f'{t:g}' for t in d['example_ours_polls_at_s'])}")
        print("            calls: " + "; ".join(f"{n} returned at {t:.1f} s ({s}, {p}%)"
                                                for n, t, s, p in d["example_ours_calls"]))
        print(f"      SDK:  {' '.join(f'{t:g}' for t in d['example_baseline_polls_at_s'])}")
    c.emit("completion", args.quick, {"durations_s": durations, "reps": reps, "per_duration": per_duration,
                                      "ours_lag_median_all_s": lag_med, "worst_duration_median_lag_s":
                                      worst_duration_lag, "requests_within_sdk": requests_ok,
                                      "target_lag_s": TARGET_LAG_S, "met": met})


if __name__ == "__main__":
    main()
