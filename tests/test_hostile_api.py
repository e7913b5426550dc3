"""apiframe at its worst: huge, deep or mistyped answers, odd statuses, echoed keys, read-after-write lags.

The first half checks that the sandbox answers each fault as asked; the second drives the real server through
an MCP client against it: once the POST of a split has succeeded, every outcome names the job id (a result,
or a ToolError saying to call get_job with it), never a bare "Error executing tool".
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from suno_stems_mcp.sandbox import DEMO_KEY, Sandbox, SandboxConfig, ThreadedSandbox
from suno_stems_mcp.sandbox.faults import Fault

from .support import SONG, connected, ok, settings_for, text

pytestmark = pytest.mark.anyio

ACTION = "POST /v2/music/suno/action"
JOB = "GET /v2/jobs/*"
MIB = 1 << 20


def _api(running: ThreadedSandbox) -> httpx.Client:
    return httpx.Client(base_url=running.url, headers={"X-API-Key": DEMO_KEY}, timeout=10)


def _split(api: httpx.Client, key: str | None = None) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else {}
    answer = api.post("/v2/music/suno/action", json={"parentJobId": SONG, "action": "stems", "index": 1},
                      headers=headers)
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


# --- the sandbox answers each fault as asked ---------------------------------------------------------------


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_huge_body_is_streamed_as_long_as_the_client_reads(live_sandbox: ThreadedSandbox,
                                                             declare_length: bool) -> None:
    live_sandbox.sandbox.inject("GET /v2/jobs", body="huge", declare_length=declare_length)
    with _api(live_sandbox) as api, api.stream("GET", "/v2/jobs") as answer:
        assert answer.status_code == 200
        assert (answer.headers.get("content-length") == str(300 * MIB)) is declare_length
        read = 0
        for chunk in answer.iter_bytes():
            read += len(chunk)
            if read > 5 * MIB:
                break
        assert read > 5 * MIB
    with _api(live_sandbox) as api:  # the sandbox let go of it and answers the next call
        assert api.get("/v2/jobs").status_code == 200


def test_a_deep_body_nests_past_any_recursive_reader(live_sandbox: ThreadedSandbox) -> None:
    live_sandbox.sandbox.inject(JOB, body="deep", depth=100_000)
    with _api(live_sandbox) as api:
        body = api.get(f"/v2/jobs/{SONG}").content
    assert body == b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(body)


def test_patches_give_fields_the_wrong_types(live_sandbox: ThreadedSandbox) -> None:
    live_sandbox.sandbox.inject(JOB, patch={"expired": None, "progress": "50"},
                                track_patch={"audioUrl": 5, "title": {"text": "x"}})
    with _api(live_sandbox) as api:
        job = api.get(f"/v2/jobs/{SONG}").json()
        again = api.get(f"/v2/jobs/{SONG}").json()
    assert job["expired"] is None and job["progress"] == "50"
    assert all(t["audioUrl"] == 5 and t["title"] == {"text": "x"} for t in job["result"]["tracks"])
    assert job["id"] == SONG and job["createdAt"] == again["createdAt"]  # the rest is the real answer
    assert again["expired"] is False and isinstance(again["result"]["tracks"][0]["audioUrl"], str)


def test_statuses_in_lower_case_or_unknown_and_duplicate_tracks(live_sandbox: ThreadedSandbox) -> None:
    sandbox = live_sandbox.sandbox
    sandbox.inject(JOB, lowercase_status=True)
    sandbox.inject(JOB, patch={"status": "ARCHIVED"})
    sandbox.inject(JOB, duplicate_tracks=True)
    with _api(live_sandbox) as api:
        assert api.get(f"/v2/jobs/{SONG}").json()["status"] == "completed"
        assert api.get(f"/v2/jobs/{SONG}").json()["status"] == "ARCHIVED"
        ids = [t["id"] for t in api.get(f"/v2/jobs/{SONG}").json()["result"]["tracks"]]
    assert len(ids) == 4 and len(set(ids)) == 2


def test_patches_reach_every_job_of_a_page(live_sandbox: ThreadedSandbox) -> None:
    live_sandbox.sandbox.inject("GET /v2/jobs", patch={"progress": "50"})
    with _api(live_sandbox) as api:
        jobs = api.get("/v2/jobs").json()["jobs"]
    assert jobs and all(job["progress"] == "50" for job in jobs)


@pytest.mark.parametrize(("how", "expected"), [("whole", DEMO_KEY), ("partial", DEMO_KEY[:-1]),
                                                ("upper", DEMO_KEY.upper())])
def test_an_echoed_key_in_an_error_body_and_in_a_job(live_sandbox: ThreadedSandbox, how: str,
                                                     expected: str) -> None:
    live_sandbox.sandbox.inject(JOB, status=400, echo_key=how)
    live_sandbox.sandbox.inject(JOB, echo_key=how)
    with _api(live_sandbox) as api:
        refused = api.get(f"/v2/jobs/{SONG}")
        job = api.get(f"/v2/jobs/{SONG}").json()
    assert refused.status_code == 400
    body = refused.json()
    assert expected in body["error"] and expected in body["message"]
    assert expected in job["error"] and all(expected in t["title"] for t in job["result"]["tracks"])
    if how == "partial":
        assert DEMO_KEY not in refused.text


def test_an_unknown_echo_is_refused() -> None:
    with pytest.raises(ValueError, match="echo_key"):
        Fault(JOB, echo_key="half")  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [404, 400, 403])
def test_a_read_after_write_lag_hides_only_new_jobs(live_sandbox: ThreadedSandbox, status: int) -> None:
    fault = live_sandbox.sandbox.inject(JOB, status=status, times=2, new_jobs_only=True)
    with _api(live_sandbox) as api:
        assert api.get(f"/v2/jobs/{SONG}").status_code == 200  # an older job: not hidden, the rule not spent
        job_id = _split(api)["jobId"]
        assert [api.get(f"/v2/jobs/{job_id}").status_code for _ in range(3)] == [status, status, 200]
    assert fault.hits == 2


def test_a_cached_replay_answers_the_first_answer(live_sandbox: ThreadedSandbox) -> None:
    sandbox = live_sandbox.sandbox
    sandbox.plan_next(outcome="FAILED", queued_for=0, runs_for=0)
    with _api(live_sandbox) as api:
        first = _split(api, "key-1")
        assert api.get(f"/v2/jobs/{first['jobId']}").json()["status"] == "FAILED"
        assert _split(api, "key-1") == {"jobId": first["jobId"], "status": "FAILED"}  # the documented replay
        sandbox.inject(ACTION, cached_replay=True, times=10)
        charged = sandbox.counters.credits_charged
        assert _split(api, "key-1") == {"jobId": first["jobId"], "status": "QUEUED"}
        assert sandbox.counters.credits_charged == charged
        fresh = _split(api, "key-2")  # a new key is handled for real
        assert fresh["jobId"] != first["jobId"] and sandbox.counters.credits_charged == charged + 11


@pytest.mark.parametrize("stems_input", [True, False])
async def test_stems_jobs_may_answer_without_input(stems_input: bool) -> None:
    sandbox = Sandbox(SandboxConfig.fast(stems_input=stems_input))
    transport = httpx.ASGITransport(app=sandbox.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test",
                                 headers={"X-API-Key": DEMO_KEY}) as api:
        made = await api.post("/v2/music/suno/action", json={"parentJobId": SONG, "action": "stems", "index": 1})
        stems = (await api.get(f"/v2/jobs/{made.json()['jobId']}")).json()
        song = (await api.get(f"/v2/jobs/{SONG}")).json()
    assert ("input" in stems) is stems_input
    assert "input" in song  # a song job keeps its input either way


# --- the server, once a split was submitted, always names the job --------------------------------------------


def _names_the_job(result: Any, job_id: str) -> None:
    """A result for the job, or a ToolError naming it and saying to call get_job; never a bare crash."""
    message = text(result)
    assert "Error executing tool" not in message, message
    if result.is_error:
        assert job_id in message and "get_job" in message, message
    else:
        assert result.structured_content["job_id"] == job_id


def _the_new_job(running: ThreadedSandbox) -> str:
    jobs = [j for j in running.sandbox.store.jobs.values() if j.kind == "stems" and j.input
            and j.input.get("trackId")]
    assert len(jobs) == 1, [j.id for j in jobs]
    return jobs[0].id


FIRST_POLL_FAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "a CDN redirect loop": ("GET /cdn/audio/*", {"redirect": "loop", "times": 100}),
    "a corrupt gzip audio body": ("GET /cdn/audio/*", {"body": "gzip-corrupt", "times": 100}),
    "a track field of the wrong type": (JOB, {"track_patch": {"audioUrl": 5, "title": {"a": 1},
                                                              "duration": "2"}, "times": 100}),
    "deep JSON on the first poll": (JOB, {"body": "deep", "new_jobs_only": True, "times": 100}),
    "expired: null": (JOB, {"patch": {"expired": None}, "new_jobs_only": True, "times": 100}),
    "a 404 on the first poll": (JOB, {"status": 404, "new_jobs_only": True}),
    "a 400 on the first poll": (JOB, {"status": 400, "new_jobs_only": True}),
    "a 403 on the first poll": (JOB, {"status": 403, "new_jobs_only": True}),
    "a huge answer on the first poll": (JOB, {"body": "huge", "new_jobs_only": True, "times": 100}),
    "a huge chunked answer on the first poll": (JOB, {"body": "huge", "declare_length": False,
                                                     "new_jobs_only": True, "times": 100}),
    "the key echoed in the job": (JOB, {"echo_key": "upper", "new_jobs_only": True, "times": 100}),
}


@pytest.mark.parametrize("fault", list(FIRST_POLL_FAULTS), ids=list(FIRST_POLL_FAULTS))
async def test_after_the_post_every_outcome_names_the_job(live_sandbox: ThreadedSandbox, tmp_path: Path,
                                                          fault: str) -> None:
    route, rule = FIRST_POLL_FAULTS[fault]
    live_sandbox.sandbox.inject(route, **rule)
    async with connected(settings_for(live_sandbox, tmp_path, max_wait=6)) as client:
        result = await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 5})
        job_id = _the_new_job(live_sandbox)
        _names_the_job(result, job_id)
        if "404" in fault:
            assert "no such job" not in text(result).lower() and "there is no job" not in text(result).lower()
        live_sandbox.sandbox.faults.clear()
        again = ok(await client.call_tool("get_job", {"job_id": job_id, "wait_seconds": 5}))
    assert again["job_id"] == job_id and again["status"] == "COMPLETED"
    assert live_sandbox.sandbox.counters.stems_jobs_created == 1


@pytest.mark.parametrize("status", [404, 400, 403])
async def test_a_single_refusal_on_the_first_read_is_a_lag_not_an_answer(live_sandbox: ThreadedSandbox,
                                                                         tmp_path: Path, status: int) -> None:
    live_sandbox.sandbox.inject(JOB, status=status, new_jobs_only=True)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 8}))
    assert job["status"] == "COMPLETED" and job["reused"] is False
    assert job["job_id"] == _the_new_job(live_sandbox)


# --- wording and loops ---------------------------------------------------------------------------------------


async def test_a_failed_split_says_refunded_and_how_to_retry(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.plan_next(outcome="FAILED", error="Separation failed.", kinds=("stems",))
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 8}))
        read = ok(await client.call_tool("get_job", {"job_id": job["job_id"]}))
    for seen in (job, read):
        assert seen["status"] == "FAILED"
        step = seen["next_step"]
        assert "refunded" in step and "split_stems again" in step, step
        assert "cannot remake" not in step, step


async def test_only_a_failed_song_says_it_cannot_be_remade(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    from .support import FAILED

    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        song = ok(await client.call_tool("get_job", {"job_id": FAILED}))
    assert song["status"] == "FAILED" and "cannot remake a song" in song["next_step"]


async def test_a_lowercase_final_status_is_final(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    live_sandbox.sandbox.inject(JOB, lowercase_status=True, times=1000)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 8}))
    assert job["done"] is True and job["status"].upper() == "COMPLETED"
    assert all(track["file"] for track in job["tracks"])
    assert "get_job" not in job["next_step"], job["next_step"]


async def test_an_unknown_status_is_reported_as_it_is_and_ends_the_loop(live_sandbox: ThreadedSandbox,
                                                                        tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        first = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 0}))
        live_sandbox.sandbox.inject(JOB, patch={"status": "ARCHIVED"}, times=1000)
        started = len(live_sandbox.sandbox.requests("GET", f"/v2/jobs/{first['job_id']}"))
        job = ok(await client.call_tool("get_job", {"job_id": first["job_id"], "wait_seconds": 8}))
        polls = len(live_sandbox.sandbox.requests("GET", f"/v2/jobs/{first['job_id']}")) - started
    assert job["status"] == "ARCHIVED" and polls == 1  # nothing to wait for
    step = job["next_step"]
    assert "ARCHIVED" in step and "Call get_job" not in step, step


async def test_duplicate_track_ids_do_not_ask_to_finish_saving_forever(live_sandbox: ThreadedSandbox,
                                                                       tmp_path: Path) -> None:
    live_sandbox.sandbox.inject(JOB, duplicate_tracks=True, times=1000)
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 8}))
        again = ok(await client.call_tool("get_job", {"job_id": job["job_id"]}))
    for seen in (job, again):
        assert [t["id"] for t in seen["tracks"]] == ["vocals", "instrumental"]
        assert all(t["file"] for t in seen["tracks"])
        assert "continue saving" not in seen["next_step"] and "Done: the files are saved" in seen["next_step"]


def test_a_unique_job_id_per_run() -> None:  # guards _the_new_job's premise: seeds hold no trackId stems job
    sandbox = Sandbox(SandboxConfig.fast())
    assert not [j for j in sandbox.store.jobs.values() if j.kind == "stems" and j.input and j.input.get("trackId")]
    assert uuid.UUID(SONG)
