"""Each agent framework, on its defaults, through its own MCP integration and tool-call path, against
`suno-stems-mcp --sandbox` over stdio and over streamable HTTP. No LLM: a scripted model (drivers/_common.py)
picks each call from what the framework handed back. Each (framework, transport) runs drivers/<framework>.py
in that framework's own venv and reads the one JSON report it prints.

Passing means: list_tracks -> split_stems -> get_job... reached a COMPLETED job with two stems within 10 calls
with no call cut or failed, and both deliberate mistakes came back to the model as text that says what to do.
The split is one user request and each mistake a request of its own, in the same conversation (one agent run
each, where the framework has an agent loop), all on the framework's defaults; a driver may also check what the
README says to set where a default limits a run (pydantic-ai: its retries).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import envs
import pytest
from conftest import RESULTS

DRIVERS = Path(__file__).resolve().parent / "drivers"
DRIVER_TIMEOUT = 420  # 10 calls of at most SUNO_STEMS_MAX_WAIT (45 s) + 3 s, plus the error cases

CASES = [(name, transport) for name in envs.FRAMEWORKS for transport in ("stdio", "http")]


@pytest.mark.parametrize(("framework", "transport"), CASES, ids=[f"{f}-{t}" for f, t in CASES])
def test_framework(framework, transport, server_command, server_env, http_server_factory, tmp_path):  # type: ignore[no-untyped-def]
    driver = DRIVERS / f"{framework}.py"
    if not driver.exists():
        pytest.skip(f"no driver for {framework} yet")
    env = envs.ensure(framework)
    if env.python is None:
        pytest.skip(f"{framework} could not be installed: {env.error}")
    cfg = {"framework": framework, "transport": transport, "command": server_command, "env": server_env}
    if transport == "http":
        cfg["url"] = http_server_factory().url
    started = time.monotonic()
    proc = subprocess.run([str(env.python), str(driver), json.dumps(cfg)], capture_output=True, text=True,
                          timeout=DRIVER_TIMEOUT, cwd=tmp_path)
    seconds = round(time.monotonic() - started, 1)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("COMPAT-REPORT ")]
    assert lines, f"driver printed no report (exit {proc.returncode}); stderr: {proc.stderr[-3000:]}"
    report = json.loads(lines[-1][len("COMPAT-REPORT "):])
    report.update(wall_seconds=seconds, install_seconds=env.install_seconds,
                  versions={k: v for k, v in env.versions.items() if k in ("mcp", framework) or
                            k in [r.split("[")[0].split("=")[0].lower() for r in envs.FRAMEWORKS[framework]]},
                  stderr_tail=proc.stderr[-2500:])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{framework}-{transport}.json").write_text(json.dumps(report, indent=1, default=repr))
    problems = report.get("problems") or []
    assert report.get("ok") and not problems, f"{framework} over {transport}: " + "\n - ".join(["", *problems])
