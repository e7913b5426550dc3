"""get_job: read any job, optionally wait for it, and save a finished job's files."""

from __future__ import annotations

from typing import Annotated

from mcp_types import CallToolResult
from pydantic import Field

from suno_stems_mcp.core.jobs import follow_job
from suno_stems_mcp.core.results import Job

from .context import ToolContext, as_result, budget_for, progress_reporter, runtime_of
from .schemas import JobId


async def get_job(
    ctx: ToolContext,
    job_id: Annotated[JobId, Field(description="the job's id")],
    wait_seconds: Annotated[int | None, Field(ge=0, description="how long to wait for it to finish")] = None,
    download: Annotated[bool | None, Field(description="save finished files to disk (default: server setting)")]
    = None,
) -> Annotated[CallToolResult, Job]:
    """Check a stems job (or a song job): status, progress, audio URLs and saved files. Free.

    Use it when split_stems returned before the split finished; wait_seconds waits for completion.
    Saves a finished job's files unless download=false (a saved file is not fetched again).
    """
    runtime = runtime_of(ctx)
    job = await follow_job(runtime, job_id, budget=budget_for(ctx, wait_seconds or 0), download=download,
                           on_update=progress_reporter(ctx), wait=bool(wait_seconds))
    return as_result(job)
