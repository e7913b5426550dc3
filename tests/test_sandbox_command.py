"""`suno-stems-mcp sandbox` serves the emulator on its own, prints where and with which key, and answers curl."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from suno_stems_mcp.sandbox import DEMO_KEY

from .support import command

pytestmark = pytest.mark.slow


def test_the_sandbox_command_answers_curl() -> None:
    process = subprocess.Popen([*command(), "sandbox", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(3)]
        url = banner[0].rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert f"APIFRAME_API_KEY={DEMO_KEY}" in "".join(banner)
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
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0


def test_a_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*command(), "sandbox", "--port", str(port)], capture_output=True, text=True,
                                timeout=60)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
