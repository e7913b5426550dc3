"""Saving a job's audio to disk: safely, within the caller's deadline, and a little more on each call if need be.

    downloader = Downloader(output_dir, user_agent=..., allow_loopback_http=False)
    folder = downloader.find_folder(job_id) or downloader.folder_for(title, job_id)
    done = downloader.existing(folder, tracks)              # {track id: path} of the complete files there
    saved = await downloader.save(folder, tracks, deadline)  # [Saved(track_id, path, timed_out, received, total)]
    await downloader.aclose()

Where: `<output dir>/<slug of the song title>-<first 8 of the job id>/<vocals|instrumental|n-title><ext>`, and
nowhere else whatever a title or URL holds; `folder_name` is the one place the folder's name is made.

How a file arrives: streamed into `.<name>.part` beside it, with `.<name>.part.json` saying what those bytes are
(the URL without its query, the ETag or Last-Modified, the length), then synced and renamed into place, so a
name that exists is a whole file and is never fetched again. A call that runs out of time returns
`Saved(timed_out=True)` and keeps the part; the next call, in this process or a new one, asks for the rest
(`Range` with `If-Range`), appends it on a 206 and starts again on a 200. Partial files that cannot be resumed,
of files no longer asked for, or older than STALE_AFTER are removed; no other file is touched.

What it refuses, before connecting: anything but https (plain http only from a loopback host when
`allow_loopback_http`, i.e. for the sandbox); more than MAX_REDIRECTS redirects; any hop to a host with an
address that is not public (private, link-local, multicast, unspecified, reserved; loopback outside the
sandbox); a body past `size_cap` for the track's duration, decoded or not. Failures are `SaveError`s that
say what happened and what to do.

What it never does: outlive the caller's deadline whatever the CDN does (every wait, on the network or on
another call's transfer of the same file, ends at the deadline, and a transfer ended so writes nothing more);
carry the apiframe key (it has none); log a URL's query (signed links carry tokens); take capacity from the
rest of the server (its own connection pool, its own thread limiter for the disk and DNS, at most
MAX_TRANSFERS files at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import os
import random
import re
import socket
import ssl
import stat
import threading
import time
import unicodedata
import weakref
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import anyio
import anyio.to_thread
import httpcore

from .apiframe import ApiTrack
from .deadline import Deadline
from .errors import SaveError
from .net import is_loopback_host
from .vocabulary import STEM_IDS

try:
    import fcntl
except ImportError:  # Windows: no lock between processes saving into the same folder
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

AUDIO_EXTENSIONS = frozenset({".mp3", ".wav", ".m4a", ".flac", ".ogg", ".opus", ".aac"})
MAX_TRANSFERS = 4
"""Files downloading at once in this process; more wait for a turn (within their own deadline)."""
MAX_REDIRECTS = 5
ATTEMPTS = 4
"""Tries per file and call when the CDN breaks off or answers 5xx; each resumes where the last one stopped."""
CAP_BYTES_PER_SECOND = 200_000
"""Above any format a stem comes in: uncompressed 48 kHz 16-bit stereo is 192 kB/s, a 320 kbit/s MP3 40 kB/s."""
CAP_MARGIN = 1_000_000
ABSOLUTE_CAP = 200_000_000
"""No stem is larger than this whatever its duration says (an hour of 320 kbit/s MP3 is 144 MB)."""
STALE_AFTER = 48 * 3600.0
"""Partial files older than this are removed: apiframe has purged their source by then (after about 24 h)."""
READ_SIZE = 256 * 1024
WRITE_SIZE = 1024 * 1024
DRAIN_EVERY = 1.0
"""Seconds at most between writes of what arrived to the disk: a slow file survives a crash minus that much."""
FLUSH_EVERY = 16 * 1024 * 1024
INFLATE_PIECE = 1024 * 1024
END_MARGIN = 0.05
"""Seconds before the deadline at which a transfer stops, so that saving its progress ends in time."""
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MISSING = frozenset({403, 404, 410})
TRANSIENT = frozenset({408, 425, 429, 500, 502, 503, 504})
BROWSER = "the audio_url still works in a browser; open it there"
_NOT_PUBLIC = (("is_unspecified", "an unspecified address"), ("is_multicast", "a multicast address"),
               ("is_link_local", "a link-local address"), ("is_private", "a private address"),
               ("is_reserved", "a reserved address"))
_PART = re.compile(r"\.(?P<name>.+)\.part(?:\.json)?")
_OLD_PART = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.part")  # tempfile.mkstemp's, from earlier versions

_T = TypeVar("_T")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NETWORK_ERRORS = (httpcore.NetworkError, httpcore.ProtocolError, httpcore.TimeoutException)


# --- names -------------------------------------------------------------------------------------------------


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
    """`<slug of the song title>-<first 8 of the job id>`: the name of a job's folder, made nowhere else."""
    return f"{slug(title, fallback='suno')}-{_job_tag(job_id)}"


def _job_tag(job_id: str) -> str:
    return slug(job_id[:8], fallback="job")


def file_name(track: ApiTrack, position: int) -> str:
    stem = track.id if track.id in STEM_IDS else f"{position}-{slug(track.title)}"
    return stem + extension(track.audio_url)


def size_cap(duration: float | None) -> int:
    """The most bytes a stem of `duration` seconds may take, decoded or not."""
    if duration is None or not duration > 0:
        return ABSOLUTE_CAP
    return min(ABSOLUTE_CAP, int(duration * CAP_BYTES_PER_SECOND) + CAP_MARGIN)


@dataclass(frozen=True)
class Saved:
    track_id: str
    path: Path | None
    """Where the complete file is, or None when it is not saved (yet)."""
    timed_out: bool = False
    """The call's time ran out first: what arrived is kept, and the next call continues from there."""
    received: int = 0
    """Bytes of the file on disk (all of them when saved)."""
    total: int | None = None
    """Bytes of the whole file, when the CDN said."""


# --- the downloader ----------------------------------------------------------------------------------------


class Downloader:
    """Downloads run on the caller's event loop as cancellable async streams, so a deadline ends them wherever
    they are (connecting, in TLS, waiting for headers or for the next byte); only disk writes and DNS go to
    threads, under this downloader's own limiter."""

    def __init__(self, output_dir: Path, *, user_agent: str, allow_loopback_http: bool = False) -> None:
        self._root = output_dir
        self._headers = [(b"User-Agent", user_agent.encode()), (b"Accept", b"*/*"),
                         (b"Accept-Encoding", b"identity")]
        self._allow_loopback = allow_loopback_http
        self._locks: weakref.WeakValueDictionary[Path, anyio.Lock] = weakref.WeakValueDictionary()
        self._turns = anyio.Semaphore(MAX_TRANSFERS)
        self._threads = anyio.CapacityLimiter(MAX_TRANSFERS)
        self._resolvers = anyio.CapacityLimiter(MAX_TRANSFERS)
        self._pool: httpcore.AsyncConnectionPool | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._swept = False

    @property
    def root(self) -> Path:
        return self._root

    def folder_for(self, title: str | None, job_id: str) -> Path:
        return self._root / folder_name(title, job_id)

    def find_folder(self, job_id: str) -> Path | None:
        """The folder an earlier call or process used for this job, whatever title it was named after: the one
        holding audio files if any, else the most recently changed."""
        tag = "-" + _job_tag(job_id)
        try:
            found = [entry for entry in self._root.iterdir() if entry.name.endswith(tag)
                     and slug(entry.name[:-len(tag)], fallback="") == entry.name[:-len(tag)]
                     and entry.is_dir() and not entry.is_symlink()]
        except OSError:
            return None
        return max(found, key=_folder_rank, default=None)

    def existing(self, folder: Path, tracks: list[ApiTrack]) -> dict[str, Path]:
        """The tracks already saved in `folder` (complete by construction: only whole files get a name)."""
        found = {}
        for position, track in enumerate(tracks, start=1):
            path = folder / file_name(track, position)
            if _complete(path):
                found[track.id] = path.resolve()
        return found

    async def save(self, folder: Path, tracks: list[ApiTrack], deadline: Deadline) -> list[Saved]:
        """Save every track with an audio URL into `folder` before `deadline`; a file that does not make it is
        `Saved(path=None, timed_out=True)` and continues on the next call. Raises SaveError when a file cannot
        be saved at all."""
        target = self._prepare(folder)
        names = [file_name(track, position) for position, track in enumerate(tracks, start=1)]
        await self._in_thread(self._tidy, target, set(names))
        results: dict[str, Saved] = {}
        failures: list[SaveError] = []

        async def one(name: str, track: ApiTrack) -> None:
            try:
                results[track.id] = await self._save_one(target / name, track, deadline)
            except SaveError as problem:
                failures.append(problem)

        async with anyio.create_task_group() as group:
            for name, track in zip(names, tracks, strict=True):
                if track.audio_url:
                    group.start_soon(one, name, track)
        if failures:
            raise failures[0]
        return [results.get(track.id, Saved(track.id, None)) for track in tracks]

    async def read_range(self, url: str, offset: int, length: int, *, cap: int, deadline: Deadline
                         ) -> tuple[bytes, int]:
        """(bytes `offset` to `offset + length` of the file at `url`, the file's size), kept in memory only,
        with a download's checks (https, public addresses, checked redirects, `cap`). An offset at or past the
        end gives no bytes. Raises SaveError when the file cannot be read, TimeoutError at the deadline."""
        checked = self._checked(url)
        headers = [*self._headers, (b"Range", f"bytes={offset}-{offset + max(1, length) - 1}".encode())]
        with anyio.fail_after(max(0.0, deadline.remaining() - END_MARGIN)):
            async with self._turns:
                try:
                    async with self._request(checked, headers) as response:
                        return await _read_range(response, offset, length, cap)
                except _Broken as problem:
                    raise SaveError(f"reading the file broke off ({problem})", "try again in a moment") from None
                except _Spoiled as spoiled:
                    raise SaveError(spoiled.reason, spoiled.fix) from None

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.aclose()

    def close(self) -> None:
        """Let go of the connection pool; inside the event loop its sockets close in the background (prefer
        `await aclose()` there)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: its sockets went with it
            task = asyncio.get_running_loop().create_task(pool.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    # one file ---------------------------------------------------------------------------------------------

    async def _save_one(self, destination: Path, track: ApiTrack, deadline: Deadline) -> Saved:
        if _complete(destination):
            return Saved(track.id, destination, received=destination.stat().st_size)
        assert track.audio_url is not None
        url = self._checked(track.audio_url)
        part = _Part(destination, self._in_thread)
        with anyio.move_on_after(max(0.0, deadline.remaining() - END_MARGIN)):
            async with self._lock_for(destination), self._turns:
                if _complete(destination):  # saved by the call this one waited for
                    return Saved(track.id, destination, received=destination.stat().st_size)
                try:
                    return await self._download(url, part, size_cap(track.duration), track.id)
                except _Busy:
                    log.info("another process is saving %s; leaving it to that one", destination.name)
                    return Saved(track.id, None, timed_out=True)
        log.info("saving %s ran out of time at %d bytes; the next call continues it", destination.name, part.size)
        return Saved(track.id, None, timed_out=True, received=part.size, total=part.total)

    def _lock_for(self, destination: Path) -> anyio.Lock:
        lock = self._locks.get(destination)
        if lock is None:  # held only while in use, so the table does not grow with every file ever saved
            lock = self._locks[destination] = anyio.Lock()
        return lock

    async def _download(self, url: str, part: _Part, cap: int, track_id: str) -> Saved:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await self._fetch(url, part, cap)
                return Saved(track_id, part.destination, received=part.size, total=part.size)
            except _Broken as problem:
                log.info("downloading %s broke off (%s), try %d of %d", part.destination.name, problem, attempt,
                         ATTEMPTS)
                if attempt == ATTEMPTS:
                    raise SaveError(f"the download of {track_id} kept breaking off ({problem})",
                                    "call again in a moment: what arrived is kept, and only the rest is fetched"
                                    ) from None
                await anyio.sleep(random.uniform(0, 0.25 * 2**attempt))
        raise AssertionError("unreachable")

    async def _fetch(self, url: str, part: _Part, cap: int) -> None:
        """One request for the file, or for the rest of it; raises _Broken when trying again may help."""
        resume = await part.resume_point(_identity(url))
        if resume is not None and part.total == part.size:
            await part.finish()
            return
        headers = list(self._headers)
        if resume is not None:
            headers += [(b"Range", f"bytes={part.size}-".encode()), (b"If-Range", resume.encode("latin-1"))]
        async with self._request(url, headers) as response:
            append = _continues(response, part) if resume is not None else False
            if response.status not in (200, 206) or (response.status == 206 and not append):
                await _status_problem(response, part)
            await self._receive(response, part, url, append, cap)

    async def _receive(self, response: httpcore.Response, part: _Part, url: str, append: bool, cap: int) -> None:
        length = _int_header(response, b"content-length")
        inflater = _Inflater.of(_header(response, b"content-encoding"))
        if inflater is not None and append:  # a range of the compressed form is not the rest of the file
            await part.discard()
            raise _Broken("a compressed answer to a resumed download; starting it again")
        total = None if inflater else _total_length(response, length, part.size if append else 0)
        try:
            if max(total or 0, length or 0) > cap:
                raise _too_big(cap)
            await part.begin(_State(_identity(url), None if inflater else _validator(response), total), append=append)
            await _copy(response, part, inflater, cap)
            if part.size == 0 or (total is not None and part.size != total):
                raise _Broken(f"got {part.size} of {total if total is not None else 'some'} bytes")
            await part.finish()
        except _Spoiled as spoiled:
            await part.discard()
            raise SaveError(spoiled.reason, spoiled.fix) from None
        finally:
            await part.close()

    @contextlib.asynccontextmanager
    async def _request(self, url: str, headers: list[tuple[bytes, bytes]]) -> AsyncIterator[httpcore.Response]:
        """GET `url`, following at most MAX_REDIRECTS redirects, each checked before it is connected to."""
        for _ in range(MAX_REDIRECTS + 1):
            try:
                host = urlsplit(url).netloc.rpartition("@")[2].encode("idna")
                response = await self._connections().handle_async_request(
                    httpcore.Request(b"GET", url, headers=[(b"Host", host), *headers]))
            except _Refused as refused:
                raise SaveError(f"refusing to connect to {refused.host}: it has {refused.why}", BROWSER) from None
            except NETWORK_ERRORS as exc:
                raise _Broken(_describe(exc)) from None
            try:
                location = _header(response, b"location") if response.status in REDIRECTS else None
                if location is None:
                    yield response
                    return
            finally:
                with contextlib.suppress(*NETWORK_ERRORS):
                    await response.aclose()
            url = self._checked(urljoin(url, location), redirected=True)
        raise SaveError(f"the CDN redirected more than {MAX_REDIRECTS} times", BROWSER)

    def _connections(self) -> httpcore.AsyncConnectionPool:
        if self._pool is None:  # made on the first download; it never carries the API key
            import httpx

            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=httpx.create_ssl_context(), max_connections=MAX_TRANSFERS,
                max_keepalive_connections=MAX_TRANSFERS, keepalive_expiry=30.0,
                network_backend=_GuardedBackend(self._address_problem, self._resolvers))
        return self._pool

    # what may be fetched ----------------------------------------------------------------------------------

    def _checked(self, url: str, *, redirected: bool = False) -> str:
        """`url` when it may be fetched; else a SaveError saying what was refused (never the URL's query)."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        problem = None
        literal = _ip_address(host)
        if not host or parts.scheme not in ("http", "https"):
            problem = f"it is not an https link ({parts.scheme or 'no'} scheme)"
        elif literal is not None and (why := self._address_problem(literal)):
            problem = f"it points to {why}"
        elif parts.scheme == "http" and not (self._allow_loopback and is_loopback_host(host)):
            problem = "it is plain http, not https"
        if problem is None:
            return url
        what = f"a redirect to {_origin(url)}" if redirected else f"downloading from {_origin(url)}"
        raise SaveError(f"refusing {what}: {problem}", BROWSER)

    def _address_problem(self, address: IPAddress) -> str | None:
        """What is wrong with connecting to `address` (None: nothing)."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if address.is_loopback:
            return None if self._allow_loopback else "a loopback address"
        for kind, what in _NOT_PUBLIC:
            if getattr(address, kind):
                return what
        return None if address.is_global else "an address that is not public"

    # the disk ---------------------------------------------------------------------------------------------

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

    async def _in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run blocking file work in a thread of this downloader's own (never the server's shared limiter)."""
        return await anyio.to_thread.run_sync(function, *args, limiter=self._threads)

    def _tidy(self, folder: Path, wanted: set[str]) -> None:
        """Remove partial files of ours that cannot be resumed: in `folder` those of files not wanted now, and
        (once per process) any older than STALE_AFTER in every job folder."""
        _remove_partials(folder, lambda name, _: name not in wanted)
        if not self._swept:
            self._swept = True
            stale = time.time() - STALE_AFTER
            with contextlib.suppress(OSError):
                for entry in self._root.iterdir():
                    if entry.is_dir() and not entry.is_symlink():
                        _remove_partials(entry, lambda _, path: path.lstat().st_mtime < stale)


# --- policy and connections --------------------------------------------------------------------------------


async def _copy(response: httpcore.Response, part: _Part, inflater: _Inflater | None, cap: int) -> None:
    """The body into the part, decoded if need be, until it ends or passes `cap` (raw or decoded)."""
    received = 0
    try:
        async for chunk in response.aiter_stream():
            received += len(chunk)
            for piece in inflater.feed(chunk) if inflater else (chunk,):
                if max(received, part.size + len(piece)) > cap:
                    raise _too_big(cap)
                await part.write(piece)
        if inflater is not None:
            inflater.finish()
    except NETWORK_ERRORS as exc:
        raise _Broken(_describe(exc)) from None


async def _read_range(response: httpcore.Response, offset: int, length: int, cap: int) -> tuple[bytes, int]:
    """The asked range of an answer to a Range request (a 206, a 416 past the end, or a 200 with the whole
    file, of which only the range is kept), and the file's size."""
    status = response.status
    whole = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+)", _header(response, b"content-range") or "")
    if status == 416 and whole is not None:
        return b"", int(whole[2])
    if status == 206 and (whole is None or whole[1] is None or int(whole[1]) != offset):
        raise _Broken("the CDN answered another range than the one asked for")
    if status not in (200, 206):
        if status in MISSING:
            raise SaveError(f"the CDN answered HTTP {status} for the file",
                            "the link has probably expired (apiframe keeps files about 24 h)")
        if status in TRANSIENT or status >= 500:
            raise _Broken(f"HTTP {status}")
        raise SaveError(f"the CDN answered HTTP {status} for the file", BROWSER)
    if _header(response, b"content-encoding") not in (None, "identity"):
        raise SaveError("the CDN sent the file compressed although asked not to", BROWSER)
    total = int(whole[2]) if status == 206 and whole is not None else _int_header(response, b"content-length")
    if total is not None and total > cap:
        raise _too_big(cap)
    skip = 0 if status == 206 else offset
    kept = bytearray()
    received = 0
    try:
        async for chunk in response.aiter_stream():
            received += len(chunk)
            if received > cap:
                raise _too_big(cap)
            start = max(0, skip - (received - len(chunk)))
            kept += chunk[start:][: max(0, length - len(kept))]
            if len(kept) >= length and total is not None:
                break
    except NETWORK_ERRORS as exc:
        raise _Broken(_describe(exc)) from None
    return bytes(kept), total if total is not None else received


class _Refused(Exception):
    def __init__(self, host: str, why: str) -> None:
        super().__init__(f"{host}: {why}")
        self.host, self.why = host, why



class _Busy(Exception):
    """Another process is saving this very file."""


class _Broken(Exception):
    """The transfer broke off or the CDN stumbled (5xx): trying again may help, resuming where it stopped."""


class _Spoiled(Exception):
    """What the CDN sent is not worth keeping (too large, or corrupt)."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.reason, self.fix = reason, fix


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with every address checked before it is connected to.

    The name is resolved here, every address it has is checked, and the connection goes to one of those very
    addresses (TLS still verifies the certificate against the name), so DNS rebinding cannot slip another
    address in between the check and the connection. What remains: a public address that forwards to a
    private network looks like any other public host."""

    def __init__(self, problem: Callable[[IPAddress], str | None], resolvers: anyio.CapacityLimiter) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._problem = problem
        self._resolvers = resolvers

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port)
        for address in addresses:
            why = self._problem(address)
            if why is not None:
                raise _Refused(host, why)
        failure = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
            else:
                return _BigReads(stream)
        raise failure

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        literal = _ip_address(host)
        if literal is not None:
            return [literal]
        try:
            found = await anyio.to_thread.run_sync(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM,
                                                   abandon_on_cancel=True, limiter=self._resolvers)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host} ({exc.strerror or exc})") from None
        return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found))

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise _Refused(path, "a local socket")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class _BigReads(httpcore.AsyncNetworkStream):
    """Reads of READ_SIZE where httpcore asks for 64 KiB: a quarter of the per-chunk costs on a fast link."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max(max_bytes, READ_SIZE), timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        return _BigReads(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


# --- answers -----------------------------------------------------------------------------------------------


async def _status_problem(response: httpcore.Response, part: _Part) -> NoReturn:
    status = response.status
    if status in MISSING:
        raise SaveError(f"the CDN answered HTTP {status} for the file",
                        "wait a minute (it may not be on the CDN yet); if it keeps failing, the link has expired "
                        "(apiframe keeps files about 24 h) and split_stems must make new ones")
    if status in (206, 416):  # to a resumed download: the part on disk no longer fits the file the CDN has
        await part.discard()
        raise _Broken(f"HTTP {status} to the rest of a file; starting it again")
    if status in TRANSIENT or status >= 500:
        raise _Broken(f"HTTP {status}")
    raise SaveError(f"the CDN answered HTTP {status} for the file", BROWSER)


def _continues(response: httpcore.Response, part: _Part) -> bool:
    """Whether a 206 is exactly the rest of the part on disk, of the same version of the file."""
    if response.status != 206:
        return False
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", _header(response, b"content-range") or "")
    etag = _header(response, b"etag")
    return (match is not None and int(match[1]) == part.size
            and (part.total is None or match[3] == str(part.total))
            and (etag is None or etag == part.validator or not (part.validator or "").startswith('"')))


def _total_length(response: httpcore.Response, length: int | None, offset: int) -> int | None:
    if response.status == 206:
        total = (_header(response, b"content-range") or "").rpartition("/")[2]
        if total.isdigit():
            return int(total)
    return None if length is None else offset + length


def _validator(response: httpcore.Response) -> str | None:
    """What `If-Range` may carry to resume this answer: a strong ETag, else Last-Modified."""
    etag = _header(response, b"etag")
    if etag is not None and not etag.startswith("W/"):
        return etag
    return _header(response, b"last-modified")


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None


def _int_header(response: httpcore.Response, name: bytes) -> int | None:
    value = _header(response, name)
    return int(value) if value is not None and value.isdigit() else None


def _too_big(cap: int) -> _Spoiled:
    return _Spoiled(f"the CDN sent more than {cap / 1e6:.1f} MB for one stem, far more than its duration needs "
                    "(nothing of it was kept)", BROWSER)


class _Inflater:
    """Decodes a gzip (of any number of members) or deflate body a bounded piece at a time, so that what a small
    body inflates to is counted against the cap before it is held in memory."""

    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._zlib = zlib.decompressobj(wbits)

    @classmethod
    def of(cls, encoding: str | None) -> _Inflater | None:
        value = (encoding or "identity").lower()
        if value in ("", "identity"):
            return None
        if value in ("gzip", "x-gzip"):
            return cls(zlib.MAX_WBITS | 16)
        if value == "deflate":
            return cls(zlib.MAX_WBITS)
        raise SaveError(f"the CDN sent the file {value}-encoded, which this server does not decode", BROWSER)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while True:
                piece = self._zlib.decompress(data, INFLATE_PIECE)
                if piece:
                    yield piece
                if self._zlib.eof and self._zlib.unused_data:  # the next gzip member
                    data = self._zlib.unused_data
                    self._zlib = zlib.decompressobj(self._wbits)
                    continue
                data = self._zlib.unconsumed_tail
                if not data and len(piece) < INFLATE_PIECE:
                    return
        except zlib.error as exc:
            raise _Spoiled(f"the CDN sent a corrupt compressed file ({exc}; nothing of it was kept)",
                           f"try again later; {BROWSER}") from None

    def finish(self) -> None:
        if not self._zlib.eof:
            raise _Broken("the compressed file ended early")


# --- the disk ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _State:
    """What the bytes of a part are: kept beside it, so that any later call can ask for the rest."""

    url: str
    validator: str | None
    total: int | None

    def dumps(self) -> bytes:
        return json.dumps({"url": self.url, "validator": self.validator, "total": self.total}).encode()

    @classmethod
    def loads(cls, raw: bytes) -> _State | None:
        try:
            data = json.loads(raw)
            state = cls(str(data["url"]), data["validator"], data["total"])
        except (ValueError, TypeError, KeyError):
            return None
        valid = isinstance(state.validator, str) and (state.total is None or isinstance(state.total, int))
        return state if valid else None


class _Part:
    """`.<name>.part` (the bytes so far) and `.<name>.part.json` (what they are) beside `destination`.

    `size` counts every byte taken, written or still pending; what is pending reaches the disk at every
    WRITE_SIZE, every DRAIN_EVERY and when the transfer ends, however it ends: the part on disk is always a
    prefix of the file."""

    def __init__(self, destination: Path, in_thread: Callable[..., Awaitable[Any]]) -> None:
        self.destination = destination
        self.path = destination.with_name(f".{destination.name}.part")
        self.meta = destination.with_name(f".{destination.name}.part.json")
        self.size = 0
        self.total: int | None = None
        self.validator: str | None = None
        self._in_thread = in_thread
        self._url = ""
        self._fd: int | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._drained = time.monotonic()
        self._flusher: _Flusher | None = None

    async def resume_point(self, url: str) -> str | None:
        """The validator to resume with when a part of this file is on disk; else None, and no part is."""
        state, self.size = await self._run(self._load, url)
        self._url = url
        self.total = state.total if state else None
        self.validator = state.validator if state else None
        return self.validator

    async def begin(self, state: _State, *, append: bool) -> None:
        await self._run(self._open, state, self.size if append else 0)
        self.total, self.validator = state.total, state.validator

    async def write(self, data: bytes) -> None:
        self._pending.append(data)
        self._pending_size += len(data)
        self.size += len(data)
        if self._pending_size >= WRITE_SIZE or time.monotonic() - self._drained > DRAIN_EVERY:
            await self._drain()

    async def finish(self) -> None:
        """Everything arrived: onto the disk, then under its own name."""
        if self._fd is None:  # the whole file was already on disk
            await self.begin(_State(self._url, self.validator, self.total), append=True)
        await self._drain()
        fd, self._fd = self._fd, None
        await self._run(self._complete, fd)

    async def close(self) -> None:
        """The transfer ended before the file did: keep what arrived if it can be resumed, else remove it."""
        if self._fd is None:
            return
        with anyio.CancelScope(shield=True):
            if self.validator is None:
                await self.discard()
                return
            await self._drain()
            fd, self._fd = self._fd, None
            await self._run(os.close, fd)

    async def discard(self) -> None:
        with anyio.CancelScope(shield=True):
            fd, self._fd = self._fd, None
            self._pending, self._pending_size = [], 0
            self.size, self.total = 0, None
            await self._run(self._remove, fd)

    async def _drain(self) -> None:
        if not self._pending or self._fd is None:
            return
        chunks, count = self._pending, self._pending_size
        self._pending, self._pending_size, self._drained = [], 0, time.monotonic()
        await self._run(_write_all, self._fd, chunks)
        if self._flusher is None:
            self._flusher = _Flusher(self._fd)
        self._flusher.wrote(count)

    async def _run(self, function: Callable[..., _T], *args: Any) -> _T:
        try:
            return await self._in_thread(function, *args)
        except OSError as exc:
            raise _os_problem(exc, self.destination.parent) from None

    # in a thread ---

    def _load(self, url: str) -> tuple[_State | None, int]:
        try:
            state = _State.loads(self.meta.read_bytes())
        except FileNotFoundError:
            state = None
        size = _regular_size(self.path)
        if state is None or size is None or state.url != url or (state.total is not None and size > state.total):
            self._remove(None)
            return None, 0
        return state, size

    def _open(self, state: _State, offset: int) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o666)  # 0o666 & ~umask
        try:
            self._claim(fd)
            if state.validator is None:
                self.meta.unlink(missing_ok=True)
            else:
                _write_file(self.meta, state.dumps())
            os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _claim(self, fd: int) -> None:
        """Make this process the only one writing the part (where the system can say so)."""
        if fcntl is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            renamed = os.fstat(fd).st_ino != os.lstat(self.path).st_ino
        except (BlockingIOError, FileNotFoundError):
            raise _Busy from None
        if renamed or _complete(self.destination):  # the other process finished it meanwhile
            raise _Busy

    def _complete(self, fd: int | None) -> None:
        try:
            if self._flusher is not None:
                self._flusher.join()
            if fd is not None:
                os.fsync(fd)  # on disk before it gets its name: a name always means a whole file
        finally:
            if fd is not None:
                os.close(fd)
        os.replace(self.path, self.destination)
        self.meta.unlink(missing_ok=True)

    def _remove(self, fd: int | None) -> None:
        if fd is not None:
            os.close(fd)
        self.path.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)


class _Flusher:
    """Syncs a file to disk in the background while it is still being written, so that the final fsync waits
    only for the tail instead of the whole file (which made a 100 MB download 1.5x slower)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._unsynced = 0
        self._running: threading.Thread | None = None

    def wrote(self, count: int) -> None:
        self._unsynced += count
        if self._unsynced < FLUSH_EVERY or (self._running is not None and self._running.is_alive()):
            return
        self._unsynced = 0
        self._running = threading.Thread(target=self._sync, name="flush", daemon=True)
        self._running.start()

    def _sync(self) -> None:
        with contextlib.suppress(OSError):  # the final fsync reports any error that matters
            getattr(os, "fdatasync", os.fsync)(self._fd)

    def join(self) -> None:
        if self._running is not None:
            self._running.join()


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _write_all(fd: int, chunks: list[bytes]) -> None:
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW | _CLOEXEC, 0o666)
    try:
        _write_all(fd, [data])
    finally:
        os.close(fd)


def _regular_size(path: Path) -> int | None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def _complete(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _remove_partials(folder: Path, doomed: Callable[[str, Path], bool]) -> None:
    """Remove the partial files of ours in `folder` that `doomed(name, path)` says to, and any left by earlier
    versions (which cannot be resumed); nothing else."""
    for entry in folder.iterdir():
        current = _PART.fullmatch(entry.name)
        if current is not None and _is_audio(current["name"]):
            if doomed(current["name"], entry):
                entry.unlink(missing_ok=True)
            continue
        earlier = _OLD_PART.fullmatch(entry.name)
        if earlier is not None and _is_audio(earlier["name"]):
            entry.unlink(missing_ok=True)


def _is_audio(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in AUDIO_EXTENSIONS


def _folder_rank(folder: Path) -> tuple[bool, float]:
    try:
        has_audio = any(_is_audio(entry.name) and not entry.name.startswith(".") for entry in folder.iterdir())
        return has_audio, folder.stat().st_mtime
    except OSError:
        return False, 0.0


# --- small things ------------------------------------------------------------------------------------------


def _ip_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None


def _identity(url: str) -> str:
    """The URL without its query or fragment: what a part is of (signed links change their query per call)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme or '?'}://{host}" + (f":{parts.port}" if parts.port else "")


def _describe(exc: Exception) -> str:
    text = str(exc)[:120]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _os_problem(exc: OSError, where: Path) -> SaveError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return SaveError(f"there is no room to write the file in {where} ({exc.strerror or 'disk full'})",
                         "free some space, or set SUNO_STEMS_OUTPUT_DIR to a folder on another disk")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return SaveError(f"this server may not write to {where}",
                         "set SUNO_STEMS_OUTPUT_DIR to a folder you can write to, or call again with download=false")
    return SaveError(f"saving to {where} failed ({exc.strerror or type(exc).__name__})",
                     "check the folder, or set SUNO_STEMS_OUTPUT_DIR to another one")
