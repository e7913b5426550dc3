"""The MCP server: its tools as published, one argument check in front of them, no bare errors, and its
lifespan (one connection pool; the embedded sandbox in sandbox mode)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, InputRequiredResult
from mcp_types import Tool as PublishedTool
from pydantic import SecretStr, ValidationError

from . import __version__
from .config import DEFAULT_BASE_URL, Settings
from .core.runtime import Runtime
from .errors import StemsError
from .tools import build_tools, published
from .tools.apps import build_apps, hide_app_only_tools
from .tools.arguments import ArgumentCheck, invalid
from .tools.context import client_of
from .vocabulary import SPLIT_PRICE

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Splits Suno songs made through apiframe into a vocals stem and an instrumental stem. Usual flow: "
    f"list_tracks -> split_stems ({SPLIT_PRICE} credits; repeats are free) -> get_job if the split was still "
    "running. Results carry next_step: follow it."
)


class StemsServer(MCPServer[Runtime]):
    def __init__(self, *args: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(*args, tools=build_tools(), extensions=[build_apps()], middleware=[hide_app_only_tools],
                         **kwargs)
        self._published = published()
        self._arguments = ArgumentCheck({tool.name: tool.input_schema for tool in self._published}, settings)

    async def list_tools(self) -> list[PublishedTool]:
        return list(self._published)

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Runtime, Any] | None = None) -> CallToolResult | InputRequiredResult:
        arguments = self._arguments.checked(name, arguments)
        started = time.monotonic()
        try:
            return await super().call_tool(name, arguments, context)
        except anyio.get_cancelled_exc_class():
            if context is not None:  # the client gave up on this call: its limit is no longer than this
                elapsed = time.monotonic() - started
                context.request_context.lifespan_context.memory.cut_after(client_of(context)[1], elapsed)
                log.info("%s was cancelled by the client after %.1f s; later calls stay under that", name, elapsed)
            raise
        except UnexpectedToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, StemsError):
                raise cause from None
            log.error("%s failed unexpectedly", name, exc_info=cause)
            raise StemsError(
                f"{name} failed because of an unexpected problem on this server ({type(cause).__name__}). Nothing "
                "new was charged by this call; try it again, and if it keeps failing, report it with the server's "
                "log.") from None
        except ToolError as exc:
            if isinstance(exc.__cause__, StemsError):  # one message shape: ours, without the SDK's prefix
                raise exc.__cause__ from None
            if isinstance(exc.__cause__, ValidationError):  # only if the SDK is stricter than the published schema
                problems = [f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}"
                            for e in exc.__cause__.errors(include_url=False)]
                raise invalid(name, problems) from None
            raise


class RunningSandbox(Protocol):
    url: str

    def stop(self) -> None: ...


def _private_sandbox() -> RunningSandbox:
    from .sandbox import Sandbox, ThreadedSandbox

    return ThreadedSandbox(Sandbox()).start()


def build_server(settings: Settings, *, start_sandbox: Callable[[], RunningSandbox] | None = None) -> StemsServer:
    """The server for these settings. In sandbox mode without an explicit APIFRAME_BASE_URL, the lifespan
    starts an apiframe emulator on a loopback port and points the client at it: `start_sandbox` (the command
    line passes the one all sandbox processes share), else one of this process's own."""

    @asynccontextmanager
    async def lifespan(_: MCPServer[Runtime]) -> AsyncIterator[Runtime]:
        running = None
        effective = settings
        if settings.sandbox:
            from .sandbox import DEMO_KEY

            if settings.base_url == DEFAULT_BASE_URL:
                running = await anyio.to_thread.run_sync(start_sandbox or _private_sandbox)
                effective = settings.with_changes(base_url=running.url, api_key=SecretStr(DEMO_KEY))
                log.info("sandbox mode: apiframe emulator at %s (no key, no network, no credits)", running.url)
            elif settings.api_key is None:
                effective = settings.with_changes(api_key=SecretStr(DEMO_KEY))
        elif settings.api_key is None and not settings.hosted:  # hosted: each request brings its key
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
        settings=settings,
        log_level=settings.log_level,
    )
