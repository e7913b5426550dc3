"""The MCP tools: list_tracks, split_stems and get_job, registered with their annotations.

Their schemas are trimmed of what a model does not need (pydantic's generated titles), unknown
arguments are refused, and `wait_seconds` advertises the server's actual limit.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations

from .get_job import get_job
from .list_tracks import list_tracks
from .split_stems import split_stems

TOOL_NAMES = ("list_tracks", "split_stems", "get_job")


def build_tools(max_wait: float) -> list[Tool]:
    read_only = {"read_only_hint": True, "destructive_hint": False, "idempotent_hint": True, "open_world_hint": True}
    tools = [
        Tool.from_function(list_tracks, title="List Suno tracks", description=describe(list_tracks),
                           annotations=ToolAnnotations(**read_only)),
        Tool.from_function(
            split_stems,
            title="Split a Suno track into stems",
            description=describe(split_stems),
            annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                        open_world_hint=True),
        ),
        Tool.from_function(get_job, title="Check a job", description=describe(get_job),
                           annotations=ToolAnnotations(**read_only)),
    ]
    for tool in tools:
        tool.parameters = _strict(_compact(tool.parameters))
        wait = tool.parameters["properties"].get("wait_seconds")
        if wait is not None:
            wait["maximum"] = int(max_wait)
            wait["default"] = min(wait["default"], int(max_wait))
        if tool.fn_metadata.output_schema is not None:
            output = _compact(tool.fn_metadata.output_schema, output=True)
            output.pop("description", None)
            tool.fn_metadata.output_schema = output
    return tools


def describe(fn: Callable[..., Any]) -> str:
    """A tool's description: its docstring as one line (indentation would be paid for in every conversation)."""
    return " ".join(inspect.cleandoc(fn.__doc__ or "").split())


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "additionalProperties": False}


def _compact(schema: Any, *, output: bool = False) -> Any:
    """The same schema in fewer bytes: no pydantic `title`s (a property *named* title stays), `X | None` as a
    type list instead of an anyOf, no `default: null`, and (in output schemas, which describe what this server
    itself produces) no `additionalProperties: false`."""
    if isinstance(schema, list):
        return [_compact(item, output=output) for item in schema]
    if not isinstance(schema, dict):
        return schema
    cleaned: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and value is None:
            continue
        if output and key == "description" and isinstance(value, str):
            continue  # hosts do not show output schemas to the model; the README documents each field
        if output and key == "additionalProperties" and value is False:
            continue
        if key in ("properties", "$defs") and isinstance(value, dict):
            cleaned[key] = {name: _compact(sub, output=output) for name, sub in value.items()}
        else:
            cleaned[key] = _compact(value, output=output)
    options = cleaned.get("anyOf")
    if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
        other = next(option for option in options if option != {"type": "null"})
        if isinstance(other.get("type"), str):
            merged = {**{k: v for k, v in cleaned.items() if k != "anyOf"}, **other}
            merged["type"] = [other["type"], "null"]
            if "enum" in merged:
                merged["enum"] = [*merged["enum"], None]
            return merged
    return cleaned
