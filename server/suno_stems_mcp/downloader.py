"""Saving a job's audio to disk, safely.

Files go to `<output dir>/<slug of the song title>-<first 8 of the job id>/<name><ext>`, nowhere else
whatever a title or URL contains. Each is streamed (memory does not grow with its size) into a hidden
temporary file in the same folder, checked against `Content-Length`, and renamed into place only when
complete, so a name that exists is a whole file and is never fetched again. Only https URLs are fetched
(plain http only from a loopback host, and only when the sandbox is in use).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import tempfile
import threading
import time
import unicodedata
import weakref
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlsplit

import anyio

from .apiframe import ApiTrack
from .apiframe.models import STEM_IDS
from .deadline import Deadline
from .errors import SaveError
from .net import is_loopback_host

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset({".mp3", ".wav", ".m4a", ".flac", ".ogg", ".opus", ".aac"})
READ_TIMEOUT = 15.0
FLUSH_EVERY = 16 * 1024 * 1024
ATTEMPTS = 3


def slug(text: str | None, *, fallback: str = "track", limit: int = 60) -> str:
    """Lowercase ASCII words joined by hyphens: safe as a file or folder name on every system."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    joined = "-".join(words)[:limit].strip("-")
    return joined or fallback


def extension(url: str | None) -> str:
    suffix = PurePosixPath(unquote(urlsplit(url or "").path)).suffix.lower()
    return suffix if suffix in AUDIO_EXTENSIONS else ".mp3"


def folder_name(title: str | None, job_id: str) -> str:
    return f"{slug(title, fallback='suno')}-{slug(job_id[:8], fallback='job')}"


def file_name(track: ApiTrack, position: int) -> str:
    stem = track.id if track.id in STEM_IDS else f"{position}-{slug(track.title)}"
    return stem + extension(track.audio_url)


@dataclass(frozen=True)
class Saved:
    track_id: str
    path: Path | None
    """Where the complete file is, or None when time ran out before it was saved."""


class Downloader:
    """Bytes are pumped by a worker thread with a blocking client: per 64 KiB chunk, an event loop wake-up costs
    more than the copy (async streaming reached 0.55x curl's speed on loopback, a thread 0.9x). The thread
    checks the deadline at every chunk, so it always ends in time and cleans up after itself."""

    def __init__(self, output_dir: Path, *, user_agent: str, allow_loopback_http: bool = False) -> None:
        self._root = output_dir
        self._user_agent = user_agent
        self._allow_loopback_http = allow_loopback_http
        self._locks: weakref.WeakValueDictionary[Path, asyncio.Lock] = weakref.WeakValueDictionary()
        self._client: httpx.Client | None = None

    def _streaming_client(self) -> httpx.Client:
        if self._client is None:  # made on the first download; it never carries the API key
            import httpx

            self._client = httpx.Client(headers={"User-Agent": self._user_agent}, follow_redirects=True,
                                        limits=httpx.Limits(max_connections=10, max_keepalive_connections=4))
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def root(self) -> Path:
        return self._root

    def folder_for(self, title: str | None, job_id: str) -> Path:
        return self._root / folder_name(title, job_id)

    def existing(self, folder: Path, tracks: list[ApiTrack]) -> dict[str, Path]:
        """The tracks already saved in `folder` (complete by construction: only whole files get a name)."""
        found = {}
        for position, track in enumerate(tracks, start=1):
            path = folder / file_name(track, position)
            if path.is_file() and not path.is_symlink():
                found[track.id] = path.resolve()
        return found

    async def save(self, folder: Path, tracks: list[ApiTrack], deadline: Deadline) -> list[Saved]:
        """Save every track with an audio URL into `folder`, two at a time, before `deadline`."""
        target = self._prepare(folder)
        results: dict[str, Path | None] = {}
        failures: list[SaveError] = []

        async def one(position: int, track: ApiTrack) -> None:
            try:
                results[track.id] = await self._save_one(target, track, position, deadline)
            except SaveError as problem:
                failures.append(problem)

        async with anyio.create_task_group() as group:
            for position, track in enumerate(tracks, start=1):
                if track.audio_url:
                    group.start_soon(one, position, track)
        if failures:
            raise failures[0]
        return [Saved(track.id, results.get(track.id)) for track in tracks]

    def _prepare(self, folder: Path) -> Path:
        try:
            root = self._root.resolve()
            if folder.parent.resolve() != root or folder.name in ("", ".", ".."):
                raise SaveError(f"{folder} is not inside the output folder {root}", "this is a bug; please report it")
            root.mkdir(parents=True, exist_ok=True)
            folder.mkdir(exist_ok=True)
            real = folder.resolve()
        except OSError as exc:
            raise _os_problem(exc, folder) from None
        if real.parent != root or folder.is_symlink():
            raise SaveError(f"{folder} leads outside the output folder", f"remove {folder} and try again")
        return real

    async def _save_one(self, folder: Path, track: ApiTrack, position: int, deadline: Deadline) -> Path | None:
        import httpx

        assert track.audio_url is not None
        self._check_url(track.audio_url)
        destination = folder / file_name(track, position)
        lock = self._locks.get(destination)
        if lock is None:  # held only while in use, so the table does not grow with every file ever saved
            lock = self._locks[destination] = asyncio.Lock()
        async with lock:
            if destination.is_file() and not destination.is_symlink():
                return destination
            for attempt in range(1, ATTEMPTS + 1):
                if deadline.remaining() <= 0:
                    return None
                try:
                    await anyio.to_thread.run_sync(self._stream_to, track.audio_url, destination, deadline.expires,
                                                   abandon_on_cancel=False)
                    return destination
                except TimeoutError:
                    log.info("saving %s ran out of time; it will be saved on the next get_job", destination.name)
                    return None
                except (httpx.TransportError, _ShortBody) as exc:
                    if attempt == ATTEMPTS:
                        raise SaveError(f"the download of {track.id} kept breaking off ({type(exc).__name__})",
                                        "wait a moment") from None
                    await anyio.sleep(min(deadline.remaining(), 0.5 * attempt))
        return None

    def _stream_to(self, url: str, destination: Path, expires: float) -> None:
        """In a worker thread: download to a temporary file, and rename it into place only when complete."""
        remaining = expires - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        try:
            handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".part")
        except OSError as exc:
            raise _os_problem(exc, destination.parent) from None
        import httpx

        timeout = httpx.Timeout(min(READ_TIMEOUT, remaining), connect=min(5.0, remaining))
        try:
            with os.fdopen(handle, "wb") as out:
                with self._streaming_client().stream("GET", url, timeout=timeout) as response:
                    self._check_url(str(response.url))
                    if response.status_code != 200:
                        raise SaveError(
                            f"the file answered HTTP {response.status_code}",
                            "wait a minute (the file may not be on the CDN yet); if it keeps failing, the link has "
                            "expired (apiframe keeps files about 24 h) and split_stems must make new ones"
                            if response.status_code in (403, 404, 410) else "wait a moment",
                        )
                    expected = _content_length(response)
                    encoded = response.headers.get("content-encoding", "identity").lower() not in ("", "identity")
                    chunks = response.iter_bytes() if encoded else response.iter_raw()
                    received = flushed = 0
                    flusher = _Flusher(out)
                    for chunk in chunks:
                        if time.monotonic() > expires:
                            raise TimeoutError
                        out.write(chunk)
                        received += len(chunk)
                        if received - flushed >= FLUSH_EVERY:
                            flushed = received
                            flusher.start()
                    if expected is not None and not encoded and received != expected:
                        raise _ShortBody(f"got {received} of {expected} bytes")
                    flusher.finish()  # on disk before it gets its name: a name always means a whole file
            os.replace(temporary, destination)
        except OSError as exc:
            raise _os_problem(exc, destination.parent) from None
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and self._allow_loopback_http and is_loopback_host(parts.hostname):
            return
        raise SaveError(f"refusing to download from a non-https URL ({parts.scheme or 'no'} scheme)",
                        "the audio_url still works in a browser; open it there")


class _Flusher:
    """Flushes a file to disk in the background while it is still being written, so that the last fsync waits
    only for the tail instead of the whole file (which made a 100 MB download 1.5x slower)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._running: threading.Thread | None = None

    def start(self) -> None:
        if self._running is not None and self._running.is_alive():
            return
        self._out.flush()
        self._running = threading.Thread(target=self._sync, name="flush", daemon=True)
        self._running.start()

    def _sync(self) -> None:
        with contextlib.suppress(OSError):  # the final fsync reports any error that matters
            getattr(os, "fdatasync", os.fsync)(self._out.fileno())

    def finish(self) -> None:
        if self._running is not None:
            self._running.join()
        self._out.flush()
        os.fsync(self._out.fileno())


class _ShortBody(Exception):
    """The body ended before `Content-Length` bytes arrived."""


def _content_length(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["content-length"])
    except (KeyError, ValueError):
        return None


def _os_problem(exc: OSError, where: Path) -> SaveError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return SaveError(f"there is no room to write the file in {where} ({exc.strerror or 'disk full'})",
                         "free some space, or set SUNO_STEMS_OUTPUT_DIR to a folder on another disk")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return SaveError(f"this server may not write to {where}",
                         "set SUNO_STEMS_OUTPUT_DIR to a folder you can write to, or call again with download=false")
    return SaveError(f"saving to {where} failed ({exc.strerror or type(exc).__name__})",
                     "check the folder, or set SUNO_STEMS_OUTPUT_DIR to another one")
