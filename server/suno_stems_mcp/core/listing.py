"""The tracks a person can split: one job's, or those of the account's most recent finished songs."""

from __future__ import annotations

from ..apiframe import ApiJob
from ..deadline import Deadline
from ..errors import InvalidArguments, NotFound, Rejected
from ..vocabulary import SPLIT_PRICE, JobStatus
from .results import TrackList, TrackRef
from .runtime import Runtime

STEMS_WHY_NOT = "this is a stems result (vocals/instrumental); split its original song instead"
HOW_TO_SPLIT = f"Split a track with split_stems(parent_job_id=job_id, index=index) — {SPLIT_PRICE} credits."


async def list_tracks(runtime: Runtime, *, job_id: str | None, limit: int, cursor: str | None,
                      deadline: Deadline) -> TrackList:
    client = runtime.api()
    if job_id is not None:
        job_id = job_id.lower()
        try:
            job = await client.get_job(job_id, deadline)
        except NotFound:
            raise NotFound(
                f"There is no job {job_id} in this apiframe account. Call list_tracks without job_id to see your "
                "recent songs.", status=404) from None
        return TrackList(tracks=_tracks(job), next_cursor=None, has_more=False, note=_job_note(job))
    try:
        page = await client.list_jobs(model="suno", status=JobStatus.COMPLETED.value, limit=limit, cursor=cursor,
                                      deadline=deadline)
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
        note = f"{counted}, newest first. {HOW_TO_SPLIT}" + (
            " More: call list_tracks with cursor=next_cursor." if more else "")
    return TrackList(tracks=tracks, next_cursor=page.next_cursor if more else None, has_more=more, note=note)


def _tracks(job: ApiJob) -> list[TrackRef]:
    if job.state is not JobStatus.COMPLETED:
        return []
    stems = job.is_stems
    return [
        TrackRef(job_id=job.id, index=position, track_id=track.id, title=track.title, duration=track.duration,
                 audio_url=track.audio_url, image_url=track.image_url, tags=track.tags, splittable=not stems,
                 why_not=STEMS_WHY_NOT if stems else None)
        for position, track in enumerate(job.tracks, start=1)
    ]


def _job_note(job: ApiJob) -> str:
    if job.state is JobStatus.COMPLETED:
        if job.is_stems:
            return "This job is a stems result: its tracks are the vocals and the instrumental of another song."
        return HOW_TO_SPLIT
    if job.state in (JobStatus.QUEUED, JobStatus.PROCESSING):
        return (f"This job is {job.status.lower()} ({job.progress or 0}%), so it has no tracks yet. Call get_job "
                f"with job_id={job.id} and wait_seconds to wait for it.")
    return f"This job is {job.status} ({job.error or 'no reason given'}), so it has no tracks."
