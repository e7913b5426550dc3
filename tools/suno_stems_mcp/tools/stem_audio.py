"""stem_audio: one chunk of a stem's bytes for the mixer view. App-only: listed to and callable by clients
that negotiated MCP Apps, whose hosts keep it from the model (`_meta.ui.visibility = ["app"]`)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from mcp.server.apps import client_supports_apps
from mcp_types import CallToolResult, TextContent
from pydantic import Field

from suno_stems_mcp.core.results import StemAudio
from suno_stems_mcp.core.stem_audio import stem_audio as read_stem
from suno_stems_mcp.errors import StemsError

from .context import ToolContext, budget_for, runtime_of
from .schemas import JobId

NOT_AN_APP = ("stem_audio is for the stem mixer view of hosts with MCP Apps, and this client did not negotiate "
              "the Apps extension. The stems are at the audio_url links and in the files get_job saves; nothing "
              "was sent.")


async def stem_audio(
    ctx: ToolContext,
    job_id: Annotated[JobId, Field(description="the stems job's id")],
    stem: Annotated[Literal["vocals", "instrumental"], Field(description="which stem")],
    offset: Annotated[int, Field(ge=0, description="byte offset: 0, then each next_offset")] = 0,
) -> Annotated[CallToolResult, StemAudio]:
    """For the stem mixer view only, not for the model: bytes of one stem of a finished split, base64, in
    chunks of at most 512 KiB. Free; reads only, saves nothing.
    """
    if not client_supports_apps(ctx):
        raise StemsError(NOT_AN_APP)
    chunk = await read_stem(runtime_of(ctx), job_id, stem, offset, budget_for(ctx, 0).call)
    data = chunk.model_dump(mode="json", exclude_none=True)
    summary = {key: value for key, value in data.items() if key != "data"}  # the bytes once, not twice
    text = json.dumps(summary, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)
