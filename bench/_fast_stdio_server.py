"""A PROTOTYPE, for measurement only: suno-stems-mcp over stdio with pipes read and written by the event loop.

The SDK's `stdio_server()` wraps stdin/stdout with `anyio.wrap_file`, so every line read and every write and
flush is a hop to a worker thread and back (about a dozen per tools/call, see call_overhead.py's profile).
This runs the very same server (`build_server(Settings.from_env())`) through the SDK's own `stdio_server`,
but hands it stream objects built on asyncio's `connect_read_pipe` / `connect_write_pipe`, so no thread is
involved. Like the SDK, it first moves the wire to private descriptors and points fd 0 at /dev/null and fd 1
at stderr, so stray output cannot corrupt the protocol.

call_overhead.py times it next to the real command, to size what such a transport would save. It is not the
product: nothing outside bench/ uses it.
"""

from __future__ import annotations

import asyncio
import os

import anyio
from mcp.server.stdio import stdio_server

from suno_stems_mcp import logs
from suno_stems_mcp.config import Settings
from suno_stems_mcp.mcp_server import build_server


class PipeLines:
    """`async for line in ...` over a StreamReader (what stdio_server expects of stdin)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> PipeLines:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", "replace")


class PipeWriter:
    """`await write(text)` / `await flush()` over a StreamWriter (what stdio_server expects of stdout)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> None:
        self._writer.write(text.encode("utf-8"))

    async def flush(self) -> None:
        await self._writer.drain()


async def main() -> None:
    settings = Settings.from_env(transport="stdio")
    logs.configure(settings.log_level, [s.get_secret_value() for s in (settings.api_key,) if s is not None])
    server = build_server(settings)
    wire_in, wire_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=64 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire_in, "rb", 0))
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin,
                                                        os.fdopen(wire_out, "wb", 0))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    lowlevel = server._lowlevel_server  # the same object MCPServer.run_stdio_async serves
    async with stdio_server(stdin=PipeLines(reader), stdout=PipeWriter(writer)) as (read, write):  # type: ignore[arg-type]
        await lowlevel.run(read, write, lowlevel.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
