"""The `Idempotency-Key` of a split, derived from the request itself so a repeat can never pay twice.

The same parent track (however it was named: index or track id) with the same webhook settings always
gives the same key for the same attempt number. The webhook is made canonical first (scheme and host in
lower case, events de-duplicated in one order, the documented default spelled out), and the request body
is built from that same canonical form, so two requests that mean the same thing share one key and one
body, and apiframe never sees one key with two bodies (a 409). The attempt number moves on only when the
previous attempt's job is dead (FAILED or CANCELLED) or its files are gone (expired and not saved), so a
retry, a repeated call or a call cut off by the client returns the job already paid for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from ..apiframe.models import Webhook
from ..vocabulary import DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENTS

MAX_ATTEMPTS = 20


def canonical_webhook(url: str | None, events: Iterable[str] | None) -> Webhook | None:
    if url is None:
        return None
    parts = urlsplit(url.strip())
    netloc = parts.netloc.rsplit("@", 1)
    host = netloc[-1].lower()
    if (parts.scheme.lower(), parts.port) in (("https", 443), ("http", 80)):
        host = host.rsplit(":", 1)[0]
    canonical_url = urlunsplit((parts.scheme.lower(), "@".join([*netloc[:-1], host]), parts.path or "/",
                                parts.query, ""))
    wanted = set(events) if events is not None else set(DEFAULT_WEBHOOK_EVENTS)
    return Webhook(url=canonical_url, events=tuple(e for e in WEBHOOK_EVENTS if e in wanted))


def stems_key(parent_job_id: str, track_id: str, attempt: int, webhook: Webhook | None = None) -> str:
    hooked = f"{webhook.url}|{','.join(webhook.events)}" if webhook is not None else ""
    material = "\n".join(("stems", parent_job_id.lower(), track_id, hooked))
    digest = hashlib.sha256(material.encode()).hexdigest()[:40]
    return f"suno-stems-mcp.stems.{digest}.{attempt}"
