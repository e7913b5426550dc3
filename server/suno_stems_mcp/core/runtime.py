"""What the tools share for the life of one server process: settings, one HTTP connection pool, the
apiframe client, the downloader, and what this process remembers."""

from __future__ import annotations

import copy
import hashlib
import platform
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from .. import __version__
from ..config import Settings
from ..errors import MissingKey
from .memory import Memory, Recent

if TYPE_CHECKING:  # imported on first use: the server's first answer does not need them
    import httpx

    from ..apiframe.client import ApiframeClient
    from ..downloader import Downloader


def user_agent() -> str:
    import httpx

    return f"suno-stems-mcp/{__version__} httpx/{httpx.__version__} python/{platform.python_version()}"


MAX_CONNECTIONS = 32
"""Requests to apiframe one process has under way at once, each on a connection of its own; more wait their
turn in a plain queue before httpx's pool. That pool's bookkeeping, at every request's start and end, goes
over each request waiting in it against each of its connections: with 300 hosted users calling at once (300
requests, 100 connections), a replica spent two thirds of its CPU there and calls ran out of their time."""
MAX_KEEPALIVE = MAX_CONNECTIONS  # reconnecting means a new TCP + TLS handshake with apiframe
HOSTED_USERS = 2000
"""How many users' memories a hosted process keeps (the least recently seen are forgotten)."""
HOSTED_ITEMS = 500
"""How many entries of each kind one hosted user's memory keeps."""
MAX_KEY_CHARS = 256


def key_scope(key: SecretStr) -> str:
    """What a hosted process files a user's memory under: a hash of the key, never the key."""
    return hashlib.sha256(key.get_secret_value().encode()).hexdigest()[:16]


def _user_memory() -> Memory:
    return Memory(sources=Recent(HOSTED_ITEMS), submitted_keys=Recent(HOSTED_ITEMS),
                  schedules=Recent(HOSTED_ITEMS), call_limits=Recent(HOSTED_ITEMS))


@dataclass
class Runtime:
    settings: Settings
    memory: Memory = field(default_factory=Memory, init=False)
    _http: httpx.AsyncClient | None = field(default=None, init=False)
    _downloader: Downloader | None = field(default=None, init=False)
    _memories: Recent[str, Memory] = field(default_factory=lambda: Recent(HOSTED_USERS), init=False)
    _call_key: SecretStr | None = field(default=None, init=False)
    """Hosted, in the view of one call (see `for_call`): the key that call came with."""

    @property
    def http(self) -> httpx.AsyncClient:
        """The process's one connection pool, made on first use (keeps the server's first answer fast)."""
        if self._http is None:
            import httpx

            self._http = _bounded_client(MAX_CONNECTIONS)(
                headers={"User-Agent": user_agent()},
                timeout=httpx.Timeout(20.0, connect=5.0),
                limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE),
                follow_redirects=False,
            )
        return self._http

    def api(self, key: SecretStr | None = None) -> ApiframeClient:
        """The apiframe client with `key`, else this call's key (hosted) or the configured one; a clear error
        when there is none (checked before any request)."""
        if key is None:
            key = self._call_key if self.settings.hosted else self.settings.api_key
        if key is None:
            raise MissingKey(hosted=self.settings.hosted)
        from ..apiframe.client import ApiframeClient

        return ApiframeClient(self.http, base_url=self.settings.base_url, api_key=key)

    def memory_for(self, key: SecretStr) -> Memory:
        """One user's memory, filed under a hash of their key: it never answers another key's calls."""
        scope = key_scope(key)
        known = self._memories.get(scope)
        if known is None:
            known = self._memories[scope] = _user_memory()
        else:
            self._memories[scope] = known  # most recently used: forgotten last
        return known

    def for_call(self, key: str | None) -> Runtime:
        """Hosted: this runtime as one call sees it, with the key that call came with and that key's memory;
        the connection pool is shared. A missing or malformed key makes `api()` raise MissingKey. Not hosted:
        the runtime itself (the configured key, the process's memory)."""
        if not self.settings.hosted:
            return self
        view = copy.copy(self)
        _ = self.http  # made now, so the view shares it rather than making its own
        view._http = self._http
        secret = SecretStr(key.strip()) if key is not None and _well_formed(key.strip()) else None
        view._call_key = secret
        view.memory = self.memory_for(secret) if secret is not None else _user_memory()
        return view

    def downloader(self) -> Downloader:
        if self._downloader is None:
            from ..downloader import Downloader

            self._downloader = Downloader(self.settings.output_dir, user_agent=user_agent(),
                                          allow_loopback_http=self.settings.loopback_cdn_allowed)
        return self._downloader

    @property
    def user_count(self) -> int:
        """How many users' memories a hosted process holds now."""
        return len(self._memories)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._downloader is not None:
            self._downloader.close()


def _bounded_client(in_flight: int) -> type[httpx.AsyncClient]:
    """httpx.AsyncClient that lets at most `in_flight` requests into its pool at once (from send until the
    response is closed); the others wait for a slot, in order, and a caller's deadline (anyio.fail_after) still
    cuts their wait. Made on first use, like the client: httpx is imported only then."""
    import anyio
    import httpx

    class Released(httpx.AsyncByteStream):
        """A response's stream that gives its slot back when closed (once)."""

        def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
            self._stream = stream
            self._release: Callable[[], None] | None = release

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self._stream:
                yield chunk

        async def aclose(self) -> None:
            release, self._release = self._release, None
            try:
                await self._stream.aclose()
            finally:
                if release is not None:
                    release()

    class BoundedClient(httpx.AsyncClient):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self._slots = anyio.Semaphore(in_flight)

        async def send(self, request: httpx.Request, *, stream: bool = False, **options: Any) -> httpx.Response:
            await self._slots.acquire()
            try:
                response = await super().send(request, stream=True, **options)
            except BaseException:
                self._slots.release()
                raise
            response.stream = Released(response.stream, self._slots.release)  # type: ignore[arg-type]
            if not stream:
                try:
                    await response.aread()  # closes the stream, so the slot is free again
                except BaseException:
                    await response.aclose()
                    raise
            return response

    return BoundedClient


def _well_formed(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_CHARS and key.isascii() and key.isprintable() and " " not in key
