"""A job, described: the Job a tool returns and the one next step that fits. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..apiframe import ApiJob
from ..vocabulary import SPLIT_PRICE, JobStatus
from .memory import SplitSource
from .results import Job, Source, Track


@dataclass(frozen=True)
class SavedFiles:
    """What saving a job's files found or did."""

    folder: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    """track id → the complete file on disk."""
    timed_out: bool = False
    """The call's time ran out before every file was saved; the next call continues where this one stopped."""
    mixer: Path | None = None
    """mixer.html beside a stems job's saved files (for hosts that do not show the mixer view)."""


@dataclass(frozen=True)
class Facts:
    """What the caller knows about this call that the job itself does not say."""

    download: bool
    """Saving files is on for this call."""
    wait_hint: int
    """The wait_seconds to suggest for the next call."""
    reused: bool = False
    sandbox: bool = False
    downloads_allowed: bool = True
    """A call may ask for download=true (not on an HTTP server whose operator left downloads off)."""


def describe(job: ApiJob, source: SplitSource | None, saved: SavedFiles, facts: Facts) -> Job:
    files = saved.files
    return Job(
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
        mixer=str(saved.mixer) if saved.mixer is not None else None,
        source=Source(parent_job_id=source.parent_job_id, index=source.index, track_id=source.track_id,
                      title=source.title) if source else None,
        reused=facts.reused,
        sandbox=facts.sandbox,
        next_step=next_step(job, saved, facts),
    )


def next_step(job: ApiJob, saved: SavedFiles, facts: Facts) -> str:
    stems = job.is_stems
    work, things = ("splitting", "stems") if stems else ("generating", "songs")
    free = "This track was already split, so nothing new was charged. " if facts.reused else ""
    again = f"Call get_job with job_id={job.id}"
    state = job.state
    if state in (JobStatus.QUEUED, JobStatus.PROCESSING):
        where = "queued at apiframe" if state is JobStatus.QUEUED else f"{job.progress or 0}%"
        return (f"{free}Still {work} ({where}). {again} and wait_seconds={facts.wait_hint} to keep waiting; no "
                "credits are charged for that.")
    if state is JobStatus.FAILED or state is JobStatus.CANCELLED:
        what = (f"The job failed: {(job.error or 'apiframe gave no reason').rstrip('. ')}."
                if state is JobStatus.FAILED else "The job was cancelled.")
        if stems:
            return (f"{what} Its {SPLIT_PRICE} credits were refunded. To retry, call split_stems again with the same "
                    f"track: the new attempt costs {SPLIT_PRICE} credits, refunded if it fails too.")
        return (f"{what} Its credits were refunded. This server cannot remake a song; call list_tracks to pick "
                "another one to split.")
    if state is None:
        return (f"apiframe reports status {job.status!r}, which this server does not know, so it cannot tell "
                f"whether the job will finish, and waiting would not tell. Tell the person apiframe's status as it "
                "is; there is nothing more to call for this job now.")
    if not job.tracks:
        return (f"apiframe reports the job COMPLETED but lists no tracks yet. {again} in a minute; nothing more is "
                "charged.")
    folder, files = saved.folder, saved.files
    if job.expired:
        kept = f" The files saved earlier are still in {folder}." if files else ""
        remake = (f" To get the stems again, call split_stems for the same track ({SPLIT_PRICE} credits)."
                  if stems and len(files) < len(job.tracks) else "")
        return (f"{free}Done, but apiframe has deleted this job's files (it keeps them about 24 h), so the links no "
                f"longer work.{kept}{remake}")
    links = ("work while a sandbox process runs" if facts.sandbox else "also work for about 24 h")
    wanted = [t for t in job.tracks if t.audio_url]
    if files and len(files) >= len(wanted):
        page = "; mixer.html there plays them together" if saved.mixer is not None else ""
        return f"{free}Done: the files are saved in {folder}{page}. The audio_url links {links}."
    if facts.download:
        why = "before this call's time ran out" if saved.timed_out else "so far"
        return (f"{free}Done, but only {len(files)} of {len(wanted)} files were saved {why}. {again} to continue "
                "saving them where this call stopped (free).")
    keep = ("they work while a sandbox process runs" if facts.sandbox
            else "apiframe deletes them about 24 h after completion, so save them soon")
    how = (f" (get_job with job_id={job.id} and download=true saves them on this machine)"
           if facts.downloads_allowed else "")
    return f"{free}Done: the {things} are at the audio_url links; {keep}{how}."
