"""Cold start over stdio: process start -> `initialize` answered -> `tools/list` answered.

Subject: the installed `suno-stems-mcp` console script (default settings, no key). Baseline: bench/hello_server.py,
a bare MCPServer with one tool, run by the same interpreter. Runs alternate (baseline, subject, baseline, ...)
and the script reports medians and the ratio subject/baseline. Target: ratio <= 1.10.

It then explains the difference: `PYTHONPROFILEIMPORTTIME=1` (the environment form of `python -X importtime`,
which a console script cannot take on its command line) over the same protocol exchange, diffed against the
hello world's, and an in-process breakdown of the startup phases.

    .venv/bin/python bench/cold_start.py [--quick] [--runs 15]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

TARGET_RATIO = 1.10
PROTOCOL = "2025-11-25"
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench-cold-start", "version": "1"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def _line(message: dict[str, Any]) -> bytes:
    return (json.dumps(message) + "\n").encode()


def _read_reply(stdout: Any, want_id: int, deadline: float) -> dict[str, Any]:
    while time.monotonic() < deadline:
        raw = stdout.readline()
        if not raw:
            raise RuntimeError("the server closed stdout before answering")
        message = json.loads(raw)
        if message.get("id") == want_id:
            if "error" in message:
                raise RuntimeError(f"error answer: {message['error']}")
            return message
    raise RuntimeError("no answer in time")


def one_start(command: list[str], env: dict[str, str], stderr_path: Path | None = None) -> dict[str, float]:
    """Seconds from spawn to the initialize answer and to the tools/list answer (plus the tool count)."""
    err = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        t0 = time.perf_counter()
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
                                   cwd=tempfile.gettempdir())
        assert process.stdin is not None and process.stdout is not None
        deadline = time.monotonic() + 60
        try:
            process.stdin.write(_line(INITIALIZE))
            process.stdin.flush()
            _read_reply(process.stdout, 1, deadline)
            t_init = time.perf_counter() - t0
            process.stdin.write(_line(INITIALIZED) + _line(TOOLS_LIST))
            process.stdin.flush()
            listed = _read_reply(process.stdout, 2, deadline)
            t_list = time.perf_counter() - t0
        finally:
            process.stdin.close()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return {"init": t_init, "list": t_list, "tools": len(listed["result"]["tools"])}
    finally:
        if stderr_path:
            err.close()  # type: ignore[union-attr]


# import-time evidence --------------------------------------------------------------------------------------

def parse_importtime(text: str) -> dict[str, dict[str, Any]]:
    """key -> {name, self, cum, depth, children}. The log is post-order with depth in the indentation; a module
    can appear more than once (failed optional imports are retried), so keys are `name#occurrence`."""
    nodes: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    pending: list[tuple[int, str]] = []
    for line in text.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.split(":", 1)[1].split("|")
        if len(fields) != 3:
            continue
        self_us, cum_us, raw = fields
        depth = (len(raw) - len(raw.lstrip())) // 2
        name = raw.strip()
        seen[name] = seen.get(name, 0) + 1
        key = f"{name}#{seen[name]}"
        children = []
        while pending and pending[-1][0] > depth:
            children.append(pending.pop()[1])
        nodes[key] = {"name": name, "self": int(self_us), "cum": int(cum_us), "depth": depth,
                      "children": children[::-1]}
        pending.append((depth, key))
    return nodes


def importtime_runs(command: list[str], runs: int) -> list[dict[str, dict[str, Any]]]:
    env = c.child_env(PYTHONPROFILEIMPORTTIME="1")
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            path = Path(tmp) / f"imports-{i}.txt"
            one_start(command, env, stderr_path=path)
            out.append(parse_importtime(path.read_text(errors="replace")))
    return out


def _median_tree(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per module, the median self/cum over the runs that imported it (structure from the first run)."""
    merged: dict[str, dict[str, Any]] = {}
    for name, node in runs[0].items():
        selfs = [r[name]["self"] for r in runs if name in r]
        cums = [r[name]["cum"] for r in runs if name in r]
        merged[name] = {**node, "self": c.median(selfs), "cum": c.median(cums)}
    return merged


def import_diff(ours: dict[str, dict[str, Any]], hello: dict[str, dict[str, Any]]) -> dict[str, Any]:
    hello_names = {node["name"] for node in hello.values()}
    extra = {key for key, node in ours.items() if node["name"] not in hello_names}
    parent: dict[str, str] = {}
    for key, node in ours.items():
        for child in node["children"]:
            parent[child] = key

    def extra_cost(key: str) -> float:
        node = ours[key]
        own = node["self"] if key in extra else 0
        return own + sum(extra_cost(child) for child in node["children"])

    # every module only we import, heaviest subtree first (a parent's figure includes its children's)
    offenders = sorted(
        ({"module": ours[k]["name"], "imported_by": ours[parent[k]]["name"] if k in parent else "<top>",
          "cumulative_us": ours[k]["cum"], "self_us": ours[k]["self"], "extra_us": extra_cost(k)} for k in extra),
        key=lambda o: -o["extra_us"])
    packages: dict[str, float] = {}
    for key in extra:
        top = ours[key]["name"].split(".")[0]
        packages[top] = packages.get(top, 0) + ours[key]["self"]
    return {
        "modules_hello": len(hello_names),
        "modules_ours": len({node["name"] for node in ours.values()}),
        "modules_extra": len({ours[k]["name"] for k in extra}),
        "extra_self_us_total": sum(ours[k]["self"] for k in extra),
        "offenders": offenders,
        "extra_by_package_us": dict(sorted(packages.items(), key=lambda kv: -kv[1])),
    }


# in-process phases ------------------------------------------------------------------------------------------

PHASES_OURS = r"""
import time, json, sys
t0 = time.perf_counter()
import suno_stems_mcp.cli
t1 = time.perf_counter()
from suno_stems_mcp.config import Settings
from suno_stems_mcp import run as _run  # what main() imports for stdio
t2 = time.perf_counter()
settings = Settings.from_env(transport="stdio")
from suno_stems_mcp import logs
logs.configure(settings.log_level, [])
t3 = time.perf_counter()
from suno_stems_mcp.mcp_server import build_server
server = build_server(settings)
t4 = time.perf_counter()
import asyncio
tools = asyncio.run(server.list_tools())
t5 = time.perf_counter()
print(json.dumps({"import suno_stems_mcp.cli (argparse)": t1 - t0,
                  "import suno_stems_mcp.run (app, tools, runtime, httpx)": t2 - t1,
                  "settings + logging": t3 - t2, "build_server (Tool.from_function x3)": t4 - t3,
                  "first list_tools": t5 - t4, "total": t5 - t0}))
"""

PHASES_HELLO = r"""
import time, json, sys
t0 = time.perf_counter()
from mcp.server import MCPServer
t1 = time.perf_counter()
mcp = MCPServer("hello")
@mcp.tool()
async def hello(name: str, delay: float = 0) -> str:
    "Say hello to someone."
    return name
t2 = time.perf_counter()
import asyncio
tools = asyncio.run(mcp.list_tools())
t3 = time.perf_counter()
print(json.dumps({"import mcp.server": t1 - t0, "MCPServer() + 1 tool": t2 - t1, "first list_tools": t3 - t2,
                  "total": t3 - t0}))
"""


def phases(code: str, runs: int) -> dict[str, float]:
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        out = subprocess.run([c.PYTHON, "-c", code], capture_output=True, text=True, env=c.child_env(),
                             cwd=tempfile.gettempdir(), timeout=120, check=False)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: c.median([s[k] for s in samples]) for k in samples[0]}


def interpreter_floor(runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([c.PYTHON, "-c", "pass"], env=c.child_env(), check=True)
        times.append(time.perf_counter() - t0)
    return c.median(times)


def main() -> None:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, help="alternating runs of each (default 15; --quick 3)")
    args = p.parse_args()
    runs = args.runs or (3 if args.quick else 15)
    c.banner("cold start over stdio: spawn -> initialize -> tools/list", args.quick)

    ours_cmd = c.our_command()
    hello_cmd = [c.PYTHON, str(c.HELLO_SERVER)]
    env = c.child_env()
    print(f"   subject:  {' '.join(ours_cmd)}  (default settings, no key)")
    print(f"   baseline: {' '.join(hello_cmd)}")
    # one unmeasured start of each: fills the OS page cache and writes any missing .pyc files
    one_start(hello_cmd, env)
    one_start(ours_cmd, env)

    samples: dict[str, list[dict[str, float]]] = {"hello": [], "ours": []}
    for i in range(runs):
        order = (("hello", hello_cmd), ("ours", ours_cmd)) if i % 2 == 0 else (("ours", ours_cmd), ("hello", hello_cmd))
        for name, cmd in order:
            samples[name].append(one_start(cmd, env))
    assert all(s["tools"] == 3 for s in samples["ours"]) and all(s["tools"] == 1 for s in samples["hello"])

    figures: dict[str, Any] = {"runs": runs}
    rows = []
    for stage in ("init", "list"):
        h = [s[stage] for s in samples["hello"]]
        o = [s[stage] for s in samples["ours"]]
        r = c.ratio(c.median(o), c.median(h))
        # per-pair ratios show how stable the ratio is on a noisy machine
        pair = [a[stage] / b[stage] for a, b in zip(samples["ours"], samples["hello"], strict=False)]
        figures[stage] = {"hello_median_s": c.median(h), "ours_median_s": c.median(o), "ratio": r,
                          "hello_p95_s": c.p95(h), "ours_p95_s": c.p95(o),
                          "pair_ratio_min": min(pair), "pair_ratio_max": max(pair),
                          "ours_all_s": o, "hello_all_s": h}
        rows.append([f"spawn -> {'initialize' if stage == 'init' else 'tools/list'}", c.median(h) * 1000,
                     c.median(o) * 1000, (c.median(o) - c.median(h)) * 1000, f"{r:.3f}x",
                     f"{min(pair):.2f}-{max(pair):.2f}"])
    print(f"\n   medians of {runs} alternating runs (ms):")
    c.table(rows, ["stage", "hello", "ours", "added", "ratio", "pair ratios"])
    met = figures["list"]["ratio"] <= TARGET_RATIO
    figures["target_ratio"] = TARGET_RATIO
    figures["met"] = met
    print(f"   target: spawn -> tools/list at most {TARGET_RATIO:.2f}x the hello world: "
          f"{figures['list']['ratio']:.3f}x -> {c.verdict(met)}")

    # where the time goes --------------------------------------------------------------------------------
    floor = interpreter_floor(3 if args.quick else 7)
    figures["python_c_pass_s"] = floor
    n = 1 if args.quick else 3
    ph_hello = phases(PHASES_HELLO, n)
    ph_ours = phases(PHASES_OURS, n)
    figures["phases_hello_s"] = ph_hello
    figures["phases_ours_s"] = ph_ours
    print(f"\n   in-process phases (median of {n} fresh interpreters, ms); `python -c pass` = {floor * 1000:.1f} ms")
    for label, ph in (("hello", ph_hello), ("ours", ph_ours)):
        print(f"   {label}: " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in ph.items()))

    it_hello = _median_tree(importtime_runs(hello_cmd, n))
    it_ours = _median_tree(importtime_runs(ours_cmd, n))
    diff = import_diff(it_ours, it_hello)
    figures["imports"] = {k: v for k, v in diff.items() if k != "offenders"}
    figures["imports"]["top_offenders"] = diff["offenders"][:25]
    print(f"\n   imports (PYTHONPROFILEIMPORTTIME over the same spawn -> tools/list, median of {n}):"
          f" hello {diff['modules_hello']} modules, ours {diff['modules_ours']};"
          f" {diff['modules_extra']} extra modules costing {diff['extra_self_us_total'] / 1000:.1f} ms of self time")
    print("   top offenders: modules only we import, by `extra us` = self time of the not-in-hello modules in"
          " their subtree;\n   `cumulative us` as -X importtime prints it (includes imports hello also makes)")
    c.table([[o["module"], o["imported_by"], o["cumulative_us"], o["self_us"], o["extra_us"]]
             for o in diff["offenders"][:25]], ["module", "imported by", "cumulative us", "self us", "extra us"])
    print("   extra self time by top-level package (us): " + ", ".join(
        f"{k} {v:.0f}" for k, v in list(diff["extra_by_package_us"].items())[:12]))
    c.emit("cold_start", args.quick, figures)


if __name__ == "__main__":
    main()
