"""What the tools share for the life of one server process: settings, one HTTP connection pool, the
apiframe client, the downloader, and what this process itself has submitted."""

from __future__ import annotations

import platform
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from .. import __version__
from ..config import Settings
from ..errors import MissingKey
from .waiting import PollSchedule

if TYPE_CHECKING:  # imported on first use: the server's first answer does not need them
    import httpx

    from ..apiframe.client import ApiframeClient
    from ..downloader import Downloader



def user_agent() -> str:
    import httpx

    return f"suno-stems-mcp/{__version__} httpx/{httpx.__version__} python/{platform.python_version()}"

MAX_CONNECTIONS = 100
MAX_KEEPALIVE = MAX_CONNECTIONS  # reconnecting means a new TCP + TLS handshake with apiframe
MEMORY_ITEMS = 10_000
"""How many submissions a process remembers: enough for any session, bounded for a server that runs for months."""

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A mapping that forgets its oldest entries beyond `limit`."""

    def __init__(self, limit: int = MEMORY_ITEMS) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._limit = limit

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __setitem__(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def setdefault(self, key: K, value: V) -> V:
        if key not in self._items:
            self[key] = value
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class SplitSource:
    """The track a stems job was made from, remembered so its files can be named after the song."""

    parent_job_id: str
    index: int | None
    track_id: str | None
    title: str | None


@dataclass
class Runtime:
    settings: Settings
    _http: httpx.AsyncClient | None = field(default=None, init=False)
    _downloader: Downloader | None = field(default=None, init=False)
    sources: Recent[str, SplitSource] = field(default_factory=Recent, init=False)
    """stems job id → the track it split (from this process's own submissions)."""
    submitted_keys: Recent[str, bool] = field(default_factory=Recent, init=False)
    """Idempotency keys this process has already had answered: a repeat is a reuse."""
    schedules: Recent[str, PollSchedule] = field(default_factory=lambda: Recent(1000), init=False)
    """Each job's poll schedule, so a get_job continues where split_stems left off."""

    def schedule_for(self, job_id: str) -> PollSchedule:
        return self.schedules.setdefault(job_id, PollSchedule())

    @property
    def http(self) -> httpx.AsyncClient:
        """The process's one connection pool, made on first use (keeps the server's first answer fast)."""
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(
                headers={"User-Agent": user_agent()},
                timeout=httpx.Timeout(20.0, connect=5.0),
                limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE),
                follow_redirects=False,
            )
        return self._http

    def api(self) -> ApiframeClient:
        """The apiframe client; a clear error when no key is configured (checked before any request)."""
        if self.settings.api_key is None:
            raise MissingKey()
        from ..apiframe.client import ApiframeClient

        return ApiframeClient(self.http, base_url=self.settings.base_url, api_key=self.settings.api_key)

    def downloader(self) -> Downloader:
        if self._downloader is None:
            from ..downloader import Downloader

            self._downloader = Downloader(self.settings.output_dir, user_agent=user_agent(),
                                          allow_loopback_http=self.settings.sandbox)
        return self._downloader

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._downloader is not None:
            self._downloader.close()
