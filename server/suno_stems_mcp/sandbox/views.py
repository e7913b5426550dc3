"""How sandbox state looks on the wire: the JSON shapes of apiframe's v2 API."""

from __future__ import annotations

from typing import Any

from .store import Account, Job, Store, iso


def audio_url(base_url: str, job: Job, n: int, audio_format: str) -> str:
    return f"{base_url}/cdn/audio/{job.id}-{n}.{audio_format}"


def image_url(base_url: str, job: Job, n: int) -> str:
    return f"{base_url}/cdn/images/{job.id}-{n}.png"


def job_json(store: Store, job: Job, base_url: str, *, in_list: bool = False) -> dict[str, Any]:
    now = store.now()
    status = job.status(now)
    done_at = job.final_at(now)
    body: dict[str, Any] = {
        "id": job.id,
        "status": status,
        "model": job.model,
        "progress": job.progress(now),
        "error": job.error if status == "FAILED" else ("Job was cancelled." if status == "CANCELLED" else None),
        "creditCost": store.credit_cost(job),
        "webhookStatus": webhook_status(job, status),
        "createdAt": iso(job.created_at),
        "completedAt": iso(done_at) if done_at is not None else None,
        "expired": job.expired(now, store.config.retention_seconds),
        "input": job.input,
        "result": result_json(job, base_url, store.config.audio_format) if status == "COMPLETED" else None,
    }
    if in_list:
        body.pop("input")
    return body


def result_json(job: Job, base_url: str, audio_format: str) -> dict[str, Any]:
    return {
        "tracks": [
            {
                "id": track.id,
                "audioUrl": audio_url(base_url, job, n, audio_format),
                "imageUrl": image_url(base_url, job, n) if track.has_image else None,
                "title": track.title,
                "tags": track.tags,
                "duration": track.duration,
            }
            for n, track in enumerate(job.tracks)
        ]
    }


def webhook_status(job: Job, status: str) -> str | None:
    if not job.webhook_url:
        return None
    final_event = "completed" if status == "COMPLETED" else "failed"
    if status in ("COMPLETED", "FAILED", "CANCELLED") and final_event in job.webhook_sent:
        return "failed" if job.webhook_failures else "delivered"
    return "pending"


def me_json(account: Account) -> dict[str, Any]:
    return {
        "user": {"id": account.user_id, "email": account.email, "role": "OWNER"},
        "team": {
            "id": account.team_id,
            "name": account.team_name,
            "credits": max(0, account.credits),
            "plan": account.plan,
            "customerId": None,
        },
        "apiKey": {"id": account.key_id, "name": account.key_name, "prefix": account.key[:8]},
    }
