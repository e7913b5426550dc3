"""`suno-stems-mcp sandbox` serves the emulator on its own, prints where and with which key, and answers curl.
It serves the state all sandbox processes share, kept where SUNO_STEMS_SANDBOX_DIR says."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from suno_stems_mcp.cli import own_command
from suno_stems_mcp.sandbox import DEMO_KEY
from suno_stems_mcp.sandbox.seed import demo_id

pytestmark = pytest.mark.slow

SPLIT = {"parentJobId": demo_id("Midnight Harbor"), "action": "stems", "index": 1}
DEMO = {"X-API-Key": DEMO_KEY}


def env_for(state_dir: Path, **extra: str) -> dict[str, str]:
    """This environment without the project's settings, keeping the sandbox's state in `state_dir`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("APIFRAME_", "SUNO_STEMS_"))}
    return {**base, "SUNO_STEMS_SANDBOX_DIR": str(state_dir), **extra}


@contextmanager
def running(args: list[str], env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """(base URL, banner) of a sandbox command serving until the block ends, then stopped with Ctrl-C."""
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None and process.stderr is not None
        banner: list[str] = []
        while not banner or not banner[-1].startswith("Press Ctrl-C"):
            line = process.stdout.readline()
            assert line, f"the sandbox command ended ({process.wait(timeout=10)}): {process.stderr.read()}"
            banner.append(line.rstrip("\n"))
        yield banner[0].rsplit(" ", 1)[-1], banner
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0


def test_the_sandbox_command_answers_curl(tmp_path: Path) -> None:
    with running([*own_command(), "sandbox", "--port", "0"], env_for(tmp_path)) as (url, banner):
        assert url.startswith("http://127.0.0.1:")
        assert f"APIFRAME_API_KEY={DEMO_KEY}" in "\n".join(banner[:3])
        curl = shutil.which("curl")
        if curl is None:
            pytest.skip("curl is not installed")
        out = subprocess.run([curl, "-sS", "-H", f"X-API-Key: {DEMO_KEY}", f"{url}/v2/jobs?status=COMPLETED"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        jobs = json.loads(out)["jobs"]
        assert len(jobs) == 4 and all(job["status"] == "COMPLETED" for job in jobs)
        unauthorised = subprocess.run([curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{url}/v2/me"],
                                      capture_output=True, text=True, timeout=30).stdout
        assert unauthorised == "401"


def test_the_banner_tells_of_the_accounts_and_the_shared_state(tmp_path: Path) -> None:
    with running([*own_command(), "sandbox", "--port", "0"], env_for(tmp_path)) as (url, banner):
        said = "\n".join(banner)
        assert "afk_sandbox_<name>" in said and "account of its own" in said
        assert str(tmp_path) in said and "--reset" in said
        alice = httpx.get(f"{url}/v2/me", headers={"X-API-Key": "afk_sandbox_alice"}, timeout=10)
        assert alice.status_code == 200 and alice.json()["team"]["credits"] == 500


def test_a_second_run_serves_the_first_runs_jobs(tmp_path: Path) -> None:
    with running([*own_command(), "sandbox", "--port", "0"], env_for(tmp_path)) as (url, _):
        job_id = httpx.post(f"{url}/v2/music/suno/action", json=SPLIT, headers=DEMO, timeout=10).json()["jobId"]
    with running([*own_command(), "sandbox", "--port", "0"], env_for(tmp_path)) as (url, _):
        assert httpx.get(f"{url}/v2/jobs/{job_id}", headers=DEMO, timeout=10).status_code == 200
        assert httpx.get(f"{url}/v2/me", headers=DEMO, timeout=10).json()["team"]["credits"] == 500 - 11


FRESH = "import sys; from suno_stems_mcp.sandbox.runner import serve_forever; sys.exit(serve_forever(0, fresh=True))"


def test_starting_afresh_forgets_every_job(tmp_path: Path) -> None:
    with running([*own_command(), "sandbox", "--port", "0"], env_for(tmp_path)) as (url, _):
        job_id = httpx.post(f"{url}/v2/music/suno/action", json=SPLIT, headers=DEMO, timeout=10).json()["jobId"]
    with running([sys.executable, "-c", FRESH], env_for(tmp_path)) as (url, banner):
        assert any("afresh" in line for line in banner)
        assert httpx.get(f"{url}/v2/jobs/{job_id}", headers=DEMO, timeout=10).status_code == 404
        assert httpx.get(f"{url}/v2/me", headers=DEMO, timeout=10).json()["team"]["credits"] == 500


def test_unusable_timing_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run([*own_command(), "sandbox", "--port", "0"], capture_output=True, text=True, timeout=60,
                            env=env_for(tmp_path, SUNO_STEMS_SANDBOX_STEMS_SECONDS="a while"))
    assert result.returncode == 2
    assert "SUNO_STEMS_SANDBOX_STEMS_SECONDS='a while'" in result.stderr and result.stdout == ""


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*own_command(), "sandbox", "--port", str(port)], capture_output=True, text=True,
                                timeout=60, env=env_for(tmp_path))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
