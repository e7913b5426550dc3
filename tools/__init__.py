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
        Tool.from_function(get_job, title="Get a stems job", description=describe(get_job),
                           annotations=ToolAnnotations(**read_only)),
    ]
    for tool in tools:
        tool.parameters = _strict(_untitled(tool.parameters))
        wait = tool.parameters["properties"].get("wait_seconds")
        if wait is not None:
            wait["maximum"] = int(max_wait)
            wait["default"] = min(wait["default"], int(max_wait))
        if tool.fn_metadata.output_schema is not None:
            tool.fn_metadata.output_schema = _untitled(tool.fn_metadata.output_schema)
    return tools


def describe(fn: Callable[..., Any]) -> str:
    """A tool's description: its docstring as one line (indentation would be paid for in every conversation)."""
    return " ".join(inspect.cleandoc(fn.__doc__ or "").split())


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "additionalProperties": False}


def _untitled(schema: Any) -> Any:
    """The schema without pydantic's `title` annotations (a property *named* title is kept)."""
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    cleaned = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            cleaned[key] = {name: _untitled(sub) for name, sub in value.items()}
        else:
            cleaned[key] = _untitled(value)
    return cleaned
