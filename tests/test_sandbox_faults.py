"""Fault injection answers badly exactly as asked, for the chosen route and the next N requests only."""

from __future__ import annotations

import time

import httpx
import pytest

from suno_stems_mcp.sandbox import Sandbox, ThreadedSandbox
from suno_stems_mcp.sandbox.faults import Fault
from suno_stems_mcp.sandbox.seed import demo_id

pytestmark = pytest.mark.anyio

SONG = demo_id("Midnight Harbor")
STEMS_BODY = {"parentJobId": SONG, "action": "stems", "index": 1}


@pytest.mark.parametrize(
    ("body", "content_type", "check"),
    [
        ("json", "application/json", lambda r: r.json() == {"error": "Service temporarily unavailable"}),
        ("html", "text/html; charset=utf-8", lambda r: r.text.startswith("<!DOCTYPE html>")),
        ("empty", "application/json", lambda r: r.content == b""),
    ],
)
async def test_a_status_fault_answers_without_handling_the_request(api: httpx.AsyncClient, sandbox: Sandbox,
                                                                   body: str, content_type: str,
                                                                   check: object) -> None:
    sandbox.inject("POST /v2/music/suno/action", status=503, body=body, retry_after=3)
    response = await api.post("/v2/music/suno/action", json=STEMS_BODY)
    assert response.status_code == 503 and response.headers["retry-after"] == "3"
    assert response.headers["content-type"] == content_type and check(response)  # type: ignore[operator]
    assert sandbox.counters.jobs_created == 0
    assert (await api.post("/v2/music/suno/action", json=STEMS_BODY)).status_code == 202


async def test_a_fault_fires_only_for_its_route_and_count(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    fault = sandbox.inject("GET /v2/jobs/*", times=2, status=500)
    assert (await api.get("/v2/jobs")).status_code == 200
    assert (await api.get("/v2/me")).status_code == 200
    assert [(await api.get(f"/v2/jobs/{SONG}")).status_code for _ in range(3)] == [500, 500, 200]
    assert fault.hits == 2 and sandbox.faults.pending == []


async def test_wildcards_and_methods(sandbox: Sandbox) -> None:
    rule = Fault("* /cdn/**")
    assert rule.matches("GET", "/cdn/audio/x-0.wav") and rule.matches("HEAD", "/cdn/images/y.png")
    assert not rule.matches("GET", "/v2/jobs")
    with pytest.raises(ValueError):
        Fault("GET v2/jobs")


async def test_a_drop_before_handling_creates_nothing(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.inject("POST /v2/music/suno/action", drop="before")
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post("/v2/music/suno/action", json=STEMS_BODY)
    assert sandbox.counters.jobs_created == 0
    assert (await api.get("/v2/me")).status_code == 200


async def test_a_drop_after_handling_keeps_the_work(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.inject("POST /v2/music/suno/action", drop="after")
    with pytest.raises(httpx.RemoteProtocolError):
        await api.post("/v2/music/suno/action", json=STEMS_BODY, headers={"Idempotency-Key": "drop-after"})
    assert sandbox.counters.jobs_created == 1
    again = await api.post("/v2/music/suno/action", json=STEMS_BODY, headers={"Idempotency-Key": "drop-after"})
    assert again.status_code == 202 and sandbox.counters.jobs_created == 1


async def test_a_malformed_body_is_not_json(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.inject("GET /v2/jobs/*", body="malformed")
    response = await api.get(f"/v2/jobs/{SONG}")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


async def test_a_truncated_body_breaks_off(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.inject("GET /v2/jobs/*", body="truncated")
    with pytest.raises(httpx.RemoteProtocolError):
        await api.get(f"/v2/jobs/{SONG}")
    assert (await api.get(f"/v2/jobs/{SONG}")).status_code == 200


async def test_an_audio_body_shorter_than_its_content_length(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    url = (await api.get(f"/v2/jobs/{SONG}")).json()["result"]["tracks"][0]["audioUrl"]
    sandbox.inject("GET /cdn/audio/*", short_by=1000)
    with pytest.raises(httpx.RemoteProtocolError):
        await api.get(url)


async def test_a_delay_holds_the_answer(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    sandbox.inject("GET /v2/me", delay=0.3)
    started = time.monotonic()
    assert (await api.get("/v2/me")).status_code == 200
    assert time.monotonic() - started >= 0.3


async def test_a_delay_past_the_clients_timeout_times_out(live_sandbox: ThreadedSandbox) -> None:
    live_sandbox.sandbox.inject("GET /v2/me", delay=1.0)
    async with httpx.AsyncClient(base_url=live_sandbox.url) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/v2/me", timeout=0.2)


async def test_requests_are_logged_with_headers_and_bodies(api: httpx.AsyncClient, sandbox: Sandbox) -> None:
    await api.post("/v2/music/suno/action", json=STEMS_BODY, headers={"Idempotency-Key": "log-me"})
    sandbox.inject("GET /v2/me", status=502, body="html")
    await api.get("/v2/me")
    posted = sandbox.requests("POST")
    assert len(posted) == 1 and posted[0].json() == STEMS_BODY
    assert posted[0].headers["idempotency-key"] == "log-me" and posted[0].status == 202
    assert sandbox.requests("GET", "/v2/me")[-1].status == 502
    assert sandbox.counters.jobs_created == 1 and sandbox.counters.credits_charged == 11


async def test_a_drip_needs_at_least_a_byte_at_a_time() -> None:
    with pytest.raises(ValueError, match="drip_size"):
        Fault("GET /cdn/audio/*", drip=1.0, drip_size=0)


@pytest.mark.parametrize("fault", [{"body": "endless"}, {"drip_headers": 0.01}])
async def test_faults_that_need_a_socket_say_so_in_process(sandbox: Sandbox, fault: dict[str, object]) -> None:
    url = f"/cdn/audio/{demo_id('Midnight Harbor stems')}-0.wav"
    sandbox.inject("GET /cdn/audio/*", **fault)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sandbox.app), base_url="http://sandbox.test") as c:
        with pytest.raises(httpx.RemoteProtocolError, match="needs a socket"):
            await c.get(url)
