"""Webhooks: the subscribed events, POSTed to a receiver on loopback, signed as apiframe documents."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx
import pytest

from suno_stems_mcp.sandbox import DEMO_KEY, ThreadedSandbox
from suno_stems_mcp.sandbox.seed import demo_id
from suno_stems_mcp.sandbox.webhooks import signature, verify

pytestmark = pytest.mark.anyio


class Receiver:
    """A webhook endpoint on loopback that keeps what it is sent, answering `answer`."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.answer = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/apiframe"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [json.loads(body)["event"] for _, body in self.calls]

    def wait_for(self, event: str, timeout: float = 5.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, body in self.calls:
                payload = json.loads(body)
                if payload["event"] == event:
                    return payload
            time.sleep(0.02)
        raise AssertionError(f"no {event!r} webhook; got {self.events()}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


def test_the_signature_is_hmac_sha256_keyed_with_the_keys_digest() -> None:
    body = b'{"event":"completed"}'
    expected = hmac.new(hashlib.sha256(b"afk_test_key").digest(), body, hashlib.sha256).hexdigest()
    assert signature(body, "afk_test_key") == f"sha256={expected}"
    assert verify(body, "afk_test_key", f"sha256={expected}")
    assert not verify(body + b" ", "afk_test_key", f"sha256={expected}")
    assert not verify(body, "afk_test_other", f"sha256={expected}")


async def submit(running: ThreadedSandbox, **webhook: object) -> str:
    body = {"parentJobId": demo_id("Midnight Harbor"), "action": "stems", "index": 1, **webhook}
    async with httpx.AsyncClient(base_url=running.url, headers={"X-API-Key": DEMO_KEY}) as client:
        response = await client.post("/v2/music/suno/action", json=body)
        assert response.status_code == 202, response.text
        return str(response.json()["jobId"])


async def job(running: ThreadedSandbox, job_id: str) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=running.url, headers={"X-API-Key": DEMO_KEY}) as client:
        return dict((await client.get(f"/v2/jobs/{job_id}")).json())


async def test_progress_and_completed_events_are_delivered_signed(live_sandbox: ThreadedSandbox,
                                                                  receiver: Receiver) -> None:
    job_id = await submit(live_sandbox, webhookUrl=receiver.url, webhookEvents=["progress", "completed"])
    completed = receiver.wait_for("completed")
    assert completed["jobId"] == job_id and completed["status"] == "COMPLETED"
    assert completed["creditCost"] == 11 and completed["completedAt"]
    tracks = completed["result"]["tracks"]  # type: ignore[index]
    assert [t["id"] for t in tracks] == ["vocals", "instrumental"]
    for headers, body in receiver.calls:
        assert verify(body, DEMO_KEY, headers["x-webhook-signature"])
        assert headers["x-webhook-event"] == json.loads(body)["event"]
        assert DEMO_KEY not in body.decode() and DEMO_KEY not in str(headers)
    progress = [json.loads(body)["progress"] for _, body in receiver.calls if json.loads(body)["event"] == "progress"]
    assert progress and progress == sorted(progress) and all(0 < p < 100 for p in progress)
    assert receiver.events()[-1] == "completed"
    assert (await job(live_sandbox, job_id))["webhookStatus"] == "delivered"


async def test_by_default_only_completed_and_failed_are_sent(live_sandbox: ThreadedSandbox,
                                                             receiver: Receiver) -> None:
    live_sandbox.sandbox.plan_next(outcome="FAILED", error="Separation failed.")
    job_id = await submit(live_sandbox, webhookUrl=receiver.url)
    failed = receiver.wait_for("failed")
    assert failed == {"event": "failed", "jobId": job_id, "status": "FAILED", "error": "Separation failed."}
    assert receiver.events() == ["failed"]


async def test_a_receiver_that_keeps_failing_marks_the_webhook_failed(live_sandbox: ThreadedSandbox,
                                                                      receiver: Receiver) -> None:
    receiver.answer = 500
    job_id = await submit(live_sandbox, webhookUrl=receiver.url, webhookEvents=["completed"])
    deadline = time.monotonic() + 5
    while (await job(live_sandbox, job_id))["webhookStatus"] != "failed":
        assert time.monotonic() < deadline, "webhookStatus never became failed"
        await anyio.sleep(0.05)
    assert receiver.events() == ["completed"] * 3
    assert live_sandbox.sandbox.counters.webhooks_failed == 1


async def test_a_job_without_a_webhook_has_no_webhook_status(live_sandbox: ThreadedSandbox) -> None:
    job_id = await submit(live_sandbox)
    assert (await job(live_sandbox, job_id))["webhookStatus"] is None
