"""stem_audio: the bytes of one stem of a finished split, a chunk at a time, for the mixer view (an MCP App).

Only this server's stems: the vocals or instrumental track of a COMPLETED stems job that this account's key
can read. From the file saved in the job's folder when there is one; else straight from the stem's audio_url,
a Range at a time, with the downloader's checks (https, public addresses, checked redirects, the size cap),
kept in memory only. Free and read-only: it saves nothing and charges nothing.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path

import anyio.to_thread

from ..apiframe import ApiJob
from ..deadline import Deadline
from ..downloader import extension, size_cap
from ..errors import InvalidArguments, SaveError
from ..vocabulary import SPLIT_PRICE, STEM_IDS, JobStatus
from .jobs import read_job
from .memory import Memory, Recent
from .results import StemAudio
from .runtime import Runtime
from .saving import saved_folder

CHUNK_BYTES = 512 * 1024
"""Raw bytes per chunk at most (about 683 KiB as base64): well under the tool-result limits hosts have."""
KNOWN_FOR = 60.0
"""Seconds a completed stems job read for one chunk answers the next chunks' checks (a load is 2 × ~9 calls)."""
MIME_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav", ".m4a": "audio/mp4", ".aac": "audio/aac",
              ".flac": "audio/flac", ".ogg": "audio/ogg", ".opus": "audio/ogg"}

_known: Recent[str, tuple[Memory, ApiJob, float]] = Recent(200)


async def stem_audio(runtime: Runtime, job_id: str, stem: str, offset: int, deadline: Deadline) -> StemAudio:
    if stem not in STEM_IDS:
        raise InvalidArguments(f"Invalid arguments for stem_audio: stem must be one of {', '.join(STEM_IDS)} (got "
                               f"{stem!r}). Nothing was sent.")
    job = await _completed_stems(runtime, job_id.lower(), deadline)
    track = next((t for t in job.tracks if t.id == stem), None)
    if track is None:
        raise InvalidArguments(f"Job {job.id} has no {stem} stem; its tracks are "
                               f"{', '.join(t.id for t in job.tracks) or 'none'}.")
    downloader = runtime.downloader()
    folder = saved_folder(downloader, runtime.memory, job)
    path = downloader.existing(folder, job.tracks).get(stem) if folder is not None else None
    if path is not None:
        data, size = await anyio.to_thread.run_sync(_read, path, offset)
        suffix = path.suffix.lower()
    else:
        if job.expired or not track.audio_url:
            raise SaveError(f"The {stem} file of job {job.id} has expired (apiframe keeps files about 24 h) and "
                            "this server has no saved copy",
                            f"call split_stems for the same track to make new stems ({SPLIT_PRICE} credits)")
        try:
            data, size = await downloader.read_range(track.audio_url, offset, CHUNK_BYTES,
                                                     cap=size_cap(track.duration), deadline=deadline)
        except TimeoutError:
            raise SaveError(f"Reading the {stem} stem of job {job.id} took longer than this call may",
                            "try again in a moment") from None
        except SaveError as problem:
            raise SaveError(f"Reading the {stem} stem of job {job.id} failed: {problem.reason}", problem.fix) from None
        suffix = extension(track.audio_url)
    if offset > size:
        raise InvalidArguments(f"Invalid arguments for stem_audio: offset {offset} is past the end of the {stem} "
                               f"stem of job {job.id} ({size} bytes). Nothing was sent.")
    end = offset + len(data)
    return StemAudio(job_id=job.id, stem=stem, offset=offset, next_offset=end if end < size else None, size=size,
                     mime=MIME_TYPES.get(suffix, "audio/mpeg"), data=base64.b64encode(data).decode("ascii"))


async def _completed_stems(runtime: Runtime, job_id: str, deadline: Deadline) -> ApiJob:
    """The job, checked: a COMPLETED stems job of this account (remembered a minute for the next chunks)."""
    memory = runtime.memory
    known = _known.get(job_id)
    if known is not None and known[0] is memory and known[2] > time.monotonic():
        return known[1]
    job = await read_job(runtime.api(), job_id, deadline)
    if not job.is_stems:
        raise InvalidArguments(f"Job {job.id} is not a stems job: stem_audio reads only the vocals and "
                               "instrumental of a split made with split_stems.")
    if job.state is not JobStatus.COMPLETED:
        raise InvalidArguments(f"Job {job.id} is {job.status}, not COMPLETED: its stems cannot be played yet. "
                               f"Call get_job with job_id={job.id} and wait_seconds to wait for it.")
    _known[job_id] = (memory, job, time.monotonic() + KNOWN_FOR)
    return job


def _read(path: Path, offset: int) -> tuple[bytes, int]:
    with path.open("rb") as file:
        size = file.seek(0, 2)
        file.seek(min(offset, size))
        return file.read(CHUNK_BYTES), size
