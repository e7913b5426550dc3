"""get_job: read any job, optionally wait for it, and save a finished job's files."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import Field

from suno_stems_mcp.errors import NotFound

from .jobs import deadlines, present, runtime_of, wait
from .schemas import Job, JobId


async def get_job(
    ctx: Context,
    job_id: Annotated[JobId, Field(description="the job's id")],
    wait_seconds: Annotated[int, Field(ge=0, description="how long to wait for it to finish")] = 0,
    download: Annotated[bool | None, Field(description="save finished files to disk (default: server setting)")]
    = None,
) -> Annotated[CallToolResult, Job]:
    """Check a stems job (or a song job): status, progress, audio URLs and saved files. Free.

    Use it when split_stems returned before the split finished; wait_seconds waits for completion.
    Saves a finished job's files unless download=false (a saved file is not fetched again).
    """
    runtime = runtime_of(ctx)
    client = runtime.api()
    until, call = deadlines(runtime, wait_seconds)
    try:
        job = await client.get_job(job_id, call)
    except NotFound:
        raise NotFound(
            f"There is no job {job_id} in this apiframe account. Job ids come from split_stems or list_tracks; "
            "check the id, or call list_tracks to see your songs.", status=404) from None
    noun = "splitting" if job.is_stems else "generating"
    if wait_seconds and not job.done:
        job = await wait(runtime, client, job, ctx, until=until, call=call, noun=noun)
    download = runtime.settings.download if download is None else download
    return await present(runtime, client, job, download=download, call=call,
                         wait_hint=min(40, int(runtime.settings.max_wait)))
