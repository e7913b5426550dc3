"""The ASGI layer in front of the sandbox's routes: records every request and plays the faults asked for."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .faults import HTML_PAGE, Fault
from .store import RequestRecord

if TYPE_CHECKING:
    from .emulator import Sandbox



class FaultLayer:
    """Pure ASGI in front of the routes: records every request and plays the faults tests ask for."""

    def __init__(self, sandbox: Sandbox, inner: ASGIApp) -> None:
        self.sandbox = sandbox
        self.inner = inner

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
        fault = self.sandbox.faults.take(scope["method"], scope["path"])

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
        if fault.status is not None:
            await _fault_response(fault, recording_send)
            return
        if not fault.spoils_answer:
            await self.inner(scope, replayed, recording_send)
            return
        start, payload = await _capture(self.inner, scope, replayed)
        record.status = start["status"]
        await _spoil(fault, start, payload, send, receive)


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


async def _fault_response(fault: Fault, send: Send) -> None:
    status = fault.status or 500
    if fault.body == "html":
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
    if fault.body == "malformed":
        garbage = b'{"jobId": "' + payload[:7] + b"\x00<<not json"
        headers.append((b"content-length", str(len(garbage)).encode()))
        await send({"type": "http.response.start", "status": start["status"], "headers": headers})
        await send({"type": "http.response.body", "body": garbage})
        return
    keep = len(payload) // 2 if fault.body == "truncated" else max(0, len(payload) - fault.short_by)
    cycle = getattr(receive, "__self__", None)
    if getattr(cycle, "transport", None) is None:
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
    headers.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": start["status"], "headers": headers})
    await send({"type": "http.response.body", "body": payload[:keep], "more_body": True})
    await _drop_connection(receive)


