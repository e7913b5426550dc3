"""A hosted deployment on loopback: the sandbox as one process (`suno-stems-mcp sandbox --port 0`), three
`--hosted` replicas, and HAProxy in front (round-robin, no stickiness: deploy/haproxy.cfg.template). Twelve
users, each with their own key, list, split and poll concurrently through it over both protocol eras while one
replica is killed and started again. Every call succeeds or gets a clear error, no split is charged twice, no
user sees another's job, and no key appears in any log or result."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from suno_stems_mcp.cli import own_command
from suno_stems_mcp.sandbox.seed import seeded_id

from .local_lb import LocalLoadBalancer, free_port
from .support import ok

pytestmark = [
    pytest.mark.slow,
    pytest.mark.anyio,
    pytest.mark.skipif(shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"),
                       reason="haproxy is not installed (Debian/Ubuntu: apt-get install -y haproxy; .ci/run does)"),
]

USERS = 12
REPLICAS = 3
ERAS = ("legacy", "2026-07-28")
SPLIT_PRICE = 11
ATTEMPTS = 8
"""How often a user repeats a call that got a transport error (a killed replica) before the test fails."""
RUN_BOUND = 120.0


def key_of(n: int) -> str:
    return f"afk_sandbox_user{n}"


def _clean_env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("APIFRAME_", "SUNO_STEMS_"))}
    return {**base, **extra}


@dataclass
class Replica:
    port: int
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.log, "ab") as sink:
            self.process = subprocess.Popen(
                [*own_command(), "--transport", "http", "--hosted", "--port", str(self.port)],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, env=self.env)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"replica on {self.port} not ready: {self.log.read_text()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def sandbox_process(state: Path, log: Path) -> Iterator[str]:
    env = _clean_env(SUNO_STEMS_SANDBOX_DIR=str(state), SUNO_STEMS_SANDBOX_QUEUE_SECONDS="0.3",
                     SUNO_STEMS_SANDBOX_STEMS_SECONDS="2.5")
    with open(log, "w") as sink:
        process = subprocess.Popen([*own_command(), "sandbox", "--port", "0"], stdout=subprocess.PIPE,
                                   stderr=sink, text=True, env=env)
    try:
        assert process.stdout is not None
        url = ""
        deadline = time.monotonic() + 30
        while not url and time.monotonic() < deadline:
            line = process.stdout.readline()
            assert line, f"the sandbox ended: {log.read_text()}"
            if "listening on" in line:
                url = line.strip().rsplit(" ", 1)[-1]
        assert url, "the sandbox printed no URL"
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@dataclass
class Outcomes:
    ok: int = 0
    tool_errors: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)


# What a client sees when a replica dies under a request: the balancer's 502/503/504 (the SDK's client reports an
# HTTP error status as "Server returned an error response"), a broken connection, or a stream cut short.
CLEAR_TRANSPORT = ("502", "503", "504", "Bad Gateway", "Service Unavailable", "Gateway Timeout", "shutting down",
                   "Connection", "connection", "closed", "Timeout", "timed out", "RemoteProtocolError",
                   "ReadError", "incomplete", "stream ended without a response",
                   "Server returned an error response")


async def call(url: str, key: str, mode: str, name: str, arguments: dict[str, Any],
               outcomes: Outcomes) -> CallToolResult:
    """One tool call in a fresh client (stateless: every request may land on another replica), repeated with
    the same arguments after a transport error, as a client whose connection broke should."""
    last = ""
    for _ in range(ATTEMPTS):
        try:
            client = Client(streamable_http_client(
                f"{url}/mcp", http_client=httpx2.AsyncClient(headers={"X-Apiframe-Key": key}, timeout=30)),
                mode=mode)
            async with client:
                result = await client.call_tool(name, arguments)
        except Exception as exc:
            last = f"{type(exc).__name__}: {exc!r}"
            if any(word in last for word in CLEAR_TRANSPORT):
                outcomes.transport_errors.append(last[:300])
            else:
                outcomes.unclear.append(last[:500])
            await anyio.sleep(0.3)
            continue
        outcomes.results.append(str(result.structured_content or result.content))
        if result.is_error:
            text = " ".join(getattr(c, "text", "") for c in result.content)
            (outcomes.tool_errors if text and "Error executing tool" not in text else outcomes.unclear).append(text)
        else:
            outcomes.ok += 1
        return result
    raise AssertionError(f"{name} for {key[-6:]} failed {ATTEMPTS} times; last: {last}")


async def one_user(url: str, n: int, outcomes: Outcomes, jobs: dict[int, str]) -> None:
    key, mode = key_of(n), ERAS[n % 2]
    song = seeded_id(key, "Midnight Harbor")
    listed = ok(await call(url, key, mode, "list_tracks", {"limit": 3}, outcomes))
    assert listed["tracks"] and all(t["job_id"] != seeded_id(key_of(n + 1), "Midnight Harbor")
                                    for t in listed["tracks"])
    split = {"parent_job_id": song, "index": 1, "wait_seconds": 1}
    job = ok(await call(url, key, mode, "split_stems", split, outcomes))
    jobs[n] = job["job_id"]
    for _ in range(30):
        if job["done"]:
            break
        job = ok(await call(url, key, mode, "get_job", {"job_id": job["job_id"], "wait_seconds": 2}, outcomes))
    assert job["status"] == "COMPLETED", job
    again = ok(await call(url, key, mode, "split_stems", split, outcomes))  # a repeat: the same job, free
    assert again["job_id"] == job["job_id"] and again["reused"] is True
    mine = ok(await call(url, key, mode, "list_tracks", {"job_id": song}, outcomes))
    assert mine["tracks"][0]["job_id"] == song


async def others_jobs_are_not_found(url: str, jobs: dict[int, str], outcomes: Outcomes) -> list[str]:
    leaks = []
    for n in range(USERS):
        other = (n + 1) % USERS
        result = await call(url, key_of(n), ERAS[n % 2], "get_job", {"job_id": jobs[other]}, outcomes)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        if not (result.is_error and "no job" in text):
            leaks.append(f"user{n} read user{other}'s job: {text[:200]}")
    return leaks


def credits_of(sandbox_url: str, key: str) -> tuple[int, int]:
    """(credits left, jobs in the account) as the sandbox sees them."""
    me = httpx.get(f"{sandbox_url}/v2/me", headers={"X-API-Key": key}, timeout=10).json()
    jobs = httpx.get(f"{sandbox_url}/v2/jobs", params={"limit": 100}, headers={"X-API-Key": key}, timeout=10).json()
    return int(me["team"]["credits"]), len(jobs["jobs"])


async def test_twelve_users_through_haproxy_over_three_replicas_while_one_is_killed_and_restarted(
        tmp_path: Path) -> None:
    with ExitStack() as stack:
        sandbox_url = stack.enter_context(sandbox_process(tmp_path / "sandbox-state", tmp_path / "sandbox.log"))
        before = {n: credits_of(sandbox_url, key_of(n)) for n in range(USERS)}
        env = _clean_env(APIFRAME_BASE_URL=sandbox_url, SUNO_STEMS_MAX_WAIT="10")
        replicas = [Replica(free_port(), env, tmp_path / f"replica{i}.log") for i in range(REPLICAS)]
        for replica in replicas:
            stack.callback(replica.stop)
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        balancer = stack.enter_context(LocalLoadBalancer([r.port for r in replicas], workdir=tmp_path / "lb"))
        balancer.wait_for_states({f"r{i + 1}": "UP" for i in range(REPLICAS)}, timeout=15)

        outcomes = Outcomes()
        jobs: dict[int, str] = {}
        victim = replicas[1]

        async def chaos() -> None:
            while outcomes.ok < USERS + 2:  # every user is under way, most of them waiting on their split
                await anyio.sleep(0.05)
            await anyio.sleep(0.2)
            victim.kill()
            await anyio.sleep(2.0)
            await anyio.to_thread.run_sync(victim.start)
            await anyio.to_thread.run_sync(victim.wait_ready)

        with anyio.fail_after(RUN_BOUND):
            async with anyio.create_task_group() as group:
                group.start_soon(chaos)
                for n in range(USERS):
                    group.start_soon(one_user, balancer.url, n, outcomes, jobs)
            leaks = await others_jobs_are_not_found(balancer.url, jobs, outcomes)
        after = {n: credits_of(sandbox_url, key_of(n)) for n in range(USERS)}
        haproxy_log = balancer.log_text()
        served = {line.split()[3] for line in haproxy_log.splitlines() if "mcp_replicas/r" in line}

    logs = {path.name: path.read_text(errors="replace") for path in tmp_path.rglob("*.log")}
    logs["haproxy.log"] = haproxy_log
    assert not outcomes.unclear, outcomes.unclear
    assert not leaks, leaks
    charged = {n: before[n][0] - after[n][0] for n in range(USERS)}
    assert all(c == SPLIT_PRICE for c in charged.values()), f"credits charged per user: {charged}"
    assert all(after[n][1] - before[n][1] == 1 for n in range(USERS)), f"jobs made per user: {(before, after)}"
    assert victim.starts == 2 and {f"mcp_replicas/r{i + 1}" for i in range(REPLICAS)} <= served, served
    for n in range(USERS):
        key = key_of(n)
        found = [name for name, text in logs.items() if key in text]
        assert not found, f"{key} appears in {found}"
        assert not any(key in result for result in outcomes.results), f"{key} appears in a result"
    print(f"calls ok: {outcomes.ok}, tool errors: {len(outcomes.tool_errors)}, "
          f"transport errors retried: {len(outcomes.transport_errors)}")
