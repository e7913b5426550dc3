"""The `Idempotency-Key` of a split, derived from the request itself so a repeat can never pay twice.

The same parent track (however it was named: index or track id) with the same webhook settings always
gives the same key for the same attempt number. The attempt number moves on only when the previous
attempt's job is dead (FAILED or CANCELLED) or its files are gone (expired), so a retry, a repeated call
or a call cut off by the client returns the job already paid for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

MAX_ATTEMPTS = 20


def stems_key(
    parent_job_id: str,
    track_id: str,
    attempt: int,
    webhook_url: str | None = None,
    webhook_events: Sequence[str] | None = None,
) -> str:
    # The webhook is part of the body apiframe compares: the same key with another webhook would be a 409.
    webhook = f"{webhook_url or ''}|{','.join(sorted(set(webhook_events or ())))}" if webhook_url else ""
    material = "\n".join(("stems", parent_job_id.lower(), track_id, webhook))
    digest = hashlib.sha256(material.encode()).hexdigest()[:40]
    return f"suno-stems-mcp.stems.{digest}.{attempt}"
