"""list_tracks: the Suno tracks that can be split, from one job or from the account's recent songs."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import Field

from suno_stems_mcp.apiframe import ApiJob
from suno_stems_mcp.deadline import Deadline
from suno_stems_mcp.errors import InvalidArguments, NotFound, Rejected

from .jobs import GRACE_SECONDS, as_result, runtime_of
from .schemas import JobId, TrackList, TrackRef

STEMS_WHY_NOT = "this is a stems result (vocals/instrumental); split its original song instead"


async def list_tracks(
    ctx: Context,
    job_id: Annotated[JobId | None, Field(description="list this job's tracks (default: your recent songs)")]
    = None,
    limit: Annotated[int, Field(ge=1, le=50, description="how many songs (jobs) per page; each has 2 tracks")] = 10,
    cursor: Annotated[str | None, Field(max_length=2000, description="next_cursor of the previous page")] = None,
) -> Annotated[CallToolResult, TrackList]:
    """List Suno tracks you can split: one job's tracks, or those of your most recent finished songs. Free.

    Pass a track's job_id and index (or track_id) to split_stems.
    """
    runtime = runtime_of(ctx)
    client = runtime.api()
    call = Deadline(runtime.settings.max_wait + GRACE_SECONDS)
    if job_id is not None:
        try:
            job = await client.get_job(job_id, call)
        except NotFound:
            raise NotFound(
                f"There is no job {job_id} in this apiframe account. Call list_tracks without job_id to see your "
                "recent songs.", status=404) from None
        return as_result(TrackList(tracks=_tracks(job), next_cursor=None, has_more=False, note=_job_note(job)))
    try:
        page = await client.list_jobs(model="suno", status="COMPLETED", limit=limit, cursor=cursor, deadline=call)
    except Rejected:
        if cursor is None:
            raise
        raise InvalidArguments(
            "That cursor is not valid here (it may come from another listing, or be too old). Call list_tracks "
            "without cursor to start again from the newest songs.") from None
    tracks = [track for job in page.jobs for track in _tracks(job)]
    more = page.has_more and page.next_cursor is not None
    if not page.jobs:
        note = ("No finished Suno songs in this account yet" + (" on this page." if cursor else ". Make one with "
                "apiframe first; this server splits songs, it does not write them."))
    else:
        songs = sum(1 for job in page.jobs if not job.is_stems)
        results = len(page.jobs) - songs
        counted = f"{songs} finished song{'s' * (songs != 1)}" + (
            f" and {results} stems result{'s' * (results != 1)}" if results else "")
        note = (f"{counted}, newest first. Split a track with split_stems(parent_job_id=job_id, index=index) — 11 "
                "credits." + (" More: call list_tracks with cursor=next_cursor." if more else ""))
    return as_result(TrackList(tracks=tracks, next_cursor=page.next_cursor if more else None, has_more=more,
                               note=note))


def _tracks(job: ApiJob) -> list[TrackRef]:
    if job.status != "COMPLETED":
        return []
    stems = job.is_stems
    return [
        TrackRef(job_id=job.id, index=position, track_id=track.id, title=track.title, duration=track.duration,
                 audio_url=track.audio_url, image_url=track.image_url, tags=track.tags, splittable=not stems,
                 why_not=STEMS_WHY_NOT if stems else None)
        for position, track in enumerate(job.tracks, start=1)
    ]


def _job_note(job: ApiJob) -> str:
    if job.status == "COMPLETED":
        if job.is_stems:
            return "This job is a stems result: its tracks are the vocals and the instrumental of another song."
        return "Split a track with split_stems(parent_job_id=job_id, index=index) — 11 credits."
    if job.status in ("QUEUED", "PROCESSING"):
        return (f"This job is {job.status.lower()} ({job.progress or 0}%), so it has no tracks yet. Call get_job "
                f"with job_id={job.id} and wait_seconds=40 to wait for it.")
    return f"This job is {job.status} ({job.error or 'no reason given'}), so it has no tracks."
