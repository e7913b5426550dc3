"""Call overhead: `get_job` over stdio against the sandbox on loopback, vs the same GET made directly with httpx.

A ThreadedSandbox runs in this process. The subject is the installed `suno-stems-mcp` as a stdio subprocess
(APIFRAME_BASE_URL = the sandbox, APIFRAME_API_KEY = the demo key, SUNO_STEMS_DOWNLOAD=false), driven by the
SDK's `mcp.Client`; it calls get_job on the seeded, finished stems job, so nothing waits. The baseline is
`GET /v2/jobs/{id}` with the same URL and X-API-Key header, on a keep-alive `httpx.AsyncClient`.
Calls alternate one by one; medians and p95 of 200 each. Target: at most 2 ms added at the median.

To say where the added time goes it also times, in the same alternation:
  stdio ping           the JSON-RPC round trip over the pipes with no tool (transport + session floor)
  stdio hello          bench/hello_server.py's tool over stdio (the SDK's floor for a tools/call)
  stdio get_job legacy the same get_job on an initialize-handshake session (what today's hosts speak)
and in this process (no pipes): our ApiframeClient.get_job alone, the whole tool through an in-memory
`mcp.Client(build_server(...))`, the client-side output-schema check, and a cProfile of the in-memory calls.

    .venv/bin/python bench/call_overhead.py [--quick] [--calls 200]
"""

from __future__ import annotations

import asyncio
import os
import pstats
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import hello_server
import httpx
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from pydantic import SecretStr

from suno_stems_mcp.apiframe import ApiframeClient
from suno_stems_mcp.config import Settings
from suno_stems_mcp.deadline import Deadline
from suno_stems_mcp.mcp_server import build_server
from suno_stems_mcp.sandbox import DEMO_KEY, Sandbox, ThreadedSandbox
from suno_stems_mcp.sandbox.seed import demo_id

TARGET_ADDED_MS = 2.0

# The stdio server exactly as `suno-stems-mcp` runs it, with cProfile switched on (SIGUSR1) after the imports,
# build_server and the warm-up calls, so the profile holds only the measured requests.
PROFILED_SERVER = r"""
import cProfile, os, signal, sys, anyio
from suno_stems_mcp import logs
from suno_stems_mcp.mcp_server import build_server
from suno_stems_mcp.config import Settings
settings = Settings.from_env(transport="stdio")
logs.configure(settings.log_level, [])
server = build_server(settings)
profile = cProfile.Profile()
signal.signal(signal.SIGUSR1, lambda *_: profile.enable())  # the bench switches it on after its warm-up calls
with open(sys.argv[2], "w") as pid:
    pid.write(str(os.getpid()))
try:
    anyio.run(server.run_stdio_async)
finally:
    profile.disable()
    profile.dump_stats(sys.argv[1])
"""

AREAS = (
    ("our code (server/, tools/)", (str(c.ROOT / "server") + "/", str(c.ROOT / "tools") + "/")),
    ("mcp SDK", ("/mcp/", "/mcp_types/")),
    ("pydantic", ("/pydantic/", "/pydantic_core/", "pydantic_core")),
    ("httpx/httpcore/h11", ("/httpx/", "/httpcore/", "/h11/")),
    ("anyio", ("/anyio/",)),
    ("asyncio", ("/asyncio/",)),
    ("json", ("/json/", "_json")),
)
JOB = demo_id("Midnight Harbor stems")  # seeded, COMPLETED long ago: get_job returns at once


def _params(command: list[str], env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=tempfile.gettempdir())


async def _timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def run(calls: int, quick: bool) -> dict[str, Any]:
    running = ThreadedSandbox(Sandbox()).start()
    url = f"{running.url}/v2/jobs/{JOB}"
    env = c.child_env(APIFRAME_BASE_URL=running.url, APIFRAME_API_KEY=DEMO_KEY, SUNO_STEMS_DOWNLOAD="false",
                      SUNO_STEMS_LOG_LEVEL="WARNING")
    settings = Settings(api_key=SecretStr(DEMO_KEY), base_url=running.url, download=False,
                        output_dir=Path(tempfile.gettempdir()) / "bench-overhead-unused", log_level="WARNING")
    errlog = open(Path(tempfile.gettempdir()) / "bench-call-overhead-stderr.log", "w")  # noqa: SIM115
    try:
        async with httpx.AsyncClient(headers={"X-API-Key": DEMO_KEY}, timeout=10) as direct, \
                httpx.AsyncClient(timeout=10) as pool, \
                Client(stdio_client(_params(c.our_command(), env), errlog=errlog)) as ours, \
                Client(stdio_client(_params(c.our_command(), env), errlog=errlog), mode="legacy") as ours_legacy, \
                Client(stdio_client(_params([c.PYTHON, str(c.BENCH / "_fast_stdio_server.py")], env),
                                    errlog=errlog)) as fast, \
                Client(stdio_client(_params([c.PYTHON, str(c.HELLO_SERVER)], c.child_env()), errlog=errlog)) as hello, \
                Client(build_server(settings)) as inproc, \
                Client(hello_server.mcp) as hello_inproc:
            api = ApiframeClient(pool, base_url=running.url, api_key=SecretStr(DEMO_KEY))
            c.quiet()
            await ours.list_tools()
            await ours_legacy.list_tools()
            await fast.list_tools()
            await hello.list_tools()
            await inproc.list_tools()
            await hello_inproc.list_tools()
            protocol = {"auto": ours.protocol_version, "legacy": ours_legacy.protocol_version}

            async def direct_get() -> None:
                response = await direct.get(url)
                response.raise_for_status()
                response.json()

            async def get_job(client: Client) -> None:
                result = await client.call_tool("get_job", {"job_id": JOB})
                assert not result.is_error and result.structured_content["status"] == "COMPLETED", result

            async def hello_call(client: Client) -> None:
                result = await client.call_tool("hello", {"name": "bench"})
                assert not result.is_error

            async def api_get() -> None:
                await api.get_job(JOB, Deadline(30))

            variants: dict[str, Callable[[], Awaitable[Any]]] = {
                "direct httpx GET (baseline)": direct_get,
                "stdio get_job (subject)": lambda: get_job(ours),
                "stdio get_job, legacy session": lambda: get_job(ours_legacy),
                "stdio get_job, asyncio-pipe stdio (prototype)": lambda: get_job(fast),
                "stdio ping (legacy session)": ours_legacy.send_ping,
                "stdio hello tool": lambda: hello_call(hello),
                "in-process ApiframeClient.get_job": api_get,
                "in-process get_job (mcp.Client(server))": lambda: get_job(inproc),
                "in-process hello tool": lambda: hello_call(hello_inproc),
            }
            warm = 5 if quick else 30
            for fn in variants.values():
                for _ in range(warm):
                    await fn()

            before = len(running.sandbox.requests("GET", f"/v2/jobs/{JOB}"))
            samples: dict[str, list[float]] = {name: [] for name in variants}
            names = list(variants)
            for i in range(calls):
                # rotate the order every round so no variant always follows the same one
                k = i % len(names)
                for name in names[k:] + names[:k]:
                    samples[name].append(await _timed(variants[name]))
            gets = len(running.sandbox.requests("GET", f"/v2/jobs/{JOB}")) - before
            expected_gets = calls * 6  # direct, subject, legacy, prototype, ApiframeClient, in-process

            # client-side output-schema check, as Client.call_tool runs it after every get_job
            result = await ours.session.call_tool("get_job", {"job_id": JOB})
            validate = []
            for _ in range(calls):
                t0 = time.perf_counter()
                await ours.session.validate_tool_result("get_job", result)
                validate.append(time.perf_counter() - t0)
            raw = []
            for _ in range(calls):  # the session call without the final validation
                t0 = time.perf_counter()
                await ours.session.call_tool("get_job", {"job_id": JOB}, allow_input_required=True,
                                             allow_claimed=True)
                raw.append(time.perf_counter() - t0)
            result_bytes = len(result.model_dump_json(by_alias=True, exclude_none=True))

        # the real server process under cProfile (enabled after its imports), doing the same calls over stdio
        prof_path = Path(tempfile.gettempdir()) / f"bench-call-overhead-{time.monotonic_ns()}.prof"
        pid_path = prof_path.with_suffix(".pid")
        driver = [c.PYTHON, "-c", PROFILED_SERVER, str(prof_path), str(pid_path)]
        async with Client(stdio_client(_params(driver, env), errlog=errlog), mode="legacy") as profiled:
            for _ in range(warm):
                await get_job(profiled)
            os.kill(int(pid_path.read_text()), signal.SIGUSR1)
            await asyncio.sleep(0.2)
            for _ in range(calls):
                await get_job(profiled)
        for _ in range(100):  # the profile is written when the server exits after stdin closes
            if prof_path.exists() and prof_path.stat().st_size:
                break
            await asyncio.sleep(0.05)
        profile = pstats.Stats(str(prof_path))
        prof_path.unlink(missing_ok=True)
        pid_path.unlink(missing_ok=True)
    finally:
        errlog.close()
        running.stop()
    return {"samples": samples, "validate": validate, "session_call": raw, "gets": gets,
            "expected_gets": expected_gets, "protocol": protocol, "result_bytes": result_bytes,
            "profile": profile}


def _area(filename: str) -> str:
    for area, needles in AREAS:
        if any(n in filename for n in needles):
            return area
    if filename == "~":
        return "builtins (C calls)"
    return "other stdlib"


def report_profile(stats: pstats.Stats, calls: int) -> dict[str, Any]:
    """CPU of the server process per get_job, by package, and its hottest functions (own time)."""
    raw = stats.stats  # type: ignore[attr-defined]
    areas: dict[str, float] = {}
    idle = 0.0
    rows = []
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in raw.items():
        if name in ("<method 'poll' of 'select.epoll' objects>", "<method 'select' of 'select.epoll' objects>") \
                or "epoll" in name:
            idle += tt
            continue
        area = _area(filename) if filename != "~" else _area_builtin(name)
        areas[area] = areas.get(area, 0.0) + tt
        rows.append((tt, ct, nc, f"{_short(filename)}:{line}({name})"))
    busy = sum(areas.values())
    print(f"\n   the server process under cProfile, {calls} get_job calls over stdio (imports excluded;"
          f" profiling inflates times, read the shares): {busy / calls * 1000:.2f} ms CPU per call")
    for area, tt in sorted(areas.items(), key=lambda kv: -kv[1]):
        print(f"   {tt / calls * 1000:8.3f} ms/call  {100 * tt / busy:5.1f}%  {area}")
    print("   hottest functions by own time (per call, ms):")
    for tt, ct, nc, where in sorted(rows, reverse=True)[:18]:
        print(f"   {tt / calls * 1000:8.3f} own {ct / calls * 1000:8.3f} cum {nc / calls:6.1f} calls/call  "
              f"{where[:120]}")
    ours = sorted((r for r in rows if r[3].startswith(("server/", "tools/"))), key=lambda r: -r[1])[:12]
    print("   our functions by cumulative time (per call, ms):")
    for tt, ct, _calls, where in ours:
        print(f"   {ct / calls * 1000:8.3f} cum {tt / calls * 1000:8.3f} own  {where[:120]}")
    return {"cpu_ms_per_call": busy / calls * 1000,
            "areas_ms_per_call": {a: t / calls * 1000 for a, t in areas.items()},
            "top_own": [{"fn": w, "own_ms": tt / calls * 1000, "cum_ms": ct / calls * 1000}
                        for tt, ct, nc, w in sorted(rows, reverse=True)[:18]],
            "ours_cum": [{"fn": w, "cum_ms": ct / calls * 1000} for tt, ct, nc, w in ours]}


def _area_builtin(name: str) -> str:
    if "pydantic" in name or "SchemaValidator" in name or "SchemaSerializer" in name:
        return "pydantic"
    if "json" in name.lower():
        return "json"
    return "builtins (C calls)"


def _short(filename: str) -> str:
    for marker in ("site-packages/", str(c.ROOT) + "/", "python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def main() -> None:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=None, help="calls of each (default 200; --quick 20)")
    args = p.parse_args()
    calls = args.calls or (20 if args.quick else 200)
    c.banner("call overhead: get_job over stdio vs a direct httpx GET", args.quick)
    out = asyncio.run(run(calls, args.quick))
    samples = out["samples"]
    base_name = "direct httpx GET (baseline)"
    subject = "stdio get_job (subject)"
    base_med = c.median(samples[base_name])
    rows = []
    figures: dict[str, Any] = {"calls": calls, "protocol": out["protocol"], "variants": {}}
    for name, values in samples.items():
        med, p95 = c.median(values), c.p95(values)
        figures["variants"][name] = {"median_ms": med * 1000, "p95_ms": p95 * 1000}
        rows.append([name, med * 1000, p95 * 1000, (med - base_med) * 1000, f"{c.ratio(med, base_med):.2f}x"])
    print(f"\n   {calls} calls each, alternating one by one (ms); negotiated protocol: "
          f"auto -> {out['protocol']['auto']}, legacy -> {out['protocol']['legacy']}")
    c.table(rows, ["variant", "median", "p95", "vs baseline", "ratio"])
    added = (c.median(samples[subject]) - base_med) * 1000
    added_p95 = (c.p95(samples[subject]) - c.p95(samples[base_name])) * 1000
    met = added <= TARGET_ADDED_MS
    print(f"   sandbox saw {out['gets']} GET /v2/jobs/{{id}} during the timed loop (expected {out['expected_gets']}:"
          " one per get_job, no hidden extra requests)" if out["gets"] == out["expected_gets"] else
          f"   sandbox saw {out['gets']} GETs, expected {out['expected_gets']}: get_job makes extra requests")
    print(f"   target: at most {TARGET_ADDED_MS:.1f} ms added at the median: {added:.2f} ms added "
          f"(p95 {added_p95:+.2f} ms) -> {c.verdict(met)}")

    # breakdown ------------------------------------------------------------------------------------------
    m = {name: c.median(v) * 1000 for name, v in samples.items()}
    validate_ms = c.median(out["validate"]) * 1000
    session_ms = c.median(out["session_call"]) * 1000
    inproc, api_only, hello_in = (m["in-process get_job (mcp.Client(server))"], m["in-process ApiframeClient.get_job"],
                                   m["in-process hello tool"])
    sdk_stdio_floor = m["stdio hello tool"] - hello_in
    breakdown = {
        "the GET itself (direct httpx; the baseline)": m[base_name],
        "our HTTP layer over plain httpx (ApiframeClient.get_job - direct)": api_only - m[base_name],
        "SDK tools/call in memory, hello-world tool (in-process hello)": hello_in,
        "our tool code over the SDK floor (in-process get_job - ApiframeClient.get_job - in-process hello)":
            inproc - api_only - hello_in,
        "  of which the client's outputSchema check of our result (jsonschema; timed alone)": validate_ms,
        "SDK stdio hop for a tiny result (stdio hello - in-process hello)": sdk_stdio_floor,
        "extra stdio cost of our bigger result (subject - in-process get_job - SDK stdio hop)":
            m[subject] - inproc - sdk_stdio_floor,
    }
    figures["breakdown_ms"] = breakdown
    proto = "stdio get_job, asyncio-pipe stdio (prototype)"
    figures["prototype_stdio_median_ms"] = m[proto]
    figures["prototype_saves_ms"] = m[subject] - m[proto]
    figures["sdk_floor_ms"] = m["stdio hello tool"]
    print(f"   SDK floor: a hello-world tools/call over stdio costs {m['stdio hello tool']:.3f} ms, i.e."
          f" {m['stdio hello tool']:.2f} ms would be added even by a tool doing no work beyond the GET;"
          f" the prototype transport without worker-thread hops (bench/_fast_stdio_server.py) runs get_job in"
          f" {m[proto]:.3f} ms ({m[subject] - m[proto]:+.3f} ms vs the subject)")
    figures["stdio_ping_ms"] = m["stdio ping (legacy session)"]
    figures["stdio_hello_tool_ms"] = m["stdio hello tool"]
    figures["session_call_without_validation_ms"] = session_ms
    figures["client_validation_ms"] = validate_ms
    figures["result_bytes"] = out["result_bytes"]
    print("\n   where the subject's time goes (differences of medians, ms; the unindented rows add up to the subject's"
          " median;\n   each difference carries the noise of two medians, a few tenths of a ms here):")
    for label, value in breakdown.items():
        print(f"   {value:8.3f}  {label}")
    print(f"   for scale: stdio ping {m['stdio ping (legacy session)']:.3f} ms; "
          f"hello-world tool over stdio {m['stdio hello tool']:.3f}"
          f" ms; get_job via session without the client's schema check {session_ms:.3f} ms;"
          f" result {out['result_bytes']} bytes")

    figures["server_profile"] = report_profile(out["profile"], calls)
    figures["baseline_median_ms"] = base_med * 1000
    figures["subject_median_ms"] = c.median(samples[subject]) * 1000
    figures["baseline_p95_ms"] = c.p95(samples[base_name]) * 1000
    figures["subject_p95_ms"] = c.p95(samples[subject]) * 1000
    figures["added_median_ms"] = added
    figures["added_p95_ms"] = added_p95
    figures["target_added_ms"] = TARGET_ADDED_MS
    figures["met"] = met
    c.emit("call_overhead", args.quick, figures)


if __name__ == "__main__":
    main()
