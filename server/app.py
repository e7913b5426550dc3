"""The MCP server: its tools, its lifespan (one connection pool; the embedded sandbox in sandbox mode), and
argument errors rewritten into sentences a model can act on."""

from __future__ import annotations

import json
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

from tools import build_tools

from . import __version__
from .config import DEFAULT_BASE_URL, Settings
from .errors import InvalidArguments
from .runtime import Runtime

log = logging.getLogger("server")

INSTRUCTIONS = (
    "Splits Suno songs made through apiframe into a vocals stem and an instrumental stem. Usual flow: "
    "list_tracks -> split_stems (11 credits; repeats are free) -> get_job if the split was still running. "
    "Results carry next_step: follow it."
)


class StemsServer(MCPServer[Runtime]):
    """Arguments are held to the advertised inputSchema before the SDK's lenient conversion: `true` is not track
    1 and "30" is not a number of seconds, so a garbled call is refused instead of spending credits. Arrays sent
    as JSON text are still decoded first, as the SDK does (Claude Desktop sends them that way)."""

    def __init__(self, *args: Any, tools: list[Tool], **kwargs: Any) -> None:
        super().__init__(*args, tools=tools, **kwargs)
        self._schemas = {tool.name: tool.parameters for tool in tools}
        self._validators: dict[str, Any] = {}

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Runtime, Any] | None = None) -> CallToolResult | InputRequiredResult:
        schema = self._schemas.get(name)
        if schema is not None:
            arguments = _decode_json_text(arguments, schema)
            problems = self._problems(name, schema, arguments)
            if problems:
                raise InvalidArguments(f"Invalid arguments for {name}: {'; '.join(problems)}. "
                                       "Fix them and call again; nothing was sent.")
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise InvalidArguments(_explain(name, exc.__cause__)) from exc.__cause__
            raise


    def _problems(self, name: str, schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
        known = list(schema.get("properties", {}))
        unknown = sorted(set(arguments) - set(known))
        if unknown:
            return [f"there is no argument {', '.join(map(repr, unknown))} (the arguments are: {', '.join(known)})"]
        validator = self._validators.get(name)
        if validator is None:
            from jsonschema import Draft202012Validator, FormatChecker  # on first use, not at startup

            validator = Draft202012Validator(schema, format_checker=FormatChecker(["uuid"]))
            self._validators[name] = validator
        problems: dict[str, str] = {}
        errors = sorted(validator.iter_errors(arguments), key=lambda e: (list(e.absolute_path), e.validator != "type"))
        for error in errors:
            problems.setdefault(".".join(map(str, error.absolute_path)) or repr(error.message), _describe(error))
        return list(problems.values())


def _decode_json_text(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    decoded = dict(arguments)
    for key, value in arguments.items():
        types = schema.get("properties", {}).get(key, {}).get("type")
        if isinstance(value, str) and "string" not in (types if isinstance(types, list) else [types]):
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                continue
            if isinstance(parsed, (list, dict)):
                decoded[key] = parsed
    return decoded


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.absolute_path) or "arguments"
    shown = repr(error.instance) if not isinstance(error.instance, str) else repr(error.instance[:60])
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = " or ".join("null" if t == "null" else f"{'an' if t[0] in 'aeiou' else 'a'} {t}" for t in expected)
        return f"{where}: must be {words} (got {shown})"
    if error.validator == "maximum" and where == "wait_seconds":
        return (f"wait_seconds: at most {error.validator_value}, this server's SUNO_STEMS_MAX_WAIT (got {shown}); "
                "wait that long, then call get_job to keep waiting")
    if error.validator in ("maximum", "minimum"):
        word = "most" if error.validator == "maximum" else "least"
        return f"{where}: must be at {word} {error.validator_value} (got {shown})"
    if error.validator == "enum":
        allowed = ", ".join("null" if v is None else json.dumps(v) for v in error.validator_value)
        return f"{where}: must be one of {allowed} (got {shown})"
    if error.validator == "required":
        return f"{error.message.split(chr(39))[1]}: required"
    if error.validator == "format" and error.validator_value == "uuid":
        return f"{where}: must be an apiframe job id, a uuid like 3f2b8c1e-9d4a-4e8b-a1c2-5d6e7f8a9b0c (got {shown})"
    return f"{where}: {error.message}"


def _explain(tool: str, error: ValidationError) -> str:
    problems = []
    for issue in error.errors(include_url=False):
        where = ".".join(str(part) for part in issue["loc"]) or "arguments"
        given = issue.get("input")
        shown = repr(given) if isinstance(given, (int, float, bool)) or given is None else repr(str(given)[:60])
        if issue["type"] == "missing":
            problems.append(f"{where}: required")
        elif issue["type"] == "value_error":
            problems.append(f"{where}: {issue['msg'].removeprefix('Value error, ')} (got {shown})")
        else:
            problems.append(f"{where}: {issue['msg']} (got {shown})")
    return f"Invalid arguments for {tool}: " + "; ".join(problems) + ". Fix them and call again; nothing was sent."


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
