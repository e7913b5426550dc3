"""split_stems: submit a stems split of one track of a finished Suno song, wait a while, return the Job."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult
from pydantic import Field

from suno_stems_mcp.apiframe import ApiJob, ApiTrack
from suno_stems_mcp.deadline import Deadline
from suno_stems_mcp.errors import ApiError, InvalidArguments, NotFound
from suno_stems_mcp.core.idempotency import MAX_ATTEMPTS, stems_key
from suno_stems_mcp.net import is_loopback_host
from suno_stems_mcp.core.runtime import Runtime, SplitSource

from .jobs import deadlines, present, runtime_of, wait
from .schemas import Job, JobId, WebhookEvent

if TYPE_CHECKING:
    from suno_stems_mcp.apiframe.client import ApiframeClient

log = logging.getLogger(__name__)

REPLAY_AGE_SECONDS = 3.0
"""A job created this long before apiframe answered the submission is an old one returned again."""


async def split_stems(
    ctx: Context,
    parent_job_id: Annotated[JobId, Field(description="job id of the finished Suno song (from list_tracks)")],
    index: Annotated[Literal[1, 2] | None, Field(description="which of the song's two tracks: 1 or 2")] = None,
    track_id: Annotated[str | None, Field(min_length=1, max_length=200, description="or the track's id")] = None,
    wait_seconds: Annotated[int, Field(ge=0, description="how long to wait for the result")] = 40,
    download: Annotated[bool | None, Field(description="save the files to disk (default: server setting)")] = None,
    webhook_url: Annotated[str | None, Field(description="https URL apiframe notifies")] = None,
    webhook_events: Annotated[list[WebhookEvent] | None, Field(min_length=1)] = None,
) -> Annotated[CallToolResult, Job]:
    """Split one track of a finished Suno song into a vocals stem and an instrumental stem.

    Costs 11 apiframe credits; repeating the same split is free (the same job comes back). Choose the track
    with index or track_id, from list_tracks. Waits up to wait_seconds; if the split is still running, the
    result says so: then call get_job with its job_id. Finished stems are saved to disk unless download=false.
    """
    runtime = runtime_of(ctx)
    _check_choice(index, track_id)
    _check_webhook(webhook_url, webhook_events, local_allowed=runtime.settings.sandbox)
    client = runtime.api()
    until, call = deadlines(runtime, wait_seconds)
    parent, track, position = await _preflight(client, parent_job_id, index, track_id, call)
    submitted = await _submit(runtime, client, parent, track, position, webhook_url, webhook_events, call,
                              will_wait=wait_seconds > 0)
    job = await wait(runtime, client, submitted.job, ctx, until=until, call=call, noun="splitting")
    reused = submitted.replayed or _created_before(job, submitted.server_time)
    download = runtime.settings.download if download is None else download
    return await present(runtime, client, job, download=download, call=call, reused=reused,
                         wait_hint=min(40, int(runtime.settings.max_wait)))


def _check_choice(index: int | None, track_id: str | None) -> None:
    if (index is None) == (track_id is None):
        raise InvalidArguments(
            "Give exactly one of index (1 or 2) or track_id to say which track of the song to split; call "
            "list_tracks with the song's job_id to see its tracks. Nothing was sent or charged."
        )


def _check_webhook(url: str | None, events: list[str] | None, *, local_allowed: bool) -> None:
    if events is not None and url is None:
        raise InvalidArguments("webhook_events needs a webhook_url; give both, or neither. Nothing was sent.")
    if url is None:
        return
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    local = parts is not None and parts.scheme == "http" and local_allowed and is_loopback_host(host)
    if parts is None or (parts.scheme != "https" and not local) or not host:
        raise InvalidArguments(
            f"webhook_url must be an https:// URL with a host name, not {url[:100]!r}. Fix it or leave it out "
            "(split_stems works without a webhook). Nothing was sent."
        )


async def _preflight(client: ApiframeClient, parent_id: str, index: int | None, track_id: str | None,
                     call: Deadline) -> tuple[ApiJob, ApiTrack, int]:
    """The parent must be a finished Suno song and have the track: checked before anything is charged."""
    try:
        parent = await client.get_job(parent_id, call)
    except NotFound:
        raise NotFound(
            f"There is no job {parent_id} in this apiframe account. Call list_tracks (without job_id) to see "
            "the finished Suno songs you can split. Nothing was charged.", status=404) from None
    if parent.is_stems:
        raise InvalidArguments(
            f"Job {parent_id} is a stems job (its tracks are already vocals and instrumental) and cannot be split "
            "again. Split the original song instead: call list_tracks to find it. Nothing was charged.")
    if parent.model is not None and parent.model.lower() != "suno":
        raise InvalidArguments(
            f"Job {parent_id} was made with model {parent.model!r}; only Suno songs can be split into stems. "
            "Call list_tracks to see your Suno songs. Nothing was charged.")
    if parent.status != "COMPLETED":
        if parent.status in ("QUEUED", "PROCESSING"):
            raise InvalidArguments(
                f"Song {parent_id} is not finished yet ({parent.status.lower()}, {parent.progress or 0}%). Wait "
                f"for it (get_job with job_id={parent_id} and wait_seconds=40), then split it. Nothing was charged.")
        raise InvalidArguments(
            f"Song {parent_id} is {parent.status} ({parent.error or 'no reason given'}), so it has no audio to "
            "split. Pick another song from list_tracks. Nothing was charged.")
    tracks = parent.tracks
    for position, track in enumerate(tracks, start=1):
        if (index is not None and position == index) or (track_id is not None and track.id == track_id):
            return parent, track, position
    wanted = f"index {index}" if index is not None else f"track_id {track_id!r}"
    existing = "; ".join(f"index {n}: track_id {t.id!r} ({t.title or 'untitled'})" for n, t in enumerate(tracks, 1))
    raise InvalidArguments(
        f"Song {parent_id} has no track with {wanted}. Its tracks are: {existing or 'none'}. Call split_stems "
        "again with one of them. Nothing was charged.")


@dataclass(frozen=True)
class _Submitted:
    job: ApiJob
    replayed: bool
    """Known already to be a job submitted before (and paid for then)."""
    server_time: float | None


async def _submit(
    runtime: Runtime,
    client: ApiframeClient,
    parent: ApiJob,
    track: ApiTrack,
    position: int,
    webhook_url: str | None,
    webhook_events: list[str] | None,
    call: Deadline,
    *,
    will_wait: bool,
) -> _Submitted:
    """POST the split under the derived key; move to the next attempt only past a dead or purged job."""
    body: dict[str, Any] = {"parentJobId": parent.id, "action": "stems", "trackId": track.id}
    if webhook_url is not None:
        body["webhookUrl"] = webhook_url
    if webhook_events is not None:
        body["webhookEvents"] = list(webhook_events)
    source = SplitSource(parent_job_id=parent.id, index=position, track_id=track.id, title=track.title)
    last_dead: ApiJob | None = None
    for attempt in range(1, MAX_ATTEMPTS + 1):
        key = stems_key(parent.id, track.id, attempt, webhook_url, webhook_events)
        submission = await client.submit_stems(body, idempotency_key=key, deadline=call)
        log.info("stems job %s for song %s track %s (attempt %d, status %s)", submission.job_id, parent.id,
                 position, attempt, submission.status)
        runtime.sources.setdefault(submission.job_id, source)
        seen_before = key in runtime.submitted_keys
        runtime.submitted_keys[key] = True
        if submission.status in ("FAILED", "CANCELLED"):
            continue
        if submission.status == "QUEUED" and not seen_before and will_wait:
            # Most likely a new job: the first poll reads it (and tells a replay by its age); a GET now would
            # only repeat 'QUEUED' and cost a request.
            placeholder = ApiJob(id=submission.job_id, status="QUEUED", progress=0)
            return _Submitted(placeholder, replayed=False, server_time=submission.server_time)
        try:
            job = await client.get_job(submission.job_id, call)
        except ApiError as exc:
            raise ApiError(
                f"The split was submitted as job {submission.job_id}, but reading it back failed: {exc} "
                f"Call get_job with job_id={submission.job_id} to follow it; nothing more will be charged.",
                status=exc.status, job_id=submission.job_id) from None
        replayed = seen_before or submission.status != "QUEUED" or _created_before(job, submission.server_time)
        if replayed and (job.status in ("FAILED", "CANCELLED") or (job.expired and not _saved(runtime, job))):
            last_dead = job
            continue
        return _Submitted(job, replayed=replayed, server_time=submission.server_time)
    reason = (last_dead.error if last_dead else None) or "failed"
    raise ApiError(
        f"The last {MAX_ATTEMPTS} splits of this track did not succeed (latest: {reason}); their credits were "
        "refunded. Try another track, or try again later.")


def _created_before(job: ApiJob, server_time: float | None) -> bool:
    if server_time is None or not job.created_at:
        return False
    try:
        created = datetime.fromisoformat(job.created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return created < server_time - REPLAY_AGE_SECONDS


def _saved(runtime: Runtime, job: ApiJob) -> bool:
    source = runtime.sources.get(job.id)
    downloader = runtime.downloader()
    folder = downloader.folder_for(source.title if source else None, job.id)
    return len(downloader.existing(folder, job.tracks)) == len(job.tracks) > 0
