"""Soak: 2,000 tool calls, mixed, 10% with an injected fault, 50 at a time over HTTP, against one server.

Nothing may fail beyond the injected faults handled as specified; no split may be paid twice; the server's
memory at the end must be within 10% of its memory after warm-up; no asyncio task or open file may leak.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from suno_stems_mcp.core.runtime import MAX_KEEPALIVE
from suno_stems_mcp.sandbox import DEMO_KEY, ThreadedSandbox

from . import reliability
from .support import SEEDED_STEMS, SONG, SONG_2, child_env, command, text

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CALLS = 2000
CONCURRENCY = 50
WARM_UP = 200
FAULT_RATE = 0.10
FAULTS: list[dict[str, Any]] = [
    {"status": 503}, {"status": 500}, {"status": 502, "body": "html"}, {"status": 429, "retry_after": 1},
    {"drop": "before"}, {"drop": "after"}, {"body": "malformed"}, {"body": "truncated"}, {"status": 504},
]
SONGS = [SONG, SONG_2]


def _status(process: subprocess.Popen[str], log: Path) -> dict[str, int]:
    """Ask the server for its status line (SIGUSR1) and read it from its log."""
    pattern = r"status: tasks=(\d+) open_files=(\d+) sockets=(\d+) rss=(\d+)kB"
    before = len(re.findall(pattern, log.read_text()))
    process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = re.findall(pattern, log.read_text())
        if len(lines) > before:
            tasks, files, sockets, rss = lines[-1]
            return {"tasks": int(tasks), "files": int(files), "sockets": int(sockets), "rss_kb": int(rss)}
        time.sleep(0.05)
    raise AssertionError("the server did not report its status")


def _calls(rng: random.Random, count: int) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, arguments, route a fault would hit)."""
    plan = []
    for _ in range(count):
        pick = rng.random()
        if pick < 0.3:
            plan.append(("list_tracks", {"limit": rng.choice([1, 2, 10])}, "GET /v2/jobs"))
        elif pick < 0.45:
            plan.append(("list_tracks", {"job_id": rng.choice(SONGS)}, "GET /v2/jobs/*"))
        elif pick < 0.75:
            plan.append(("get_job", {"job_id": rng.choice([*SONGS, SEEDED_STEMS])}, "GET /v2/jobs/*"))
        else:
            arguments = {"parent_job_id": rng.choice(SONGS), "index": rng.choice([1, 2]),
                         "wait_seconds": rng.choice([0, 1, 3])}
            plan.append(("split_stems", arguments, rng.choice(["POST /v2/music/suno/action", "GET /v2/jobs/*"])))
    return plan


async def _run(url: str, live: ThreadedSandbox, plan: list[tuple[str, dict[str, Any], str]], rng: random.Random,
               outcomes: Counter[str], errors: list[str]) -> None:
    queue = list(plan)

    async def worker() -> None:
        http = httpx2.AsyncClient(timeout=120)
        async with Client(streamable_http_client(url, http_client=http)) as client:
            while queue:
                tool, arguments, route = queue.pop()
                if rng.random() < FAULT_RATE:
                    live.sandbox.inject(route, **rng.choice(FAULTS))
                    outcomes["faults injected"] += 1
                result = await client.call_tool(tool, arguments)
                outcomes["calls"] += 1
                if result.is_error:
                    outcomes["tool errors"] += 1
                    errors.append(f"{tool} {arguments}: {text(result)}")
                else:
                    outcomes[f"{tool} ok"] += 1

    async with anyio.create_task_group() as group:
        for _ in range(CONCURRENCY):
            group.start_soon(worker)


async def test_two_thousand_calls_with_faults(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = child_env(APIFRAME_BASE_URL=live_sandbox.url, APIFRAME_API_KEY=DEMO_KEY, SUNO_STEMS_SANDBOX="1",
                    SUNO_STEMS_MAX_WAIT="20", SUNO_STEMS_LOG_LEVEL="INFO", SUNO_STEMS_OUTPUT_DIR=str(tmp_path))
    with log.open("w") as stderr:
        process = subprocess.Popen([*command(), "--transport", "http", "--port", "0"], stdout=subprocess.DEVNULL,
                                   stderr=stderr, env=env)
    try:
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            found = re.search(r"at (http://127\.0\.0\.1:\d+/mcp)", log.read_text())
            url = found.group(1) if found else None
            time.sleep(0.05)
        assert url, log.read_text()
        rng = random.Random(20261123)
        outcomes: Counter[str] = Counter()
        errors: list[str] = []
        started = time.monotonic()
        await _run(url, live_sandbox, _calls(rng, WARM_UP), rng, outcomes, errors)
        live_sandbox.sandbox.faults.clear()
        await anyio.sleep(1.0)
        warm = _status(process, log)
        await _run(url, live_sandbox, _calls(rng, CALLS - WARM_UP), rng, outcomes, errors)
        live_sandbox.sandbox.faults.clear()
        await anyio.sleep(1.0)
        end = _status(process, log)
        took = time.monotonic() - started
        assert process.poll() is None, "the server died"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    counters = live_sandbox.sandbox.counters
    crashes = [e for e in errors if re.search(r": Error executing tool \w+$", e)]
    unexplained = [e for e in errors if "call" not in e.lower() and "try" not in e.lower()]
    reliability.describe("soak", f"{CALLS} MCP tool calls (list_tracks, get_job, split_stems), {CONCURRENCY} at a time "
                                 f"over streamable HTTP, with a one-shot fault injected before {FAULT_RATE:.0%} of "
                                 "them, against one server process.")
    reliability.fact("soak", f"calls made: {outcomes['calls']} in {took:.0f} s; faults injected: "
                             f"{outcomes['faults injected']}; tool errors: {outcomes['tool errors']} "
                             f"(crashes: {len(crashes)})")
    reliability.fact("soak", f"splits submitted: {outcomes['split_stems ok']}; stems jobs created: "
                             f"{counters.stems_jobs_created} for 4 distinct tracks; credits charged: "
                             f"{counters.credits_charged}")
    reliability.fact("soak", f"server memory after warm-up ({WARM_UP} calls): {warm['rss_kb'] / 1024:.1f} MB; "
                             f"at the end: {end['rss_kb'] / 1024:.1f} MB "
                             f"({(end['rss_kb'] / warm['rss_kb'] - 1) * 100:+.1f}%)")
    reliability.fact("soak", f"asyncio tasks after warm-up / at the end: {warm['tasks']} / {end['tasks']}; open files: "
                             f"{warm['files']} / {end['files']}; sockets: {warm['sockets']} / {end['sockets']}")
    assert outcomes["calls"] == CALLS
    assert not crashes and not unexplained, (crashes + unexplained)[:5]
    assert outcomes["tool errors"] <= outcomes["faults injected"], errors[:10]
    assert counters.stems_jobs_created <= 4, "a split was paid twice"
    assert end["rss_kb"] <= warm["rss_kb"] * 1.10, (warm, end)
    assert end["tasks"] <= warm["tasks"], (warm, end)
    assert end["files"] <= warm["files"], (warm, end)
    assert end["sockets"] <= warm["sockets"] + MAX_KEEPALIVE, (warm, end)  # idle pooled connections come and go
    assert os.path.getsize(log) > 0
