"""Every key `afk_sandbox_<name>` is an account of its own: seeded, with its own jobs and credits, blind to others'.
Also: the sandbox's timing read from the environment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from suno_stems_mcp.errors import SettingsError
from suno_stems_mcp.sandbox import DEMO_KEY, INACTIVE_KEY, Sandbox, SandboxConfig
from suno_stems_mcp.sandbox.seed import DEMO_SONGS, demo_id, seeded_id

from .conftest import FakeClock

pytestmark = pytest.mark.anyio

ALICE = "afk_sandbox_alice"
BOB = "afk_sandbox_Bob-2_x"


@pytest.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app), base_url="http://s.test") as client:
        yield client


async def jobs_of(client: httpx.AsyncClient, key: str) -> list[dict[str, Any]]:
    response = await client.get("/v2/jobs", params={"limit": 100}, headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    jobs: list[dict[str, Any]] = response.json()["jobs"]
    return jobs


async def split(client: httpx.AsyncClient, key: str) -> str:
    body = {"parentJobId": seeded_id(key, DEMO_SONGS[0][0]), "action": "stems", "index": 1}
    response = await client.post("/v2/music/suno/action", json=body, headers={"X-API-Key": key})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["jobId"]
    return job_id


async def test_a_new_sandbox_key_opens_an_account_seeded_like_the_demo_one(client: httpx.AsyncClient,
                                                                           sandbox: Sandbox) -> None:
    me = (await client.get("/v2/me", headers={"X-API-Key": ALICE})).json()
    assert me["team"]["credits"] == sandbox.config.credits and me["team"]["name"] == "alice team"
    demo_me = (await client.get("/v2/me", headers={"X-API-Key": DEMO_KEY})).json()
    assert me["user"]["id"] != demo_me["user"]["id"] and me["apiKey"]["id"] != demo_me["apiKey"]["id"]
    mine, demos = await jobs_of(client, ALICE), await jobs_of(client, DEMO_KEY)
    assert sorted(job["status"] for job in mine) == sorted(job["status"] for job in demos)
    assert {job["id"] for job in mine}.isdisjoint(job["id"] for job in demos)
    song = (await client.get(f"/v2/jobs/{seeded_id(ALICE, 'Midnight Harbor')}", headers={"X-API-Key": ALICE})).json()
    assert song["status"] == "COMPLETED" and len(song["result"]["tracks"]) == 2


async def test_the_demo_account_keeps_its_well_known_ids(client: httpx.AsyncClient) -> None:
    assert seeded_id(DEMO_KEY, "Midnight Harbor") == demo_id("Midnight Harbor")
    ids = {job["id"] for job in await jobs_of(client, DEMO_KEY)}
    assert demo_id("Midnight Harbor") in ids and demo_id("Midnight Harbor stems") in ids


async def test_the_inactive_key_stays_inactive(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/me", headers={"X-API-Key": INACTIVE_KEY})).status_code == 403


async def test_one_user_never_sees_anothers_jobs(client: httpx.AsyncClient, clock: FakeClock) -> None:
    alices = await split(client, ALICE)
    clock.advance(60)
    assert (await client.get(f"/v2/jobs/{alices}", headers={"X-API-Key": ALICE})).json()["status"] == "COMPLETED"
    for other in (BOB, DEMO_KEY):
        missing = await client.get(f"/v2/jobs/{alices}", headers={"X-API-Key": other})
        assert missing.status_code == 404 and missing.json() == {"error": "Job not found."}
        assert alices not in {job["id"] for job in await jobs_of(client, other)}
        searched = await client.get("/v2/jobs", params={"search": alices}, headers={"X-API-Key": other})
        assert searched.json()["jobs"] == []
    alice_song = seeded_id(ALICE, "Midnight Harbor")
    borrowed = {"parentJobId": alice_song, "action": "stems", "index": 1}
    assert (await client.post("/v2/music/suno/action", json=borrowed,
                              headers={"X-API-Key": BOB})).status_code == 404
    assert alices in {job["id"] for job in await jobs_of(client, ALICE)}


async def test_each_account_pays_from_its_own_credits(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    await split(client, ALICE)
    await split(client, ALICE)
    balances = {key: (await client.get("/v2/me", headers={"X-API-Key": key})).json()["team"]["credits"]
                for key in (ALICE, BOB, DEMO_KEY)}
    full = sandbox.config.credits
    assert balances == {ALICE: full - 22, BOB: full, DEMO_KEY: full}


async def test_the_same_idempotency_key_in_two_accounts_makes_two_jobs(client: httpx.AsyncClient) -> None:
    made = []
    for key in (ALICE, BOB):
        body = {"parentJobId": seeded_id(key, "Midnight Harbor"), "action": "stems", "index": 1}
        response = await client.post("/v2/music/suno/action", json=body,
                                     headers={"X-API-Key": key, "Idempotency-Key": "same-key"})
        made.append(response.json()["jobId"])
    assert made[0] != made[1]


@pytest.mark.parametrize("key", ["afk_sandbox_", "afk_sandbox_" + "a" * 65, "afk_sandbox_a.b", "afk_sandbox_ä",
                                 "afk_sandbox_a b", "afk_sandboxalice", "AFK_SANDBOX_alice"])
async def test_keys_outside_the_pattern_are_401(client: httpx.AsyncClient, key: str) -> None:
    response = await client.get("/v2/me", headers={b"X-API-Key": key.encode()})
    assert response.status_code == 401


async def test_a_name_of_64_characters_is_an_account(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/me", headers={"X-API-Key": "afk_sandbox_" + "Z" * 64})).status_code == 200


async def test_without_demo_data_new_accounts_start_empty(clock: FakeClock) -> None:
    sandbox = Sandbox(SandboxConfig.fast(clock=clock, seed_demo_data=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app), base_url="http://s.test") as client:
        assert await jobs_of(client, ALICE) == []
        assert (await client.get("/v2/me", headers={"X-API-Key": ALICE})).json()["team"]["credits"] == 500


# timing from the environment ------------------------------------------------------------------------------


def test_timing_comes_from_the_environment() -> None:
    config = SandboxConfig.from_env({"SUNO_STEMS_SANDBOX_STEMS_SECONDS": "45.5",
                                     "SUNO_STEMS_SANDBOX_QUEUE_SECONDS": "0"})
    assert (config.stems_seconds, config.queue_seconds) == (45.5, 0.0)
    default = SandboxConfig.from_env({"SUNO_STEMS_SANDBOX_STEMS_SECONDS": " ", "UNRELATED": "x"})
    assert (default.stems_seconds, default.queue_seconds) == (SandboxConfig.stems_seconds, SandboxConfig.queue_seconds)
    assert SandboxConfig.from_env({}, credits=7).credits == 7


@pytest.mark.parametrize("name", ["SUNO_STEMS_SANDBOX_STEMS_SECONDS", "SUNO_STEMS_SANDBOX_QUEUE_SECONDS"])
@pytest.mark.parametrize("raw", ["soon", "-1", "nan", "inf", "86401", "1e400"])
def test_unusable_timing_is_a_settings_error_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(SettingsError) as caught:
        SandboxConfig.from_env({name: raw})
    assert f"{name}={raw!r}" in str(caught.value) and "seconds" in str(caught.value)


async def test_a_split_lasts_as_long_as_the_environment_says(clock: FakeClock) -> None:
    config = SandboxConfig.from_env({"SUNO_STEMS_SANDBOX_STEMS_SECONDS": "40", "SUNO_STEMS_SANDBOX_QUEUE_SECONDS": "2"},
                                    clock=clock)
    sandbox = Sandbox(config)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app), base_url="http://s.test") as client:
        job_id = await split(client, ALICE)
        status = []
        for seconds in (1.9, 0.2, 35, 6):
            clock.advance(seconds)
            job = await client.get(f"/v2/jobs/{job_id}", headers={"X-API-Key": ALICE})
            status.append(job.json()["status"])
    assert status == ["QUEUED", "PROCESSING", "PROCESSING", "COMPLETED"]
