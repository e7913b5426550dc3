"""The sandbox behaves as apiframe's v2 API does: routes, auth, money, validation, idempotency, lifecycle."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from suno_stems_mcp.sandbox import DEMO_KEY, INACTIVE_KEY, JobPlan, Sandbox
from suno_stems_mcp.sandbox.seed import demo_id

from .conftest import FakeClock

pytestmark = pytest.mark.anyio

SONG = demo_id("Midnight Harbor")
OTHER_SONG = demo_id("Paper Satellites")
STEMS = demo_id("Midnight Harbor stems")
PROCESSING = demo_id("Neon Rain")
FAILED = demo_id("Static Bloom")


def stems_body(parent: str = SONG, **fields: object) -> dict[str, object]:
    body: dict[str, object] = {"parentJobId": parent, "action": "stems"}
    body.update(fields or {"index": 1})
    return body


async def split(api: httpx.AsyncClient, key: str | None = None, **fields: Any) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await api.post("/v2/music/suno/action", json=stems_body(**fields), headers=headers)


# routes and auth --------------------------------------------------------------------------------------


async def test_me_reports_the_demo_account_and_its_balance(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    me = (await api.get("/v2/me")).json()
    assert me["team"]["credits"] == sandbox.config.credits
    assert me["apiKey"]["prefix"] == DEMO_KEY[:8]
    assert DEMO_KEY not in str(me)


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "afk_unknown"}, {"Authorization": f"Bearer {DEMO_KEY}"}])
async def test_a_missing_or_unknown_key_is_401(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    api.headers.pop("X-API-Key")
    for method, path in [("GET", "/v2/me"), ("GET", f"/v2/jobs/{SONG}"), ("GET", "/v2/jobs"),
                         ("POST", "/v2/music/suno/action")]:
        response = await api.request(method, path, headers=headers, json=stems_body() if method == "POST" else None)
        assert response.status_code == 401, (method, path)
        assert "X-API-Key" in response.json()["error"]


async def test_an_inactive_key_is_403(api: httpx.AsyncClient) -> None:
    response = await api.get("/v2/me", headers={"X-API-Key": INACTIVE_KEY})
    assert response.status_code == 403
    assert "inactive" in response.json()["error"]


async def test_an_unknown_route_answers_in_the_frameworks_own_shape(api: httpx.AsyncClient) -> None:
    response = await api.get("/v2/nothing-here")
    assert response.status_code == 404
    assert "message" in response.json() and "error" not in response.json()


async def test_get_job_checks_the_id(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v2/jobs/not-a-uuid")).status_code == 400
    missing = await api.get(f"/v2/jobs/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json() == {"error": "Job not found."}


async def test_another_accounts_job_is_404(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.add_account("afk_test_other_account", credits=100)
    response = await api.get(f"/v2/jobs/{SONG}", headers={"X-API-Key": "afk_test_other_account"})
    assert response.status_code == 404


# seeded data ------------------------------------------------------------------------------------------


async def test_seeded_songs_stems_and_unfinished_jobs(api: httpx.AsyncClient) -> None:
    song = (await api.get(f"/v2/jobs/{SONG}")).json()
    assert song["status"] == "COMPLETED" and song["model"] == "suno" and song["progress"] == 100
    assert len(song["result"]["tracks"]) == 2
    assert all(t["imageUrl"] and t["audioUrl"] and t["duration"] > 0 for t in song["result"]["tracks"])
    assert song["result"]["tracks"][0]["id"] != song["result"]["tracks"][1]["id"]
    stems = (await api.get(f"/v2/jobs/{STEMS}")).json()
    assert [t["id"] for t in stems["result"]["tracks"]] == ["vocals", "instrumental"]
    assert (await api.get(f"/v2/jobs/{PROCESSING}")).json()["status"] == "PROCESSING"
    failed = (await api.get(f"/v2/jobs/{FAILED}")).json()
    assert failed["status"] == "FAILED" and failed["error"] and failed["creditCost"] == 0


# stems: the happy path and the lifecycle ----------------------------------------------------------------


async def test_a_split_goes_queued_processing_completed(api: httpx.AsyncClient, sandbox: Sandbox,
                                                        clock: FakeClock) -> None:
    accepted = await split(api)
    assert accepted.status_code == 202
    job_id = accepted.json()["jobId"]
    assert accepted.json()["status"] == "QUEUED"
    job = (await api.get(f"/v2/jobs/{job_id}")).json()
    assert (job["status"], job["progress"], job["result"], job["completedAt"]) == ("QUEUED", 0, None, None)
    assert job["creditCost"] == 11 and job["input"] == stems_body()
    seen = []
    clock.advance(sandbox.config.queue_seconds + 0.001)
    for _ in range(5):
        job = (await api.get(f"/v2/jobs/{job_id}")).json()
        assert job["status"] == "PROCESSING"
        seen.append(job["progress"])
        clock.advance(sandbox.config.stems_seconds / 6)
    assert seen == sorted(seen) and len(set(seen)) == 5 and all(isinstance(p, int) for p in seen)
    clock.advance(sandbox.config.stems_seconds)
    job = (await api.get(f"/v2/jobs/{job_id}")).json()
    assert job["status"] == "COMPLETED" and job["progress"] == 100 and job["completedAt"]
    assert job["expired"] is False


async def test_a_stems_result_is_exactly_as_documented(api: httpx.AsyncClient, clock: FakeClock) -> None:
    parent = (await api.get(f"/v2/jobs/{SONG}")).json()
    source = parent["result"]["tracks"][1]
    job_id = (await split(api, trackId=source["id"])).json()["jobId"]
    clock.advance(60)
    tracks = (await api.get(f"/v2/jobs/{job_id}")).json()["result"]["tracks"]
    assert [(t["id"], t["title"], t["imageUrl"], t["tags"]) for t in tracks] == [
        ("vocals", "Vocals", None, None),
        ("instrumental", "Instrumental", None, None),
    ]
    assert all(t["duration"] == source["duration"] for t in tracks)
    assert set(tracks[0]) == {"id", "audioUrl", "imageUrl", "title", "tags", "duration"}


async def test_credits_are_charged_at_submission(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    before = (await api.get("/v2/me")).json()["team"]["credits"]
    await split(api)
    assert (await api.get("/v2/me")).json()["team"]["credits"] == before - 11
    assert sandbox.counters.credits_charged == 11 and sandbox.counters.stems_jobs_created == 1


async def test_a_failed_job_is_refunded(api: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock) -> None:
    sandbox.plan_next(outcome="FAILED", error="Separation failed.")
    before = sandbox.credits()
    job_id = (await split(api)).json()["jobId"]
    assert sandbox.credits() == before - 11
    clock.advance(60)
    job = (await api.get(f"/v2/jobs/{job_id}")).json()
    assert (job["status"], job["error"], job["creditCost"]) == ("FAILED", "Separation failed.", 0)
    assert (await api.get("/v2/me")).json()["team"]["credits"] == before
    assert sandbox.counters.credits_refunded == 11


async def test_a_cancelled_job_is_refunded(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    job_id = (await split(api)).json()["jobId"]
    sandbox.store.cancel(job_id)
    job = (await api.get(f"/v2/jobs/{job_id}")).json()
    assert (job["status"], job["creditCost"]) == ("CANCELLED", 0)
    assert sandbox.credits() == sandbox.config.credits


async def test_a_job_planned_to_never_finish_keeps_processing(api: httpx.AsyncClient, sandbox: Sandbox,
                                                              clock: FakeClock) -> None:
    sandbox.plan_next(outcome="NEVER")
    job_id = (await split(api)).json()["jobId"]
    clock.advance(10_000)
    job = (await api.get(f"/v2/jobs/{job_id}")).json()
    assert job["status"] == "PROCESSING" and 1 <= job["progress"] <= 99


async def test_not_enough_credits_is_402_with_the_numbers(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.add_account("afk_test_poor", credits=10, name="Poor")
    response = await api.post("/v2/music/generate", json={"model": "suno", "prompt": "a song"},
                              headers={"X-API-Key": "afk_test_poor"})
    assert response.status_code == 402
    assert response.json() == {"error": "Insufficient credits", "creditsRequired": 11, "creditsAvailable": 10}
    assert sandbox.counters.jobs_created == 0


# follow-up rules ------------------------------------------------------------------------------------------


async def test_a_stems_job_cannot_be_a_parent(api: httpx.AsyncClient) -> None:
    response = await split(api, parent=STEMS)
    assert response.status_code == 409 and "stems" in response.json()["error"]


@pytest.mark.parametrize("parent", [PROCESSING, FAILED])
async def test_the_parent_must_be_completed(api: httpx.AsyncClient, parent: str) -> None:
    response = await split(api, parent=parent)
    assert response.status_code == 409 and "COMPLETED" in response.json()["error"]


async def test_an_unknown_parent_is_404(api: httpx.AsyncClient) -> None:
    assert (await split(api, parent=str(uuid.uuid4()))).status_code == 404


async def test_an_unknown_track_id_is_a_validation_error(api: httpx.AsyncClient) -> None:
    response = await split(api, trackId="no-such-clip")
    assert response.status_code == 400 and "trackId" in response.json()["details"]


@pytest.mark.parametrize("action", ["extend", "cover", "add_vocals"])
async def test_song_actions_make_two_new_splittable_tracks(api: httpx.AsyncClient, clock: FakeClock,
                                                           action: str) -> None:
    body = {"parentJobId": SONG, "action": action, "index": 2}
    if action == "add_vocals":
        body["prompt"] = "la la la"
    job_id = (await api.post("/v2/music/suno/action", json=body)).json()["jobId"]
    clock.advance(60)
    tracks = (await api.get(f"/v2/jobs/{job_id}")).json()["result"]["tracks"]
    assert len(tracks) == 2 and all(t["id"] not in ("vocals", "instrumental") for t in tracks)
    assert (await split(api, parent=job_id)).status_code == 202


async def test_generate_makes_a_two_track_song(api: httpx.AsyncClient, clock: FakeClock) -> None:
    body = {"model": "suno", "prompt": "a sea shanty about debugging", "sunoParams": {"title": "Heisenbug"}}
    response = await api.post("/v2/music/generate", json=body)
    assert response.status_code == 202
    clock.advance(60)
    job = (await api.get(f"/v2/jobs/{response.json()['jobId']}")).json()
    assert [t["title"] for t in job["result"]["tracks"]] == ["Heisenbug", "Heisenbug"]


# validation -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"parentJobId": SONG, "action": "stems", "index": 3}, "index"),
        ({"parentJobId": SONG, "action": "stems", "index": "1"}, "index"),
        ({"parentJobId": SONG, "action": "stems", "trackId": ""}, "trackId"),
        ({"parentJobId": SONG, "action": "stems", "trackId": "x" * 201}, "trackId"),
        ({"parentJobId": "nope", "action": "stems", "index": 1}, "parentJobId"),
        ({"action": "stems", "index": 1}, "parentJobId"),
        ({"parentJobId": SONG, "action": "stems", "index": 1, "title": "x"}, "title"),
        ({"parentJobId": SONG, "action": "stems", "index": 1, "webhookUrl": "ftp://x.example"}, "webhookUrl"),
        ({"parentJobId": SONG, "action": "stems", "index": 1, "webhookUrl": "http://hooks.example.com/x"},
         "webhookUrl"),
        ({"parentJobId": SONG, "action": "stems", "index": 1, "webhookUrl": "https://h.example",
          "webhookEvents": []}, "webhookEvents"),
        ({"parentJobId": SONG, "action": "stems", "index": 1, "webhookUrl": "https://h.example",
          "webhookEvents": ["completed", "done"]}, "webhookEvents.1"),
        ({"parentJobId": SONG, "action": "stems"}, ""),
        ({"parentJobId": SONG, "action": "stems", "index": 1, "trackId": "abc"}, ""),
        ({"parentJobId": SONG, "action": "remix", "index": 1}, "action"),
        ([1, 2, 3], ""),
    ],
)
async def test_invalid_bodies_are_400_with_details_by_json_path(api: httpx.AsyncClient, sandbox: Sandbox,
                                                                 body: object, path: str) -> None:
    response = await api.post("/v2/music/suno/action", json=body)
    assert response.status_code == 400
    assert path in response.json()["details"], response.json()
    assert sandbox.counters.jobs_created == 0


async def test_a_body_that_is_not_json_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post("/v2/music/suno/action", content=b"{oops", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "Invalid JSON body"


async def test_generate_validates_its_body(api: httpx.AsyncClient) -> None:
    response = await api.post("/v2/music/generate", json={"model": "suno", "prompt": "", "sunoParams": {"x": 1}})
    assert set(response.json()["details"]) == {"prompt", "sunoParams.x"}


# idempotency -----------------------------------------------------------------------------------------------


async def test_a_replayed_key_returns_the_original_job_and_charges_nothing(api: httpx.AsyncClient,
                                                                           sandbox: Sandbox,
                                                                           clock: FakeClock) -> None:
    first = (await split(api, key="k-1")).json()
    clock.advance(sandbox.config.queue_seconds + 0.01)
    again = (await split(api, key="k-1")).json()
    assert again == {"jobId": first["jobId"], "status": "PROCESSING"}
    clock.advance(60)
    assert (await split(api, key="k-1")).json()["status"] == "COMPLETED"
    assert sandbox.counters.jobs_created == 1 and sandbox.counters.credits_charged == 11
    assert sandbox.counters.idempotent_replays == 2


async def test_a_replay_of_a_failed_job_says_failed(api: httpx.AsyncClient, sandbox: Sandbox,
                                                    clock: FakeClock) -> None:
    sandbox.plan_next(outcome="FAILED")
    await split(api, key="k-f")
    clock.advance(60)
    assert (await split(api, key="k-f")).json()["status"] == "FAILED"


async def test_the_same_key_with_another_body_is_409(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    await split(api, key="k-2", index=1)
    response = await split(api, key="k-2", index=2)
    assert response.status_code == 409 and "Idempotency-Key" in response.json()["error"]
    assert sandbox.counters.jobs_created == 1


async def test_keys_are_forgotten_after_a_day(api: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock) -> None:
    first = (await split(api, key="k-3")).json()["jobId"]
    clock.advance(sandbox.config.idempotency_seconds + 1)
    assert (await split(api, key="k-3")).json()["jobId"] != first


async def test_a_key_longer_than_255_is_400(api: httpx.AsyncClient) -> None:
    assert (await split(api, key="k" * 256)).status_code == 400


# listing ---------------------------------------------------------------------------------------------------


async def test_listing_filters_and_pages_newest_first(api: httpx.AsyncClient, clock: FakeClock) -> None:
    everything = (await api.get("/v2/jobs", params={"limit": 100})).json()
    created = [job["createdAt"] for job in everything["jobs"]]
    assert created == sorted(created, reverse=True) and everything["hasMore"] is False
    completed = (await api.get("/v2/jobs", params={"status": "COMPLETED", "model": "suno"})).json()
    assert {job["status"] for job in completed["jobs"]} == {"COMPLETED"}
    assert len(completed["jobs"]) == 4
    pages: list[str] = []
    cursor: str | None = None
    while True:
        page = (await api.get("/v2/jobs", params={"status": "COMPLETED", "limit": 1,
                                                  **({"cursor": cursor} if cursor else {})})).json()
        pages.extend(job["id"] for job in page["jobs"])
        cursor = page["nextCursor"]
        assert page["hasMore"] == (cursor is not None)
        if not cursor:
            break
    assert pages == [job["id"] for job in completed["jobs"]]
    found = (await api.get("/v2/jobs", params={"search": SONG})).json()
    assert [job["id"] for job in found["jobs"]] == [SONG]
    assert (await api.get("/v2/jobs", params={"model": "udio"})).json()["jobs"] == []


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"status": "DONE"},
                                    {"cursor": "!!!"}, {"search": "x"}, {"scope": "world"}])
async def test_listing_rejects_bad_queries(api: httpx.AsyncClient, params: dict[str, str | int]) -> None:
    response = await api.get("/v2/jobs", params=params)
    assert response.status_code == 400 and set(response.json()["details"]) == {next(iter(params))}


# audio files and expiry --------------------------------------------------------------------------------------


async def test_audio_and_cover_files_are_served(api: httpx.AsyncClient) -> None:
    track = (await api.get(f"/v2/jobs/{SONG}")).json()["result"]["tracks"][0]
    api.headers.pop("X-API-Key")  # a CDN: no key needed, and none should be sent
    audio = await api.get(track["audioUrl"])
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert int(audio.headers["content-length"]) == len(audio.content) and audio.content[:4] == b"RIFF"
    head = await api.head(track["audioUrl"])
    assert head.headers["content-length"] == audio.headers["content-length"]
    cover = await api.get(track["imageUrl"])
    assert cover.content.startswith(b"\x89PNG")


async def test_files_of_unfinished_or_unknown_jobs_are_404(api: httpx.AsyncClient) -> None:
    assert (await api.get(f"/cdn/audio/{PROCESSING}-0.wav")).status_code == 404
    assert (await api.get(f"/cdn/audio/{uuid.uuid4()}-0.wav")).status_code == 404
    assert (await api.get(f"/cdn/audio/{SONG}-7.wav")).status_code == 404


async def test_completed_jobs_expire_after_the_retention(api: httpx.AsyncClient, sandbox: Sandbox,
                                                         clock: FakeClock) -> None:
    job_id = (await split(api)).json()["jobId"]
    clock.advance(60)
    url = (await api.get(f"/v2/jobs/{job_id}")).json()["result"]["tracks"][0]["audioUrl"]
    assert (await api.get(url)).status_code == 200
    clock.advance(sandbox.config.retention_seconds)
    job = (await api.get(f"/v2/jobs/{job_id}")).json()
    assert job["expired"] is True and job["status"] == "COMPLETED"
    assert (await api.get(url)).status_code == 404
    listed = (await api.get("/v2/jobs", params={"search": job_id})).json()["jobs"][0]
    assert listed["expired"] is True


# rate limiting -----------------------------------------------------------------------------------------------


async def test_going_over_the_rate_is_429_with_retry_after(api: httpx.AsyncClient, sandbox: Sandbox,
                                                            clock: FakeClock) -> None:
    sandbox.config.rate_limit, sandbox.config.rate_window = 3, 2.0
    statuses = [(await api.get("/v2/me")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await api.get("/v2/me")
    assert limited.headers["retry-after"] == "2" and limited.json()["error"]
    clock.advance(2.0)
    assert (await api.get("/v2/me")).status_code == 200


async def test_jobs_can_be_planned_per_kind(api: httpx.AsyncClient, sandbox: Sandbox, clock: FakeClock) -> None:
    sandbox.plan_next(JobPlan(outcome="FAILED"), kinds=("song",))
    stems = (await split(api)).json()["jobId"]
    song = (await api.post("/v2/music/generate", json={"model": "suno", "prompt": "x"})).json()["jobId"]
    clock.advance(60)
    assert (await api.get(f"/v2/jobs/{stems}")).json()["status"] == "COMPLETED"
    assert (await api.get(f"/v2/jobs/{song}")).json()["status"] == "FAILED"


async def test_splitting_a_seeded_song_yields_its_true_vocals_and_instrumental(api: httpx.AsyncClient,
                                                                              clock: FakeClock) -> None:
    import array
    import io
    import wave

    def samples(data: bytes) -> array.array[int]:
        with wave.open(io.BytesIO(data)) as decoded:
            assert (decoded.getnchannels(), decoded.getsampwidth()) == (1, 2)
            return array.array("h", decoded.readframes(decoded.getnframes()))

    song = (await api.get(f"/v2/jobs/{SONG}")).json()["result"]["tracks"][1]
    job_id = (await split(api, index=2)).json()["jobId"]
    clock.advance(60)
    stems = (await api.get(f"/v2/jobs/{job_id}")).json()["result"]["tracks"]
    mix = samples((await api.get(song["audioUrl"])).content)
    vocals, instrumental = [samples((await api.get(t["audioUrl"])).content) for t in stems]
    assert len(mix) == len(vocals) == len(instrumental) > 0
    assert max(abs(m - v - i) for m, v, i in zip(mix, vocals, instrumental, strict=True)) <= 1
    assert vocals != instrumental and any(vocals) and any(instrumental)
