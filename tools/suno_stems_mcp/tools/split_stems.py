"""split_stems: split one track of a finished Suno song into stems, wait a while, return the Job."""

from __future__ import annotations

from typing import Annotated, Literal

from mcp_types import CallToolResult
from pydantic import Field

from suno_stems_mcp.core.results import Job
from suno_stems_mcp.core.split import SplitRequest, split_track

from .context import ToolContext, as_result, budget_for, progress_reporter, runtime_of
from .schemas import JobId, WebhookEvent


async def split_stems(
    ctx: ToolContext,
    parent_job_id: Annotated[JobId, Field(description="job id of the finished Suno song (from list_tracks)")],
    index: Annotated[Literal[1, 2] | None, Field(description="which of the song's two tracks: 1 or 2")] = None,
    track_id: Annotated[str | None, Field(min_length=1, max_length=200, description="or the track's id")] = None,
    wait_seconds: Annotated[int | None, Field(ge=0, description="how long to wait for the result")] = None,
    download: Annotated[bool | None, Field(description="save the files to disk (default: server setting)")] = None,
    webhook_url: Annotated[str | None, Field(max_length=2000, description="https URL apiframe notifies")] = None,
    webhook_events: Annotated[list[WebhookEvent] | None, Field(min_length=1)] = None,
) -> Annotated[CallToolResult, Job]:
    """Split one track of a finished Suno song into a vocals stem and an instrumental stem.

    Costs {price} apiframe credits; repeating the same split is free (the same job comes back). Choose the
    track with index or track_id, from list_tracks. Waits up to wait_seconds; if the split is still running,
    the result says so: then call get_job with its job_id. Finished stems are saved to disk unless
    download=false.
    """
    request = SplitRequest(parent_job_id=parent_job_id.lower(), index=index, track_id=track_id,
                           webhook_url=webhook_url, webhook_events=tuple(webhook_events) if webhook_events else None)
    job = await split_track(runtime_of(ctx), request, budget=budget_for(ctx, wait_seconds), download=download,
                            on_update=progress_reporter(ctx))
    return as_result(job)
