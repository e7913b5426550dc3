"""list_tracks: the Suno tracks that can be split, from one job or from the account's recent songs."""

from __future__ import annotations

from typing import Annotated

from mcp_types import CallToolResult
from pydantic import Field

from suno_stems_mcp.core import listing
from suno_stems_mcp.core.results import TrackList

from .context import ToolContext, as_result, budget_for, runtime_of
from .schemas import JobId


async def list_tracks(
    ctx: ToolContext,
    job_id: Annotated[JobId | None, Field(description="list this job's tracks (default: your recent songs)")]
    = None,
    limit: Annotated[int, Field(ge=1, le=50, description="how many songs (jobs) per page; each has 2 tracks")] = 10,
    cursor: Annotated[str | None, Field(max_length=2000, description="next_cursor of the previous page")] = None,
) -> Annotated[CallToolResult, TrackList]:
    """List Suno tracks you can split: one job's tracks, or those of your most recent finished songs. Free.

    Pass a track's job_id and index (or track_id) to split_stems.
    """
    budget = budget_for(ctx, 0)
    tracks = await listing.list_tracks(runtime_of(ctx), job_id=job_id, limit=limit, cursor=cursor,
                                       deadline=budget.call)
    return as_result(tracks)
