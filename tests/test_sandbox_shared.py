"""Sandbox processes share one state on disk and one port: a job made through one is read through any other,
and its audio URLs keep answering while any of them runs."""

from __future__ import annotations

import http.server
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from suno_stems_mcp.errors import SettingsError
from suno_stems_mcp.sandbox import DEMO_KEY, Sandbox, SandboxConfig, SharedSandbox, ThreadedSandbox, reset
from suno_stems_mcp.sandbox.persistence import FILE_NAME, SharedStore
from suno_stems_mcp.sandbox.seed import demo_id
from suno_stems_mcp.sandbox.shared import STALE_SECONDS, default_state_dir
from suno_stems_mcp.sandbox.store import Account

from .conftest import FakeClock

SONG = demo_id("Midnight Harbor")
SPLIT = {"parentJobId": SONG, "action": "stems", "index": 1}
DEMO = {"X-API-Key": DEMO_KEY}
SEEDED = 6  # jobs every account starts with
FAST_ENV = {"SUNO_STEMS_SANDBOX_STEMS_SECONDS": "0.3", "SUNO_STEMS_SANDBOX_QUEUE_SECONDS": "0.05"}


@asynccontextmanager
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://s.test", headers=DEMO) as c:
        yield c


def shared(state_dir: Path, clock: FakeClock | None = None, **config: Any) -> Sandbox:
    """A sandbox on the shared state of `state_dir`: its own connection and copy, as another process has."""
    return Sandbox(SandboxConfig.fast(**({"clock": clock} if clock else {}), **config), state_dir=state_dir)


def shared_store(sandbox: Sandbox) -> SharedStore:
    assert isinstance(sandbox.store, SharedStore)
    return sandbox.store


# two processes' views of one state, in one test process ----------------------------------------------------


@pytest.mark.anyio
async def test_a_job_made_through_one_is_read_through_another(tmp_path: Path, clock: FakeClock) -> None:
    one, other = shared(tmp_path, clock), shared(tmp_path, clock)
    async with client(one) as a, client(other) as b:
        job_id = (await a.post("/v2/music/suno/action", json=SPLIT)).json()["jobId"]
        clock.advance(60)
        seen_by_a, seen_by_b = (await a.get(f"/v2/jobs/{job_id}")).json(), (await b.get(f"/v2/jobs/{job_id}")).json()
        assert seen_by_b == seen_by_a and seen_by_b["status"] == "COMPLETED"
        assert job_id in {job["id"] for job in (await b.get("/v2/jobs")).json()["jobs"]}
        assert (await b.get("/v2/me")).json()["team"]["credits"] == 500 - 11
        audio = await b.get(seen_by_b["result"]["tracks"][0]["audioUrl"].removeprefix("http://s.test"))
        assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert len(shared(tmp_path, clock).store.jobs) == SEEDED + 1


@pytest.mark.anyio
async def test_an_idempotency_key_replays_in_another_process(tmp_path: Path) -> None:
    one, other = shared(tmp_path), shared(tmp_path)
    async with client(one) as a, client(other) as b:
        first = await a.post("/v2/music/suno/action", json=SPLIT, headers={"Idempotency-Key": "k1"})
        again = await b.post("/v2/music/suno/action", json=SPLIT, headers={"Idempotency-Key": "k1"})
        assert again.json()["jobId"] == first.json()["jobId"]
        different = await b.post("/v2/music/suno/action", json={**SPLIT, "index": 2}, headers={"Idempotency-Key": "k1"})
        assert different.status_code == 409
        assert (await a.get("/v2/me")).json()["team"]["credits"] == 500 - 11


def test_racing_replays_through_two_servers_make_one_job(tmp_path: Path) -> None:
    with ThreadedSandbox(shared(tmp_path)) as a, ThreadedSandbox(shared(tmp_path)) as b:
        def post(url: str) -> str:
            response = httpx.post(f"{url}/v2/music/suno/action", json=SPLIT,
                                  headers={**DEMO, "Idempotency-Key": "race"}, timeout=30)
            assert response.status_code == 202, response.text
            job_id: str = response.json()["jobId"]
            return job_id

        with ThreadPoolExecutor(8) as pool:
            made = set(pool.map(post, [a.url, b.url] * 8))
        assert len(made) == 1
        assert httpx.get(f"{b.url}/v2/me", headers=DEMO).json()["team"]["credits"] == 500 - 11


WRITER = """
import sys
from pathlib import Path
from starlette.testclient import TestClient
from suno_stems_mcp.sandbox import Sandbox, SandboxConfig
sandbox = Sandbox(SandboxConfig.fast(), state_dir=Path(sys.argv[1]))
with TestClient(sandbox.app) as api:
    for n in range(int(sys.argv[2])):
        answer = api.post("/v2/music/generate", json={"model": "suno", "prompt": f"song {n}"},
                          headers={"X-API-Key": "afk_sandbox_race"})
        assert answer.status_code == 202, answer.text
"""


@pytest.mark.slow
def test_concurrent_processes_lose_no_write(tmp_path: Path) -> None:
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), "15"]) for _ in range(3)]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
    store = shared(tmp_path).store
    account = store.account("afk_sandbox_race")
    assert account is not None and account.credits == 500 - 45 * 11
    mine = [job for job in store.jobs.values() if job.owner == "afk_sandbox_race"]
    assert len(mine) == SEEDED + 45  # seeded once, though three processes opened the account at once


@pytest.mark.anyio
async def test_a_reset_is_seen_by_running_processes(tmp_path: Path) -> None:
    one = shared(tmp_path)
    async with client(one) as a:
        job_id = (await a.post("/v2/music/suno/action", json=SPLIT)).json()["jobId"]
        said = reset(tmp_path)
        assert str(tmp_path) in said and "afresh" in said
        assert (await a.get(f"/v2/jobs/{job_id}")).status_code == 404
        assert (await a.get("/v2/me")).json()["team"]["credits"] == 500
        assert (await a.get(f"/v2/jobs/{SONG}")).json()["status"] == "COMPLETED"  # seeded again


@pytest.mark.anyio
async def test_a_jobs_timing_is_fixed_when_it_is_made(tmp_path: Path, clock: FakeClock) -> None:
    quick, slow = shared(tmp_path, clock), shared(tmp_path, clock, stems_seconds=40.0)
    shared_store(quick).share_timing()
    async with client(quick) as a, client(slow) as b:
        early = (await a.post("/v2/music/suno/action", json=SPLIT)).json()["jobId"]
        shared_store(slow).share_timing()  # a process started later, with other settings
        late = (await a.post("/v2/music/suno/action", json={**SPLIT, "index": 2})).json()["jobId"]
        clock.advance(5)
        for api in (a, b):
            assert (await api.get(f"/v2/jobs/{early}")).json()["status"] == "COMPLETED"
            assert (await api.get(f"/v2/jobs/{late}")).json()["status"] == "PROCESSING"
        clock.advance(40)
        assert (await b.get(f"/v2/jobs/{late}")).json()["status"] == "COMPLETED"


def test_what_two_processes_change_in_one_job_is_merged(tmp_path: Path) -> None:
    one, other = shared(tmp_path, seed_demo_data=False), shared(tmp_path, seed_demo_data=False)
    account = one.store.account(DEMO_KEY)
    assert account is not None
    job = one.store.create_job(account, kind="stems", input=None, tracks=[], webhook_url="https://hook.invalid")
    job.webhook_sent.add("progress:25")  # as the webhook task does, between transactions
    other.store.cancel(job.id)  # refunds it, in the other process
    with one.store.lock:
        pass
    merged = shared(tmp_path).store.jobs[job.id]
    assert merged.webhook_sent == {"progress:25"} and merged.cancelled_at is not None and merged.refunded
    assert shared(tmp_path).credits() == 500


def test_the_state_lives_in_a_per_user_folder() -> None:
    home = Path.home()
    assert default_state_dir({}, "linux") == home / ".local/state/suno-stems-mcp/sandbox"
    assert default_state_dir({"XDG_STATE_HOME": "/x/state"}, "darwin") == Path("/x/state/suno-stems-mcp/sandbox")
    assert default_state_dir({"XDG_STATE_HOME": "relative"}, "linux") == home / ".local/state/suno-stems-mcp/sandbox"
    assert default_state_dir({"LOCALAPPDATA": "C:/Users/u/AppData/Local"}, "win32") == Path(
        "C:/Users/u/AppData/Local/suno-stems-mcp/sandbox")
    assert default_state_dir({"SUNO_STEMS_SANDBOX_DIR": "/elsewhere", "XDG_STATE_HOME": "/x"}, "linux") == Path(
        "/elsewhere")


def test_an_unusable_folder_is_a_settings_error_naming_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(SettingsError) as caught:
        SharedSandbox.start(blocker / "sandbox")
    assert "SUNO_STEMS_SANDBOX_DIR" in str(caught.value) and str(blocker) in str(caught.value)


def test_a_state_from_a_newer_version_is_refused_with_the_way_out(tmp_path: Path) -> None:
    shared(tmp_path).close()
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(SettingsError) as caught:
        SharedSandbox.start(tmp_path)
    assert "newer" in str(caught.value) and "--reset" in str(caught.value)


def test_a_state_nobody_touched_for_long_starts_afresh(tmp_path: Path) -> None:
    with SharedSandbox.start(tmp_path, SandboxConfig.fast()) as first:
        job_id = httpx.post(f"{first.url}/v2/music/suno/action", json=SPLIT, headers=DEMO).json()["jobId"]
    with closing(sqlite3.connect(tmp_path / FILE_NAME)) as conn, conn:
        conn.execute("UPDATE meta SET value = ? WHERE name = 'changed_at'", (str(time.time() - STALE_SECONDS - 1),))
    with SharedSandbox.start(tmp_path, SandboxConfig.fast()) as later:
        assert httpx.get(f"{later.url}/v2/jobs/{job_id}", headers=DEMO).status_code == 404
        assert httpx.get(f"{later.url}/v2/me", headers=DEMO).json()["team"]["credits"] == 500


def test_idleness_is_wall_clock_time_whatever_a_sandboxs_clock_says(tmp_path: Path, clock: FakeClock) -> None:
    clock.advance(-2 * STALE_SECONDS)
    job = shared(tmp_path, clock).store.create_job(demo_account(tmp_path), kind="song", input=None, tracks=[])
    with SharedSandbox.start(tmp_path, SandboxConfig.fast()) as later:
        assert later.sandbox is not None and job.id in later.sandbox.store.jobs


def demo_account(state_dir: Path) -> Account:
    account = shared(state_dir).store.account(DEMO_KEY)
    assert account is not None
    return account


# real processes ----------------------------------------------------------------------------------------------

PROCESS = """
import json, os, sys
from pathlib import Path
from suno_stems_mcp.sandbox import SandboxConfig, SharedSandbox
handle = SharedSandbox.start(Path(sys.argv[1]), SandboxConfig.from_env(os.environ))
print(json.dumps({"url": handle.url, "serving": handle.serving, "pid": os.getpid()}), flush=True)
for _ in sys.stdin:
    print(json.dumps({"serving": handle.serving}), flush=True)
handle.stop()
"""


class SandboxProcess:
    """A process taking part in the shared sandbox, as a server started with --sandbox does."""

    def __init__(self, state_dir: Path, **env: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", PROCESS, str(state_dir)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env={**os.environ, **FAST_ENV, **env})
        started = self._answer()
        self.url: str = started["url"]
        self.pid: int = started["pid"]
        self.started_serving: bool = started["serving"]

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, f"the sandbox process ended ({self.process.wait(timeout=10)})"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def serving(self) -> bool:
        assert self.process.stdin is not None
        self.process.stdin.write("?\n")
        self.process.stdin.flush()
        return bool(self._answer()["serving"])

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            assert self.process.wait(timeout=30) == 0


@pytest.fixture
def processes() -> Iterator[list[SandboxProcess]]:
    started: list[SandboxProcess] = []
    yield started
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait(timeout=10)


def start(processes: list[SandboxProcess], state_dir: Path, **env: str) -> SandboxProcess:
    processes.append(SandboxProcess(state_dir, **env))
    return processes[-1]


def finished(url: str, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(f"{url}/v2/jobs/{job_id}", headers=DEMO, timeout=10).json()
        if job["status"] == "COMPLETED":
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def answers(url: str, within: float = 10.0) -> int:
    """The status of GET `url`, waiting out the moment between one server leaving and the next taking over."""
    deadline = time.monotonic() + within
    while True:
        try:
            return httpx.get(url, timeout=10).status_code
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.slow
def test_audio_urls_keep_answering_while_any_sandbox_process_runs(tmp_path: Path,
                                                                    processes: list[SandboxProcess]) -> None:
    a = start(processes, tmp_path)
    assert a.started_serving
    job_id = httpx.post(f"{a.url}/v2/music/suno/action", json=SPLIT, headers=DEMO).json()["jobId"]
    b = start(processes, tmp_path)
    assert (b.url, b.started_serving) == (a.url, False)
    audio_url = finished(b.url, job_id)["result"]["tracks"][0]["audioUrl"]
    assert audio_url.startswith(a.url)
    a.stop()
    assert answers(audio_url) == 200
    assert b.serving()
    c = start(processes, tmp_path)
    assert (c.url, c.started_serving) == (a.url, False)
    b.stop()
    assert answers(audio_url) == 200 and c.serving()
    assert finished(c.url, job_id)["result"]["tracks"][0]["audioUrl"] == audio_url
    c.stop()


@pytest.mark.slow
def test_processes_starting_at_once_agree_on_one_server(tmp_path: Path, processes: list[SandboxProcess]) -> None:
    with ThreadPoolExecutor(3) as pool:
        started = list(pool.map(lambda _: start(processes, tmp_path), range(3)))
    assert len({process.url for process in started}) == 1
    assert sorted(process.started_serving for process in started) == [False, False, True]
    assert httpx.get(f"{started[0].url}/v2/jobs/{SONG}", headers=DEMO).json()["status"] == "COMPLETED"


@pytest.mark.slow
def test_a_process_started_after_all_others_stopped_serves_the_same_state_and_port(
        tmp_path: Path, processes: list[SandboxProcess]) -> None:
    a = start(processes, tmp_path)
    job_id = httpx.post(f"{a.url}/v2/music/suno/action", json=SPLIT, headers=DEMO).json()["jobId"]
    audio_url = finished(a.url, job_id)["result"]["tracks"][1]["audioUrl"]
    a.stop()
    b = start(processes, tmp_path)
    assert (b.url, b.started_serving) == (a.url, True)
    assert httpx.get(audio_url).status_code == 200
    assert httpx.get(f"{b.url}/v2/me", headers=DEMO).json()["team"]["credits"] == 500 - 11
    b.stop()


@pytest.mark.slow
def test_processes_with_different_timing_agree_on_each_jobs_life(tmp_path: Path,
                                                                   processes: list[SandboxProcess]) -> None:
    a = start(processes, tmp_path)
    quick = httpx.post(f"{a.url}/v2/music/suno/action", json=SPLIT, headers=DEMO).json()["jobId"]
    start(processes, tmp_path, SUNO_STEMS_SANDBOX_STEMS_SECONDS="45")
    slow = httpx.post(f"{a.url}/v2/music/suno/action", json={**SPLIT, "index": 2}, headers=DEMO).json()["jobId"]
    finished(a.url, quick)
    time.sleep(1)
    assert httpx.get(f"{a.url}/v2/jobs/{slow}", headers=DEMO).json()["status"] == "PROCESSING"


class _NotASandbox(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow
def test_a_port_another_program_took_is_given_up_for_a_free_one(tmp_path: Path,
                                                                processes: list[SandboxProcess]) -> None:
    a = start(processes, tmp_path)
    a.stop()
    port = int(a.url.rsplit(":", 1)[1])
    with http.server.HTTPServer(("127.0.0.1", port), _NotASandbox) as squatter:
        threading.Thread(target=squatter.serve_forever, daemon=True).start()
        b = start(processes, tmp_path)
        assert b.started_serving and b.url != a.url
        c = start(processes, tmp_path)
        assert (c.url, c.started_serving) == (b.url, False)
        squatter.shutdown()


@pytest.mark.slow
def test_a_reset_while_a_process_serves_says_which_one(tmp_path: Path, processes: list[SandboxProcess]) -> None:
    a = start(processes, tmp_path)
    job_id = httpx.post(f"{a.url}/v2/music/suno/action", json=SPLIT, headers=DEMO).json()["jobId"]
    said = reset(tmp_path)
    assert f"Process {a.pid} keeps serving it at {a.url}" in said
    assert httpx.get(f"{a.url}/v2/jobs/{job_id}", headers=DEMO).status_code == 404
    assert httpx.get(f"{a.url}/v2/jobs/{SONG}", headers=DEMO).json()["status"] == "COMPLETED"
