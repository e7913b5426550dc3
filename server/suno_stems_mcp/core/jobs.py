"""Reading a job, and waiting for it with progress."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..apiframe import ApiJob
from ..config import Settings
from ..deadline import Deadline
from ..errors import ApiError, ApiUnavailable, InvalidArguments, NotFound, RateLimited
from ..vocabulary import DEAD_STATUSES, JobStatus
from .budget import Budget
from .memory import Memory
from .report import Facts, SavedFiles, describe
from .results import Job
from .runtime import Runtime
from .saving import release_folder, save_files, source_of
from .waiting import OnUpdate, wait_for

if TYPE_CHECKING:
    from ..apiframe.client import ApiframeClient

log = logging.getLogger(__name__)


async def read_job(client: ApiframeClient, job_id: str, deadline: Deadline) -> ApiJob:
    try:
        return await client.get_job(job_id, deadline)
    except NotFound:
        raise NotFound(
            f"There is no job {job_id} in this apiframe account. Job ids come from split_stems or list_tracks; "
            "check the id, or call list_tracks to see your songs.", status=404) from None
    except (ApiUnavailable, RateLimited) as exc:
        exc.args = (f"{exc} Call get_job with job_id={job_id} again then; nothing is lost.",)
        raise
    except ApiError as exc:
        if job_id not in str(exc):
            exc.args = (f"Reading job {job_id}: {exc}",)
        raise


async def wait_for_job(client: ApiframeClient, memory: Memory, job: ApiJob, *, budget: Budget,
                       on_update: OnUpdate) -> ApiJob:
    """Poll until the job is final or the budget's wait ends, on the job's own schedule (shared with later
    calls). Waiting is a courtesy: when apiframe stops answering usably meanwhile, the job is described as it
    was last seen, with its next step, rather than the call failing."""
    latest = [job]

    async def seen(update: ApiJob) -> None:
        latest[0] = update
        await on_update(update)

    try:
        return await wait_for(client, job, until=budget.wait, call=budget.call, on_update=seen,
                              schedule=memory.schedule_for(job.id))
    except (ApiUnavailable, RateLimited) as exc:
        log.info("waiting for job %s stopped early: %s", job.id, exc)
        return latest[0]


def downloading(settings: Settings, asked: bool | None) -> bool:
    """Whether this call saves files: as asked, else as the server is set. An HTTP server saves to its own
    disk, so a call may not turn that on unless its operator did."""
    if asked is None:
        return settings.download
    if asked and settings.hosted:
        raise InvalidArguments(
            "download=true is refused: this is a hosted server, and it never saves files on its disk. Leave "
            "download out; the result's audio_url links are the files. Nothing was sent.")
    if asked and not settings.download and settings.transport != "stdio":
        raise InvalidArguments(
            "download=true is refused: this server runs over HTTP, and saving files on its disk is off (its "
            "operator can set SUNO_STEMS_DOWNLOAD=true). Leave download out; the result's audio_url links are "
            "the files. Nothing was sent.")
    return asked


async def conclude(runtime: Runtime, client: ApiframeClient, job: ApiJob, *, download: bool, budget: Budget,
                   reused: bool = False) -> Job:
    """Save what should be saved, then describe the job."""
    memory = runtime.memory
    saved = SavedFiles()
    if job.state is JobStatus.COMPLETED and job.tracks:
        saved = await save_files(runtime.downloader(), client, memory, job, download=download, deadline=budget.call)
    elif job.state in DEAD_STATUSES and not runtime.settings.hosted:
        release_folder(runtime.downloader(), job)
    settings = runtime.settings
    facts = Facts(download=download, wait_hint=budget.hint, reused=reused, sandbox=settings.sandbox,
                  downloads_allowed=settings.download or settings.transport == "stdio")
    return describe(job, source_of(memory, job), saved, facts)


async def follow_job(runtime: Runtime, job_id: str, *, budget: Budget, download: bool | None,
                     on_update: OnUpdate, wait: bool) -> Job:
    """get_job: read the job, wait for it when asked, save its files when it is done."""
    client = runtime.api()
    saving = downloading(runtime.settings, download)
    job = await read_job(client, job_id.lower(), budget.call)
    if wait and not job.done:
        job = await wait_for_job(client, runtime.memory, job, budget=budget, on_update=on_update)
    return await conclude(runtime, client, job, download=saving, budget=budget)
