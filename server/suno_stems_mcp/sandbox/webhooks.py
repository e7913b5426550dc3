"""Webhook delivery as apiframe documents it: a signed JSON POST per subscribed event."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any

import httpx

from .store import FINAL, PROGRESS_EVENT_STEPS, Job, Store, iso
from .views import result_json

log = logging.getLogger(__name__)

ATTEMPTS = 3


def signature(body: bytes, api_key: str) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the raw body, keyed with the raw SHA-256 digest of the API key."""
    key = hashlib.sha256(api_key.encode()).digest()
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(body: bytes, api_key: str, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(signature(body, api_key), header)


def _payload(store: Store, job: Job, event: str) -> dict[str, Any]:
    now = store.now()
    status = job.status(now)
    payload: dict[str, Any] = {"event": event, "jobId": job.id, "status": status}
    if event == "progress":
        payload["progress"] = job.progress(now)
    elif event == "completed":
        done = job.final_at(now)
        payload.update(
            result=result_json(job, job.base_url, store.config.audio_format),
            creditCost=store.credit_cost(job),
            completedAt=iso(done) if done is not None else None,
        )
    else:
        payload["error"] = job.error if status == "FAILED" else "Job was cancelled."
    return payload


class WebhookDispatcher:
    """One asyncio task per job with a webhook, sending each event once it is due."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, job: Job) -> None:
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _due(self, job: Job) -> tuple[list[str], float | None]:
        """Events to send now, and when to look again (None: nothing more will come)."""
        now = self.store.now()
        status = job.status(now)
        due: list[str] = []
        wake: list[float] = []
        if "progress" in job.webhook_events:
            for step in PROGRESS_EVENT_STEPS:
                name = f"progress:{step}"
                if name in job.webhook_sent or status in FINAL:
                    continue
                if status == "PROCESSING" and job.progress(now) >= step:
                    due.append(name)
                else:
                    wake.append(job.progress_at(step))
        final_event = "completed" if status == "COMPLETED" else "failed"
        if status in FINAL:
            if final_event in job.webhook_events and final_event not in job.webhook_sent:
                due.append(final_event)
            return due, None
        if job.ends_at is not None:
            wake.append(job.ends_at)
        elif not wake:
            wake.append(now + 1.0)  # an endless job may still be cancelled
        return due, min(wake) if wake else None

    async def _run(self, job: Job) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                due, wake = self._due(job)
                for name in due:
                    await self._deliver(client, job, name.split(":")[0])
                    job.webhook_sent.add(name)
                if wake is None and not due:
                    return
                if wake is not None:
                    await asyncio.sleep(min(1.0, max(0.01, wake - self.store.now())))

    async def _deliver(self, client: httpx.AsyncClient, job: Job, event: str) -> None:
        body = json.dumps(_payload(self.store, job, event), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "apiframe-sandbox-webhooks/1",
            "X-Webhook-Event": event,
            "X-Webhook-Signature": signature(body, job.owner),
        }
        assert job.webhook_url is not None
        for attempt in range(ATTEMPTS):
            try:
                response = await client.post(job.webhook_url, content=body, headers=headers)
                if response.status_code < 300:
                    self.store.counters.webhooks_delivered += 1
                    return
            except httpx.HTTPError as exc:
                log.info("webhook %s for job %s: %s", event, job.id, type(exc).__name__)
            await asyncio.sleep(0.2 * (attempt + 1))
        self.store.counters.webhooks_failed += 1
        if event != "progress":
            job.webhook_failures += 1
