"""The ASGI layer in front of the sandbox's routes: records every request and plays the faults asked for."""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .faults import HTML_PAGE, Fault
from .store import RequestRecord

if TYPE_CHECKING:
    from .emulator import Sandbox

BOMB_MEMBER = 16 << 20
"""Bytes one gzip member of a bomb inflates to; a bomb is as many members as it takes (gzip allows that)."""
ENDLESS_CHUNK = bytes(64 * 1024)
RANGE_HEADERS = frozenset({b"range", b"if-range"})


class FaultLayer:
    """Pure ASGI in front of the routes: records every request and plays the faults tests ask for."""

    def __init__(self, sandbox: Sandbox, inner: ASGIApp) -> None:
        self.sandbox = sandbox
        self.inner = inner
        sandbox.faults.clock = sandbox.store.now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        body = await _read_body(receive)
        record = RequestRecord(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
        )
        with self.sandbox.store.lock:
            self.sandbox.store.requests.append(record)
        replayed = _replay(body, receive)
        fault = self.sandbox.faults.take(scope["method"], scope["path"],
                                         lambda rule: self._applies(rule, record))

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        if fault is None:
            await self.inner(scope, replayed, recording_send)
            return
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop == "before":
            await _drop_connection(receive)
            return
        if fault.redirect is not None:
            await _redirect(fault, scope, recording_send)
            return
        if fault.cached_replay:
            await _json_answer(recording_send, 202, {"jobId": self._first_job(record), "status": "QUEUED"})
            return
        if fault.status is not None:
            await _fault_response(fault, recording_send, record.headers.get("x-api-key", ""))
            return
        if fault.fakes_body:
            await _fake_body(fault, recording_send, receive)
            return
        if fault.rewrites_answer:
            start, payload = await _capture(self.inner, scope, replayed)
            await _rewritten(fault, start, payload, record.headers.get("x-api-key", ""), recording_send)
            return
        if fault.ignore_range:
            scope = _without_range(scope)
        if fault.drip and not fault.spoils_answer:
            await self.inner(scope, replayed, _dripping(fault, recording_send, receive))
            return
        if not fault.spoils_answer:
            await self.inner(scope, replayed, recording_send)
            return
        start, payload = await _capture(self.inner, scope, replayed)
        record.status = start["status"]
        await _spoil(fault, start, payload, send, receive)


    def _applies(self, fault: Fault, record: RequestRecord) -> bool:
        """Whether a rule whose route matched fires for this request (the conditions beyond the route)."""
        if fault.new_jobs_only:
            job_id = record.path.rstrip("/").rpartition("/")[2]
            with self.sandbox.store.lock:
                job = self.sandbox.store.jobs.get(job_id)
            if job is None or job.created_at < fault.added_at:
                return False
        if fault.cached_replay:
            return self._first_job(record) is not None
        return True

    def _first_job(self, record: RequestRecord) -> str | None:
        """The job an already used Idempotency-Key (with this same body) created, if any."""
        store = self.sandbox.store
        key = record.headers.get("idempotency-key")
        try:
            body = json.loads(record.body)
        except ValueError:
            return None
        if not key:
            return None
        fingerprint = store.fingerprint(record.method, record.path, body)
        with store.lock:
            entry = store.idempotency.get((record.headers.get("x-api-key", ""), key))
        if entry is None or entry[0] != fingerprint:
            return None
        return entry[1]


def echoed(key: str, how: str | None) -> str:
    """The key as apiframe might echo it: whole, missing its last character, or upper-cased."""
    if how == "partial":
        return key[:-1]
    if how == "upper":
        return key.upper()
    return key


async def _json_answer(send: Send, status: int, data: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(data).encode()
    kept = [(k, v) for k, v in headers or [(b"content-type", b"application/json")] if k.lower() != b"content-length"]
    kept.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": kept})
    await send({"type": "http.response.body", "body": payload})


async def _rewritten(fault: Fault, start: Message, payload: bytes, key: str, send: Send) -> None:
    """The real answer with its JSON changed as the fault says (a job, or every job of a page)."""
    try:
        data = json.loads(payload)
    except ValueError:
        data = None
    page = data.get("jobs") if isinstance(data, dict) else None
    jobs: list[Any] = page if isinstance(page, list) else [data]
    for job in jobs:
        if isinstance(job, dict) and "id" in job and "status" in job:
            _rewrite_job(fault, job, key)
    if data is None:
        await send(start)
        await send({"type": "http.response.body", "body": payload})
        return
    await _json_answer(send, start["status"], data, list(start["headers"]))


def _rewrite_job(fault: Fault, job: dict[str, Any], key: str) -> None:
    if fault.lowercase_status and isinstance(job.get("status"), str):
        job["status"] = job["status"].lower()
    result = job.get("result")
    tracks = result.get("tracks") if isinstance(result, dict) else None
    if isinstance(tracks, list):
        if fault.duplicate_tracks:
            tracks[:] = [dict(track) for track in tracks for _ in (0, 1)]
        for track in tracks:
            if isinstance(track, dict):
                track.update(fault.track_patch or {})
                if fault.echo_key is not None:
                    track["title"] = f"Song for {echoed(key, fault.echo_key)}"
                    track["tags"] = f"pop, {echoed(key, fault.echo_key)}"
    if fault.echo_key is not None:
        job["error"] = f"Processing failed for API key {echoed(key, fault.echo_key)}"
    job.update(fault.patch or {})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _drop_connection(receive: Receive) -> None:
    """Close the socket with no answer; in process (no socket) raise what httpx raises for that."""
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
    transport.abort()
    for _ in range(5):  # let the server see the disconnect, so it does not try to answer 500 instead
        await asyncio.sleep(0)


async def _fault_response(fault: Fault, send: Send, key: str = "") -> None:
    status = fault.status or 500
    if fault.echo_key is not None:
        echo = echoed(key, fault.echo_key)
        payload = json.dumps({"error": f"API key {echo} was refused", "message": f"Check the key {echo}",
                              "details": {"apiKey": [f"{echo} is not valid here"]}}).encode()
        content_type = "application/json"
    elif fault.body == "html":
        payload, content_type = HTML_PAGE.format(status=status).encode(), "text/html; charset=utf-8"
    elif fault.body == "empty":
        payload, content_type = b"", "application/json"
    else:
        payload = json.dumps({"error": _FAULT_MESSAGES.get(status, "Injected fault")}).encode()
        content_type = "application/json"
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(payload)).encode())]
    if fault.retry_after is not None:
        headers.append((b"retry-after", str(fault.retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


_FAULT_MESSAGES = {
    400: "Invalid job id: it must be a UUID.",
    403: "Forbidden",
    404: "Job not found.",
    429: "Rate limit exceeded",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
    504: "Gateway timeout",
}


async def _capture(app: ASGIApp, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
    start: Message = {}
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    return start, b"".join(chunks)


async def _spoil(fault: Fault, start: Message, payload: bytes, send: Send, receive: Receive) -> None:
    if fault.drop == "after":
        await _drop_connection(receive)
        return
    headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
    if fault.drip_headers:
        headers.append((b"content-length", str(len(payload)).encode()))
        await _drip_raw_answer(start["status"], headers, payload, fault.drip_headers, receive)
        return
    if fault.body == "malformed":
        garbage = b'{"jobId": "' + payload[:7] + b"\x00<<not json"
        headers.append((b"content-length", str(len(garbage)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": garbage})
        return
    keep = len(payload) // 2 if fault.body == "truncated" else max(0, len(payload) - fault.short_by)
    if getattr(getattr(receive, "__self__", None), "transport", None) is None:
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": start["status"], "headers": headers})
    await send({"type": "http.response.body", "body": payload[:keep], "more_body": True})
    await _drop_connection(receive)


# --- CDN faults ----------------------------------------------------------------------------------------------


def _transport(receive: Receive, what: str) -> asyncio.Transport:
    """The socket under this request; in process (no socket) raise what httpx raises for a broken answer."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        raise httpx.RemoteProtocolError(f"{what} needs a socket: serve the sandbox with ThreadedSandbox")
    return transport


def _gone(receive: Receive) -> bool:
    """Whether the client has hung up (only known on a socket)."""
    return bool(getattr(getattr(receive, "__self__", None), "disconnected", False))


async def _redirect(fault: Fault, scope: Scope, send: Send) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    here = scope["path"] + (f"?{query}" if query else "")
    location = here if fault.redirect == "loop" else str(fault.redirect).replace("{path}", here)
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": fault.status or 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _without_range(scope: Scope) -> Scope:
    return {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() not in RANGE_HEADERS]}


def _dripping(fault: Fault, send: Send, receive: Receive) -> Send:
    """A `send` that lets the body out `drip_size` bytes every `drip` seconds, while the client listens."""

    async def dripping(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        body = message.get("body", b"")
        for offset in range(0, len(body), fault.drip_size):
            if _gone(receive):
                return
            await send({"type": "http.response.body", "body": body[offset:offset + fault.drip_size],
                        "more_body": True})
            await asyncio.sleep(fault.drip)
        if not message.get("more_body", False):
            await send({"type": "http.response.body", "body": b""})

    return dripping


async def _drip_raw_answer(status: int, headers: list[tuple[bytes, bytes]], payload: bytes, seconds: float,
                           receive: Receive) -> None:
    """Write the answer straight to the socket, its head one byte at a time, then close the connection."""
    transport = _transport(receive, "dripping headers")
    phrase = HTTPStatus(status).phrase.encode()
    lines = [b"HTTP/1.1 %d %s" % (status, phrase)] + [k + b": " + v for k, v in headers] + [b"connection: close"]
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    for index in range(len(head)):
        if transport.is_closing() or _gone(receive):
            return
        transport.write(head[index:index + 1])
        await asyncio.sleep(seconds)
    transport.write(payload)
    transport.close()
    for _ in range(3000):  # until the server sees the connection end, so it does not try to answer 500 on it
        if _gone(receive):
            return
        await asyncio.sleep(0.01)


async def _fake_body(fault: Fault, send: Send, receive: Receive) -> None:
    if fault.body == "gzip-bomb":
        await _gzip_bomb(fault.inflates_to, send)
    elif fault.body == "gzip-corrupt":
        await _answer(send, _corrupt_gzip(), [(b"content-encoding", b"gzip")])
    elif fault.body == "huge":
        await _huge(fault, send, receive)
    elif fault.body == "deep":
        await _answer(send, b"[" * fault.depth + b"]" * fault.depth, [], content_type=b"application/json")
    else:
        await _endless(send, receive)


async def _answer(send: Send, payload: bytes, extra: list[tuple[bytes, bytes]],
                  content_type: bytes = b"audio/wav") -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(payload)).encode()), *extra]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _gzip_bomb(inflates_to: int, send: Send) -> None:
    whole, rest = divmod(max(0, inflates_to), BOMB_MEMBER)
    members = [_bomb_member(BOMB_MEMBER)] * whole + ([_bomb_member(rest)] if rest else [])
    length = sum(len(member) for member in members)
    headers = [(b"content-type", b"audio/wav"), (b"content-encoding", b"gzip"),
               (b"content-length", str(length).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for member in members:
        await send({"type": "http.response.body", "body": member, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@functools.cache
def _bomb_member(inflated: int) -> bytes:
    return gzip.compress(bytes(inflated), compresslevel=9, mtime=0)


@functools.cache
def _corrupt_gzip() -> bytes:
    """A gzip header, then a deflate stream scrambled so that inflating it fails."""
    whole = gzip.compress(b"RIFF not really audio " * 4096, mtime=0)
    return whole[:10] + bytes(byte ^ 0x5A for byte in whole[10:])


async def _endless(send: Send, receive: Receive) -> None:
    _transport(receive, "an endless body")
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"audio/wav")]})
    while not _gone(receive):
        await send({"type": "http.response.body", "body": ENDLESS_CHUNK, "more_body": True})
        await asyncio.sleep(0)


HUGE_PIECE = b'{"id": "00000000-0000-0000-0000-000000000000", "status": "QUEUED", "padding": "' + b"x" * 900 + b'"},'


async def _huge(fault: Fault, send: Send, receive: Receive) -> None:
    """`huge_bytes` of a JSON page of jobs, a piece at a time while the client listens."""
    _transport(receive, "a huge body")
    head, tail = b'{"jobs": [', b'{}], "nextCursor": null, "hasMore": false}'
    size = max(fault.huge_bytes, len(head) + len(tail))
    headers = [(b"content-type", b"application/json")]
    if fault.declare_length:
        headers.append((b"content-length", str(size).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": head, "more_body": True})
    left = size - len(head) - len(tail)
    chunk = HUGE_PIECE * 64
    while left > 0 and not _gone(receive):
        piece = chunk[:left] if left < len(chunk) else chunk
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        left -= len(piece)
        await asyncio.sleep(0)
    if not _gone(receive):
        await send({"type": "http.response.body", "body": tail})
