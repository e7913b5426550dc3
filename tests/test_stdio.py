"""The real thing over stdio: `suno-stems-mcp` as a subprocess, driven by the official MCP client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from suno_stems_mcp.sandbox import DEMO_KEY, ThreadedSandbox

from .support import SONG, child_env, command, error, ok, stdio_params, wav_samples

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_a_split_over_stdio_in_sandbox_mode_saves_the_stems(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    params = stdio_params("--sandbox", env=child_env(SUNO_STEMS_OUTPUT_DIR=str(tmp_path / "stems"),
                                                     SUNO_STEMS_MAX_WAIT="30"))
    with log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            assert {t.name for t in (await client.list_tools()).tools} == {"list_tracks", "split_stems", "get_job"}
            songs = ok(await client.call_tool("list_tracks", {}))["tracks"]
            first = next(t for t in songs if t["splittable"])
            job = ok(await client.call_tool("split_stems", {"parent_job_id": first["job_id"],
                                                            "index": first["index"], "wait_seconds": 30}))
            for _ in range(20):  # as a model follows next_step: a client not known for long calls gets short ones
                if job["done"] and all(t.get("file") for t in job["tracks"]):
                    break
                job = ok(await client.call_tool("get_job", {"job_id": job["job_id"], "wait_seconds": 30}))
    assert job["status"] == "COMPLETED" and job["sandbox"] is True
    for track in job["tracks"]:
        saved = Path(track["file"])
        assert saved.is_relative_to(tmp_path / "stems") and wav_samples(saved.read_bytes())
    stderr = log.read_text()
    assert f"stems job {job['job_id']}" in stderr and "sandbox mode" in stderr
    assert DEMO_KEY not in stderr


async def test_against_an_external_api_with_a_key_and_faults(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.inject("POST /v2/music/suno/action", drop="after")
    log = tmp_path / "stderr.log"
    params = stdio_params(env=child_env(APIFRAME_API_KEY=DEMO_KEY, APIFRAME_BASE_URL=live_sandbox.url,
                                        SUNO_STEMS_DOWNLOAD="false", SUNO_STEMS_LOG_LEVEL="DEBUG"))
    with log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1}))
            missing = error(await client.call_tool("get_job", {"job_id": "00000000-0000-4000-8000-000000000000"}))
    assert job["status"] == "COMPLETED" and job["sandbox"] is False
    assert all(t.get("file") is None for t in job["tracks"])
    assert live_sandbox.sandbox.counters.stems_jobs_created == 1
    assert "no job" in missing
    assert DEMO_KEY not in log.read_text() and DEMO_KEY not in json.dumps(job)


def _rpc(process: subprocess.Popen[str], message: dict) -> None:
    assert process.stdin is not None
    process.stdin.write(json.dumps(message) + "\n")
    process.stdin.flush()


def test_stdout_carries_nothing_but_protocol(tmp_path: Path) -> None:
    """Every line the server writes to stdout is a JSON-RPC message, even while it logs and works."""
    env = child_env(SUNO_STEMS_OUTPUT_DIR=str(tmp_path), SUNO_STEMS_LOG_LEVEL="DEBUG")
    process = subprocess.Popen([*command(), "--sandbox"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        _rpc(process, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw-test", "version": "1"}}})
        _rpc(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _rpc(process, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        _rpc(process, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "split_stems", "arguments": {"parent_job_id": SONG, "index": 1, "wait_seconds": 2},
            "_meta": {"progressToken": "p1"}}})
        _rpc(process, {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "split_stems", "arguments": {"parent_job_id": "nope"}}})
        seen: dict[int, dict] = {}
        lines = []
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while len(seen) < 4 and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            message = json.loads(line)
            assert message.get("jsonrpc") == "2.0"
            if "id" in message:
                seen[message["id"]] = message
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=20)
    assert set(seen) == {1, 2, 3, 4}, lines
    assert not seen[3]["result"].get("isError") and seen[3]["result"]["structuredContent"]["job_id"]
    assert seen[4]["result"]["isError"] is True and "job id" in seen[4]["result"]["content"][0]["text"]
    assert any(json.loads(line).get("method") == "notifications/progress" for line in lines)
    assert process.stderr is not None and "stems job" in process.stderr.read()


def test_the_demo_runs_end_to_end(tmp_path: Path) -> None:
    result = subprocess.run([*command(), "demo", "--output", str(tmp_path)], capture_output=True, text=True,
                            timeout=120, env=child_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1. list_tracks" in result.stdout and "2. split_stems" in result.stdout and "3. get_job" in result.stdout
    saved = sorted(tmp_path.rglob("*.wav"))
    assert [p.name for p in saved] == ["instrumental.wav", "vocals.wav"]
    for path in saved:
        assert str(path) in result.stdout and len(wav_samples(path.read_bytes())) > 0
    assert "100.0%" in result.stdout


def test_a_bad_setting_stops_the_server_with_a_clear_message() -> None:
    result = subprocess.run(command(), capture_output=True, text=True, timeout=60,
                            env=child_env(SUNO_STEMS_MAX_WAIT="soon"))
    assert result.returncode == 2 and "SUNO_STEMS_MAX_WAIT='soon'" in result.stderr and result.stdout == ""


def test_version() -> None:
    from suno_stems_mcp import __version__

    result = subprocess.run([*command(), "--version"], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == f"suno-stems-mcp {__version__}"



@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_the_demo_runs_where_stdout_is_not_utf8(tmp_path: Path, encoding: str) -> None:
    result = subprocess.run([*command(), "demo", "--output", str(tmp_path)], capture_output=True, timeout=120,
                            env=child_env(PYTHONIOENCODING=encoding))
    out, err = result.stdout.decode(encoding), result.stderr.decode(encoding, errors="replace")
    assert result.returncode == 0 and "Traceback" not in out + err, out + err
    assert "3. get_job" in out and "#" in out  # the progress bar, in plain characters


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1") or not Path("/proc").is_dir(), reason="needs SIGUSR1 and /proc")
async def test_sigusr1_makes_a_stdio_server_log_its_status_and_keep_serving(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    params = stdio_params("--sandbox", env=child_env(SUNO_STEMS_OUTPUT_DIR=str(tmp_path / "stems")))
    with log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            await client.list_tools()
            servers = our_children()
            assert servers, "the stdio server process was not found"
            for pid in servers:
                os.kill(pid, signal.SIGUSR1)
            await anyio.sleep(0.5)
            assert len((await client.list_tools()).tools) == 3
    assert "status: tasks=" in log.read_text()


def our_children() -> list[int]:
    """The suno-stems-mcp processes this test process started, found through /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            started = b"suno-stems-mcp" in (entry / "cmdline").read_bytes() or b"suno_stems_mcp" in (
                entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and started:
            found.append(int(entry.name))
    return found
