"""The MCP server: its tools, its lifespan (one connection pool; the embedded sandbox in sandbox mode), and
argument errors rewritten into sentences a model can act on."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import CallToolResult, InputRequiredResult
from pydantic import SecretStr, ValidationError

from .tools import build_tools

from . import __version__
from .tools.arguments import ArgumentCheck, explain
from .config import DEFAULT_BASE_URL, Settings
from .errors import InvalidArguments
from .core.runtime import Runtime

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Splits Suno songs made through apiframe into a vocals stem and an instrumental stem. Usual flow: "
    "list_tracks -> split_stems (11 credits; repeats are free) -> get_job if the split was still running. "
    "Results carry next_step: follow it."
)


class StemsServer(MCPServer[Runtime]):
    """Arguments are held to the advertised inputSchema (server.arguments) before the SDK's lenient conversion."""

    def __init__(self, *args: Any, tools: list[Tool], **kwargs: Any) -> None:
        super().__init__(*args, tools=tools, **kwargs)
        self._arguments = ArgumentCheck({tool.name: tool.parameters for tool in tools})

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Runtime, Any] | None = None) -> CallToolResult | InputRequiredResult:
        arguments = self._arguments.decoded(name, arguments)
        problems = self._arguments.problems(name, arguments)
        if problems:
            raise InvalidArguments(f"Invalid arguments for {name}: {'; '.join(problems)}. "
                                   "Fix them and call again; nothing was sent.")
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise InvalidArguments(explain(name, exc.__cause__)) from exc.__cause__
            raise



def build_server(settings: Settings) -> StemsServer:
    """The server for these settings. In sandbox mode without an explicit APIFRAME_BASE_URL, the lifespan
    starts the embedded apiframe emulator on a loopback port and points the client at it."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        running = None
        effective = settings
        if settings.sandbox:
            from .sandbox import DEMO_KEY

            if settings.base_url == DEFAULT_BASE_URL:
                from .sandbox import Sandbox, ThreadedSandbox

                running = await anyio.to_thread.run_sync(lambda: ThreadedSandbox(Sandbox()).start())
                effective = settings.with_changes(base_url=running.url, api_key=SecretStr(DEMO_KEY))
                log.info("sandbox mode: apiframe emulator at %s (no key, no network, no credits)", running.url)
            elif settings.api_key is None:
                effective = settings.with_changes(api_key=SecretStr(DEMO_KEY))
        elif settings.api_key is None:
            log.warning("APIFRAME_API_KEY is not set: tools will explain how to set it (or run with --sandbox)")
        runtime = Runtime(effective)
        try:
            yield runtime
        finally:
            await runtime.aclose()
            if running is not None:
                await anyio.to_thread.run_sync(running.stop)

    return StemsServer(
        "suno-stems-mcp",
        title="Suno Stems",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        tools=build_tools(settings.max_wait),
        log_level=settings.log_level,  # type: ignore[arg-type]
    )
