"""Run every benchmark one after another (never in parallel: they time each other otherwise).

    .venv/bin/python bench/run_all.py [--quick] [--only cold_start,download] [--json results.json]

Each script's output is shown as it runs; at the end, one line per benchmark says whether its target was met,
and `--json` saves every script's final JSON line. The exit status is non-zero only when a script fails to run:
missing a target is a finding, not an error (timings are never asserted).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
# cheapest first; completion (minutes of real waiting in a full run) last
ORDER = ("context_cost", "cold_start", "call_overhead", "download", "concurrency", "completion")


def scripts() -> list[str]:
    found = {p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_") and p.stem not in ("run_all",
                                                                                                   "hello_server")}
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script (a smoke run for CI)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--json", metavar="PATH", help="write every script's final JSON line to PATH as a list")
    args = parser.parse_args()
    names = [n for n in scripts() if not args.only or n in args.only.split(",")]
    summaries = []
    failed = []
    for name in names:
        command = [sys.executable, str(BENCH / f"{name}.py"), *(["--quick"] if args.quick else [])]
        print(f"\n$ {' '.join(command)}", flush=True)
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        last = ""
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.startswith("{"):
                last = line
        code = process.wait()
        took = time.monotonic() - started
        if code != 0 or not last:
            failed.append(name)
            summaries.append({"bench": name, "error": f"exit status {code}", "seconds": took})
            continue
        figures = json.loads(last)
        figures["seconds"] = took
        summaries.append(figures)
    print("\n== summary")
    for s in summaries:
        if "error" in s:
            print(f"   {s['bench']:14} FAILED TO RUN ({s['error']})")
        else:
            met = s.get("met")
            verdict = "n/a (report only)" if met is None else ("MET" if met else "MISSED")
            print(f"   {s['bench']:14} {verdict:18} ({s['seconds']:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=1) + "\n")
        print(f"   wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
