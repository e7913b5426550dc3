"""Every benchmark script runs (with --quick, tiny sizes) and ends with its JSON line of figures.

Timings are never asserted here: the benchmarks report ratios against baselines measured in the same run,
and BENCHMARKS.md records a full run. This only keeps the scripts working as the code changes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .support import child_env

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("_")
                 and p.stem not in ("run_all", "hello_server"))


def test_every_benchmark_is_smoke_tested() -> None:
    assert set(SCRIPTS) == {"cold_start", "call_overhead", "completion", "concurrency", "download", "context_cost",
                            "mixer_playable", "hosted"}


@pytest.mark.parametrize("name", SCRIPTS)
def test_the_benchmark_runs_quick(name: str) -> None:
    if name == "download" and shutil.which("curl") is None:
        pytest.skip("the download benchmark compares with curl, which is not installed")
    result = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--quick"], capture_output=True, text=True,
                            timeout=600, env=child_env())
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
    assert figures["bench"] == name and figures["quick"] is True
