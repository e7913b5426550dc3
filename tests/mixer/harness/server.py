"""A minimal loopback HTTP server for the host page, under the spec's default CSP."""

from __future__ import annotations

import asyncio
from pathlib import Path

WEB = Path(__file__).resolve().parent / "web"
_FILES = {"/": ("host.html", "text/html; charset=utf-8"), "/host.js": ("host.js", "text/javascript; charset=utf-8")}


class HostPageServer:
    def __init__(self, csp: str) -> None:
        self._csp = csp
        self._server: asyncio.base_events.Server | None = None
        self.url = ""

    async def __aenter__(self) -> HostPageServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            path = request.split(b" ", 2)[1].decode("latin-1").split("?", 1)[0]
            if path in _FILES:
                name, mime = _FILES[path]
                body = (WEB / name).read_bytes()
                head = f"HTTP/1.1 200 OK\r\nContent-Type: {mime}\r\nContent-Security-Policy: {self._csp}\r\n"
            else:
                body, head = b"not found", "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            head += f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()
