"""The split: check the parent before anything is charged, submit under a derived key, move past dead or purged
attempts, and wait. Once apiframe has given a job id, every way this ends names it."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import anyio

from ..apiframe import ApiJob, ApiTrack, Submission
from ..deadline import Deadline
from ..errors import ApiError, ApiUnavailable, InvalidArguments, NotFound, RateLimited, StemsError
from ..vocabulary import DEAD_STATUSES, SPLIT_PRICE, JobStatus
from .budget import Budget
from .idempotency import MAX_ATTEMPTS, canonical_webhook, stems_key
from .memory import Memory, SplitSource
from .results import Job
from .runtime import Runtime
from .waiting import OnUpdate

if TYPE_CHECKING:
    from ..apiframe.client import ApiframeClient
    from ..downloader import Downloader

log = logging.getLogger(__name__)

REPLAY_MARGIN = 0.05
"""Seconds of slack when comparing a job's age with the time since the POST: timestamps are rounded to 1 ms."""
READ_BACK_TRIES = 4
"""How often a just-submitted job is read before apiframe's 'no such job' is believed to be a lag."""


@dataclass(frozen=True)
class SplitRequest:
    parent_job_id: str
    index: int | None
    track_id: str | None
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Submitted:
    job: ApiJob
    reused: bool
    """Nothing new was charged, as far as can be known: apiframe answered with a job that existed before."""


async def preflight(client: ApiframeClient, request: SplitRequest, deadline: Deadline) -> tuple[ApiJob, ApiTrack, int]:
    """The parent must be a finished Suno song and have the track: checked before anything is charged."""
    parent_id = request.parent_job_id
    nothing = "Nothing was submitted or charged."
    try:
        parent = await client.get_job(parent_id, deadline)
    except NotFound:
        raise NotFound(
            f"There is no job {parent_id} in this apiframe account. Call list_tracks (without job_id) to see "
            f"the finished Suno songs you can split. {nothing}", status=404) from None
    except StemsError as exc:
        raise _with_note(exc, nothing) from None
    if parent.is_stems:
        raise InvalidArguments(
            f"Job {parent_id} is a stems job (its tracks are already vocals and instrumental) and cannot be split "
            f"again. Split the original song instead: call list_tracks to find it. {nothing}")
    if parent.model is not None and parent.model.lower() != "suno":
        raise InvalidArguments(
            f"Job {parent_id} was made with model {parent.model!r}; only Suno songs can be split into stems. "
            f"Call list_tracks to see your Suno songs. {nothing}")
    if parent.state is not JobStatus.COMPLETED:
        if parent.state in (JobStatus.QUEUED, JobStatus.PROCESSING):
            raise InvalidArguments(
                f"Song {parent_id} is not finished yet ({parent.status.lower()}, {parent.progress or 0}%). Wait for "
                f"it (get_job with job_id={parent_id} and wait_seconds), then split it. {nothing}")
        raise InvalidArguments(
            f"Song {parent_id} is {parent.status} ({parent.error or 'no reason given'}), so it has no audio to "
            f"split. Pick another song from list_tracks. {nothing}")
    tracks = parent.tracks
    for position, track in enumerate(tracks, start=1):
        if (request.index is not None and position == request.index) or (
                request.track_id is not None and track.id == request.track_id):
            return parent, track, position
    wanted = f"index {request.index}" if request.index is not None else f"track_id {request.track_id!r}"
    existing = "; ".join(f"index {n}: track_id {t.id!r} ({t.title or 'untitled'})" for n, t in enumerate(tracks, 1))
    raise InvalidArguments(
        f"Song {parent_id} has no track with {wanted}. Its tracks are: {existing or 'none'}. Call split_stems "
        f"again with one of them. {nothing}")


async def submit(client: ApiframeClient, memory: Memory, downloader: Downloader | None, request: SplitRequest,
                 parent: ApiJob, track: ApiTrack, position: int, deadline: Deadline) -> Submitted:
    """POST the split under the derived key, read the job back, and move to the next attempt only past a
    replayed job that is dead, or purged with its files not saved."""
    from .saving import all_saved

    webhook = canonical_webhook(request.webhook_url, request.webhook_events)
    last_dead: ApiJob | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        key = stems_key(parent.id, track.id, attempt, webhook)
        sent = time.monotonic()
        submission = await client.submit_stems(parent.id, track.id, webhook, idempotency_key=key, deadline=deadline)
        log.info("stems job %s for song %s track %s (attempt %d, status %s)", submission.job_id, parent.id,
                 position, attempt, submission.status)
        memory.sources.setdefault(submission.job_id, SplitSource(parent.id, position, track.id, track.title))
        seen_before = key in memory.submitted_keys
        memory.submitted_keys[key] = True
        async with names_job(submission.job_id):
            try:
                job = await _read_back(client, submission, deadline)
            except (ApiUnavailable, RateLimited) as exc:  # it exists, as submitted; the next call reads it
                log.info("could not read job %s back yet: %s", submission.job_id, exc)
                job = ApiJob(id=submission.job_id, status=submission.status)
        replayed = (seen_before or submission.status != JobStatus.QUEUED or _created_before(job, parent.server_time)
                    or _older_than(job, time.monotonic() - sent))
        dead = job.state in DEAD_STATUSES or (
            job.expired and not (downloader is not None and all_saved(downloader, memory, job)))
        if replayed and dead:
            last_dead = job
            continue
        return Submitted(job, reused=replayed)
    reason = (last_dead.error if last_dead else None) or "failed"
    raise ApiError(
        f"The last {MAX_ATTEMPTS} splits of this track did not succeed (latest: {reason}); their credits were "
        "refunded. Try another track, or try again later.")


async def _read_back(client: ApiframeClient, submission: Submission, deadline: Deadline) -> ApiJob:
    """The job just submitted. apiframe may not show a new job at once (a read-after-write lag): a 'no such job',
    or another refusal, on the first reads is retried briefly before it is believed."""
    problem: ApiError | None = None
    for attempt in range(READ_BACK_TRIES):
        try:
            return await client.get_job(submission.job_id, deadline)
        except ApiError as exc:
            if exc.status not in (400, 403, 404) or deadline.remaining() < 1:
                raise
            problem = exc
            await anyio.sleep(min(0.25 * 2 ** attempt, deadline.remaining() / 2))
    assert problem is not None
    raise problem


@asynccontextmanager
async def names_job(job_id: str) -> AsyncIterator[None]:
    """Whatever goes wrong in here, the error names the job and says how to follow it: it was paid for."""
    try:
        yield
    except StemsError as exc:
        if job_id in str(exc) and "get_job" in str(exc):
            raise
        raise _job_error(job_id, str(exc)) from None
    except Exception as exc:
        log.exception("unexpected failure after job %s was submitted", job_id)
        raise _job_error(job_id, f"an unexpected problem on this server ({type(exc).__name__})") from None


def _job_error(job_id: str, what: str) -> ApiError:
    return ApiError(
        f"The split was submitted as job {job_id} ({SPLIT_PRICE} credits, refunded if it fails), but following it "
        f"failed: {what.rstrip('. ')}. Call get_job with job_id={job_id} to follow it; nothing more will be "
        "charged.", job_id=job_id)


def _with_note(exc: StemsError, note: str) -> StemsError:
    exc.args = (f"{exc} {note}",)
    return exc


def _older_than(job: ApiJob, seconds: float) -> bool:
    """The job had existed longer than `seconds` when it was read, on apiframe's own clock, so no skew between
    clocks matters: it ran from createdAt to completedAt, and it was at least (Date of the answer) - createdAt
    old. A job older than the time since this server sent its POST was not made by that POST: a replay, even
    one apiframe answered from its cache as "QUEUED" within the second a Date header cannot tell apart."""
    created = _timestamp(job.created_at)
    if created is None:
        return False
    ends = [end for end in (_timestamp(job.completed_at), job.server_time) if end is not None]
    return any(end - created > seconds + REPLAY_MARGIN for end in ends)


def _timestamp(moment: str | None) -> float | None:
    if not moment:
        return None
    try:
        return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _created_before(job: ApiJob, moment: float | None) -> bool:
    """The job was made before `moment` (apiframe's clock, from a Date header, which drops the fraction: a job
    made after it reads at least its whole second)."""
    if moment is None or not job.created_at:
        return False
    try:
        created = datetime.fromisoformat(job.created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return created < moment


async def split_track(runtime: Runtime, request: SplitRequest, *, budget: Budget, download: bool | None,
                      on_update: OnUpdate) -> Job:
    """split_stems: preflight, submit (or find the job already paid for), wait within the budget, save, describe."""
    from .jobs import conclude, downloading, wait_for_job

    client = runtime.api()
    saving = downloading(runtime.settings, download)
    parent, track, position = await preflight(client, request, budget.call)
    downloader = runtime.downloader() if saving or runtime.settings.download else None
    submitted = await submit(client, runtime.memory, downloader, request, parent, track, position, budget.call)
    job = submitted.job
    if saving and downloader is not None and not job.done:
        _reserve_folder(downloader, runtime.memory, track.title, job)  # conclude() releases it if the job dies
    async with names_job(job.id):
        if not job.done:
            job = await wait_for_job(client, runtime.memory, job, budget=budget, on_update=on_update)
        return await conclude(runtime, client, job, download=saving, budget=budget, reused=submitted.reused)


def _reserve_folder(downloader: Downloader, memory: Memory, title: str | None, job: ApiJob) -> None:
    """The song-named folder of a job not finished yet, made now and left empty: a later process that saves
    the files (get_job) finds it by the job id, where it could not learn the song (apiframe does not promise a
    stems job's `input`) and would name the folder after the job alone."""
    from .saving import saved_folder

    if not title or saved_folder(downloader, memory, job) is not None:
        return
    with contextlib.suppress(OSError):  # saving says what is wrong with the output folder, if it comes to that
        downloader.folder_for(title, job.id).mkdir(parents=True, exist_ok=True)
