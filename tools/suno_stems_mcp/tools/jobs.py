"""What split_stems and get_job share: waiting with progress, saving the files, and the Job they return."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent

from suno_stems_mcp.apiframe import ApiJob
from suno_stems_mcp.deadline import Deadline
from suno_stems_mcp.errors import ApiError, DownloadFailed, SaveError
from suno_stems_mcp.core.runtime import Runtime, SplitSource
from suno_stems_mcp.core.waiting import wait_for

from .schemas import Job, Source, Track, TrackList

if TYPE_CHECKING:
    from suno_stems_mcp.apiframe.client import ApiframeClient

log = logging.getLogger(__name__)

GRACE_SECONDS = 3.0
"""How far past SUNO_STEMS_MAX_WAIT a call may run to finish its last request or file."""


def runtime_of(ctx: Context) -> Runtime:
    runtime = ctx.request_context.lifespan_context
    assert isinstance(runtime, Runtime)
    return runtime


def deadlines(runtime: Runtime, wait_seconds: int) -> tuple[Deadline, Deadline]:
    """(until when to wait for the job, until when the whole call may run)."""
    bound = runtime.settings.max_wait
    return Deadline(min(wait_seconds, bound)), Deadline(bound + GRACE_SECONDS)


def as_result(model: Job | TrackList) -> CallToolResult:
    """The same data twice: compact JSON for clients that show text, structured content for the rest."""
    data = model.model_dump(mode="json")
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def progress_reporter(ctx: Context, noun: str):  # type: ignore[no-untyped-def]
    """Sends `notifications/progress` while a call waits; a client that cannot take them costs nothing."""

    async def report(job: ApiJob) -> None:
        if job.status == "QUEUED":
            message = f"{noun.capitalize()}: queued at apiframe"
        elif job.done:
            message = f"{noun.capitalize()}: {job.status.lower()}"
        else:
            message = f"{noun.capitalize()}: {job.progress or 0}%"
        try:
            await ctx.report_progress(100 if job.status == "COMPLETED" else (job.progress or 0), 100, message)
        except Exception:  # noqa: BLE001 - progress is a courtesy; never let it fail the call
            log.debug("progress notification not delivered", exc_info=True)

    return report


async def wait(runtime: Runtime, client: ApiframeClient, job: ApiJob, ctx: Context, *, until: Deadline,
               call: Deadline, noun: str) -> ApiJob:
    return await wait_for(client, job, until=until, call=call, on_update=progress_reporter(ctx, noun),
                          schedule=runtime.schedule_for(job.id))


def source_of(runtime: Runtime, job: ApiJob) -> SplitSource | None:
    """Where a stems job came from: remembered from this process, else read from the job's input."""
    known = runtime.sources.get(job.id)
    if known is not None:
        return known
    parent = job.parent_job_id
    if parent is None or not job.is_stems:
        return None
    raw = job.input or {}
    index = raw.get("index") if isinstance(raw.get("index"), int) else None
    track_id = raw.get("trackId") if isinstance(raw.get("trackId"), str) else None
    return SplitSource(parent_job_id=parent, index=index, track_id=track_id, title=None)


async def song_title(runtime: Runtime, client: ApiframeClient, job: ApiJob, source: SplitSource | None,
                     call: Deadline) -> str | None:
    """The title to name the folder after: the split track's, or the song job's own."""
    if not job.is_stems:
        return next((t.title for t in job.tracks if t.title), None)
    if source is None:
        return None
    if source.title:
        return source.title
    try:
        parent = await client.get_job(source.parent_job_id, call.sooner(5))
    except ApiError:
        return None
    tracks = parent.tracks
    match = [t for t in tracks if t.id == source.track_id] or (
        [tracks[source.index - 1]] if source.index and 0 < source.index <= len(tracks) else [])
    title = match[0].title if match else None
    track_id = source.track_id or (match[0].id if match else None)
    runtime.sources[job.id] = SplitSource(source.parent_job_id, source.index, track_id, title)
    return title


async def present(
    runtime: Runtime,
    client: ApiframeClient,
    job: ApiJob,
    *,
    download: bool,
    call: Deadline,
    reused: bool = False,
    wait_hint: int = 40,
) -> CallToolResult:
    """Save the files if asked and possible, and describe the job with the one next step that fits."""
    source = source_of(runtime, job)
    files: dict[str, Path] = {}
    saved_all = True
    folder: Path | None = None
    if job.status == "COMPLETED" and job.tracks and (download or job.expired):
        downloader = runtime.downloader()
        folder = downloader.folder_for(await song_title(runtime, client, job, source, call), job.id)
        files = downloader.existing(folder, job.tracks)
        if download and not job.expired and len(files) < len(job.tracks):
        
            try:
                saved = await downloader.save(folder, job.tracks, call)
            except SaveError as problem:
                raise DownloadFailed(_save_failure(job, problem), job_id=job.id, cause=problem) from None
            files = {s.track_id: s.path for s in saved if s.path is not None}
            saved_all = len(files) == len([t for t in job.tracks if t.audio_url])
    source = source_of(runtime, job)  # the parent lookup above may have completed it
    model = Job(
        job_id=job.id,
        status=job.status,
        done=job.done,
        progress=job.progress,
        credit_cost=job.credit_cost,
        error=job.error,
        expired=job.expired,
        created_at=job.created_at,
        completed_at=job.completed_at,
        tracks=[
            Track(id=t.id, title=t.title, duration=t.duration, audio_url=t.audio_url, image_url=t.image_url,
                  tags=t.tags, file=str(files[t.id]) if t.id in files else None)
            for t in job.tracks
        ],
        source=Source(parent_job_id=source.parent_job_id, index=source.index, track_id=source.track_id)
        if source else None,
        reused=reused,
        sandbox=runtime.settings.sandbox,
        next_step=next_step(job, files=files, folder=folder, download=download, saved_all=saved_all,
                            reused=reused, wait_hint=wait_hint),
    )
    return as_result(model)


def next_step(job: ApiJob, *, files: dict[str, Path], folder: Path | None, download: bool, saved_all: bool,
              reused: bool, wait_hint: int) -> str:
    stems = job.is_stems
    work, things = ("splitting", "stems") if stems else ("generating", "songs")
    free = "This track was already split, so nothing new was charged. " if reused else ""
    if not job.done:
        state = "queued at apiframe" if job.status == "QUEUED" else f"{job.progress or 0}%"
        return (f"{free}Still {work} ({state}). Call get_job with job_id={job.id} and wait_seconds={wait_hint} "
                "to keep waiting; no credits are charged for that.")
    if job.status in ("FAILED", "CANCELLED"):
        what = (f"The job failed: {(job.error or 'apiframe gave no reason').rstrip('. ')}."
                if job.status == "FAILED" else "The job was cancelled.")
        retry = ("Call split_stems again to retry (a new attempt costs 11 credits, refunded if it fails too)."
                 if stems else "This server cannot remake a song; call list_tracks to pick another one to split.")
        return f"{what} Its credits were refunded. {retry}"
    if job.status != "COMPLETED":
        return f"apiframe reports status {job.status}. Call get_job with job_id={job.id} later to check again."
    if not job.tracks:
        return (f"apiframe reports the job COMPLETED but lists no tracks yet. Call get_job with job_id={job.id} in a "
                "minute; nothing more is charged.")
    if job.expired:
        kept = f" The files saved earlier are still in {folder}." if files else ""
        again = (" To get the stems again, call split_stems for the same track (11 credits)." if stems else "")
        return (f"{free}Done, but apiframe has deleted this job's files (it keeps them about 24 h), so the links no "
                f"longer work.{kept}{again}")
    if files and saved_all:
        return f"{free}Done: the files are saved in {folder}. The audio_url links also work for about 24 h."
    if download:
        return (f"{free}Done, but only {len(files)} of {len(job.tracks)} files were saved before the time limit. "
                f"Call get_job with job_id={job.id} to finish saving them (free).")
    return (f"{free}Done: the {things} are at the audio_url links. apiframe deletes them about 24 h after "
            f"completion, so save them soon (get_job with job_id={job.id} and download=true saves them on this "
            "machine).")


def _save_failure(job: ApiJob, problem: SaveError) -> str:
    links = "; ".join(f"{t.id}: {t.audio_url}" for t in job.tracks if t.audio_url)
    return (f"Job {job.id} is done, but saving its files failed: {problem.reason}. To fix: {problem.fix}; then "
            f"call get_job with job_id={job.id} to save them (nothing is charged again). Meanwhile the links work "
            f"for about 24 h: {links}")
