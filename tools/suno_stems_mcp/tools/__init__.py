"""The MCP tools: list_tracks, split_stems and get_job for the model, and stem_audio for the mixer view (an
MCP App; see .apps). Each is a thin adapter over a use case in suno_stems_mcp.core; its docstring is its
description and its return annotation its output schema. `build_tools` registers them with their
annotations; `published` is how `tools/list` shows them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp_types import Tool as PublishedTool
from mcp_types import ToolAnnotations
from pydantic import BaseModel

from suno_stems_mcp.core.results import Job, StemAudio, TrackList
from suno_stems_mcp.mixer import URI as MIXER_URI
from suno_stems_mcp.vocabulary import SPLIT_PRICE

from .catalog import input_schema, output_schema
from .get_job import get_job
from .list_tracks import list_tracks
from .split_stems import split_stems
from .stem_audio import stem_audio

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)
_SPLITS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True)


@dataclass(frozen=True)
class _Spec:
    fn: Callable[..., Any]
    title: str
    annotations: ToolAnnotations
    returns: type[BaseModel]
    visibility: tuple[str, ...] = ()
    """Where an MCP Apps host shows the tool (`_meta.ui.visibility`), for a tool that renders the mixer."""

    @property
    def meta(self) -> dict[str, Any] | None:
        if not self.visibility:
            return None
        return {"ui": {"resourceUri": MIXER_URI, "visibility": list(self.visibility)}}


SPECS = (
    _Spec(list_tracks, "List Suno tracks", _READ_ONLY, TrackList),
    _Spec(split_stems, "Split a Suno track into stems", _SPLITS, Job, ("model", "app")),
    _Spec(get_job, "Check a job", _READ_ONLY, Job, ("model", "app")),
    _Spec(stem_audio, "Stem audio for the mixer", _READ_ONLY, StemAudio, ("app",)),
)
APP_ONLY = tuple(spec.fn.__name__ for spec in SPECS if spec.visibility == ("app",))
"""Tools only the mixer view calls: listed only to clients that negotiated MCP Apps (see .apps)."""
TOOL_NAMES = tuple(spec.fn.__name__ for spec in SPECS if spec.fn.__name__ not in APP_ONLY)
"""The model's tools, on every host."""


def describe(fn: Callable[..., Any]) -> str:
    """A tool's description: its docstring as one line (indentation would be paid for in every conversation),
    with the price filled in from the one place it is named."""
    return " ".join(inspect.cleandoc(fn.__doc__ or "").split()).replace("{price}", str(SPLIT_PRICE))


def build_tools() -> list[Tool]:
    return [Tool.from_function(spec.fn, title=spec.title, description=describe(spec.fn),
                               annotations=spec.annotations) for spec in SPECS]


def published() -> list[PublishedTool]:
    return [
        PublishedTool(name=spec.fn.__name__, title=spec.title, description=describe(spec.fn),
                      input_schema=input_schema(spec.fn), output_schema=output_schema(spec.returns),
                      annotations=spec.annotations, _meta=spec.meta)
        for spec in SPECS
    ]
