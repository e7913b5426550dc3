"""The ASGI layer in front of the sandbox's routes: records every request and plays the faults asked for."""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
from http import HTTPStatus
from typing import TYPE_CHECKING

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
        if fault.redirect is not None:
            await _redirect(fault, scope, recording_send)
            return
        if fault.status is not None:
            await _fault_response(fault, recording_send)
            return
        if fault.fakes_body:
            await _fake_body(fault, recording_send, receive)
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
    else:
        await _endless(send, receive)


async def _answer(send: Send, payload: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"audio/wav"), (b"content-length", str(len(payload)).encode()), *extra]
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
