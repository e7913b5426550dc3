"""Saving a finished job's files: find what is already on disk (also from an earlier process), fetch the rest,
and say what was saved. The I/O half of describing a job; core.report is the other, pure half."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from ..apiframe import ApiJob
from ..deadline import Deadline
from ..errors import ApiError, DownloadFailed, SaveError
from ..mixer import PAGE, STEMS, local_page
from ..vocabulary import JobStatus
from .memory import Memory, SplitSource
from .report import SavedFiles

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..apiframe.client import ApiframeClient
    from ..downloader import Downloader


def source_of(memory: Memory, job: ApiJob) -> SplitSource | None:
    """Where a stems job came from: remembered from this process, else read from the job's input (which
    apiframe does not promise to send)."""
    known = memory.sources.get(job.id)
    if known is not None:
        return known
    parent = job.parent_job_id
    if parent is None or not job.is_stems:
        return None
    raw = job.input or {}
    index = raw.get("index") if isinstance(raw.get("index"), int) else None
    track_id = raw.get("trackId") if isinstance(raw.get("trackId"), str) else None
    return SplitSource(parent_job_id=parent, index=index, track_id=track_id, title=None)


def saved_folder(downloader: Downloader, memory: Memory, job: ApiJob) -> Path | None:
    """The folder already holding this job's files, if any: named after the song when this process knows it,
    else found by the job id, so a new process never saves the same job twice under another name."""
    source = memory.sources.get(job.id)
    if source is not None and source.title:
        folder = downloader.folder_for(source.title, job.id)
        if folder.is_dir():
            return folder
    return downloader.find_folder(job.id)


def all_saved(downloader: Downloader, memory: Memory, job: ApiJob) -> bool:
    folder = saved_folder(downloader, memory, job)
    tracks = job.tracks
    return folder is not None and len(downloader.existing(folder, tracks)) == len(tracks) > 0


async def save_files(downloader: Downloader, client: ApiframeClient, memory: Memory, job: ApiJob, *,
                     download: bool, deadline: Deadline) -> SavedFiles:
    """The files of a COMPLETED job on disk, fetching the missing ones when `download` is on and the links
    still work. Raises DownloadFailed (with the job id and the links) when saving is impossible."""
    if job.state is not JobStatus.COMPLETED or not job.tracks:
        return SavedFiles()
    folder = saved_folder(downloader, memory, job)
    if folder is None:
        if not download or job.expired:
            return SavedFiles()
        folder = downloader.folder_for(await _song_title(client, memory, job, deadline), job.id)
    files = downloader.existing(folder, job.tracks)
    if not download or job.expired or len(files) == len(job.tracks):
        page = await mixer_page(memory, job, folder, files, write=download and not job.expired)
        return SavedFiles(folder=folder if files else None, files=files, mixer=page)
    try:
        saved = await downloader.save(folder, job.tracks, deadline)
    except SaveError as problem:
        raise DownloadFailed(_failure(job, problem), job_id=job.id, cause=problem) from None
    files = {s.track_id: s.path for s in saved if s.path is not None}
    return SavedFiles(folder=folder, files=files, timed_out=any(s.path is None for s in saved),
                      mixer=await mixer_page(memory, job, folder, files, write=True))


def release_folder(downloader: Downloader, job: ApiJob) -> None:
    """A FAILED or CANCELLED job will never have files: remove the folder split_stems reserved for it, and only
    while it is empty (nothing of the user's is ever removed)."""
    folder = downloader.find_folder(job.id)
    if folder is not None:
        with contextlib.suppress(OSError):
            folder.rmdir()


async def mixer_page(memory: Memory, job: ApiJob, folder: Path, files: dict[str, Path], *, write: bool
                     ) -> Path | None:
    """mixer.html beside both saved stems of a COMPLETED stems job, for hosts that do not show the mixer
    view: the one there, else (when `write`) written now, atomically and once. None for any other job, and
    when it cannot be written (the stems are saved all the same)."""
    if not job.is_stems or job.state is not JobStatus.COMPLETED or not all(stem in files for stem in STEMS):
        return None
    page = folder / PAGE
    if page.is_file():
        return page.resolve()
    if not write:
        return None
    html = local_page(_local_job(memory, job), {stem: files[stem].name for stem in STEMS})
    try:
        await anyio.to_thread.run_sync(_write_once, page, html)
    except (OSError, ValueError) as problem:
        log.warning("could not write %s (%s); the stems are saved all the same", page, problem)
        return None
    return page.resolve()


def _local_job(memory: Memory, job: ApiJob) -> dict[str, Any]:
    """What the page shows of the job: its status, its stems and the song's title."""
    known = memory.sources.get(job.id)
    title = known.title if known is not None else None
    tracks = [{"id": t.id, "title": t.title, "duration": t.duration} for t in job.tracks if t.id in STEMS]
    return {"job_id": job.id, "status": job.status, "done": job.done, "expired": job.expired, "tracks": tracks,
            "source": {"title": title} if title else None}


def _write_once(page: Path, html: str) -> None:
    """Write `page` whole or not at all, and never over one that is there (another call's or process's)."""
    fd, temporary = tempfile.mkstemp(dir=page.parent, prefix=".mixer-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(html)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, page)  # fails if the page exists: the first writer wins
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links
            if not page.exists():
                os.replace(temporary, page)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


async def _song_title(client: ApiframeClient, memory: Memory, job: ApiJob, deadline: Deadline) -> str | None:
    """The title to name the folder after: the split track's, or the song job's own."""
    if not job.is_stems:
        return next((t.title for t in job.tracks if t.title), None)
    source = source_of(memory, job)
    if source is None:
        return None
    if source.title:
        return source.title
    try:
        parent = await client.get_job(source.parent_job_id, deadline.sooner(5))
    except ApiError:
        return None
    tracks = parent.tracks
    match = [t for t in tracks if t.id == source.track_id] or (
        [tracks[source.index - 1]] if source.index and 0 < source.index <= len(tracks) else [])
    title = match[0].title if match else None
    track_id = source.track_id or (match[0].id if match else None)
    memory.sources[job.id] = SplitSource(source.parent_job_id, source.index, track_id, title)
    return title


def _failure(job: ApiJob, problem: SaveError) -> str:
    links = "; ".join(f"{t.id}: {t.audio_url}" for t in job.tracks if t.audio_url)
    return (f"Job {job.id} is done, but saving its files failed: {problem.reason}. To fix: {problem.fix}; then "
            f"call get_job with job_id={job.id} to save them (nothing is charged again). Meanwhile the links work "
            f"for about 24 h: {links}")
