"""What the tools share for the life of one server process: settings, one HTTP connection pool, the
apiframe client, the downloader, and what this process remembers."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import __version__
from ..config import Settings
from ..errors import MissingKey
from .memory import Memory

if TYPE_CHECKING:  # imported on first use: the server's first answer does not need them
    import httpx

    from ..apiframe.client import ApiframeClient
    from ..downloader import Downloader


def user_agent() -> str:
    import httpx

    return f"suno-stems-mcp/{__version__} httpx/{httpx.__version__} python/{platform.python_version()}"


MAX_CONNECTIONS = 100
MAX_KEEPALIVE = MAX_CONNECTIONS  # reconnecting means a new TCP + TLS handshake with apiframe


@dataclass
class Runtime:
    settings: Settings
    memory: Memory = field(default_factory=Memory, init=False)
    _http: httpx.AsyncClient | None = field(default=None, init=False)
    _downloader: Downloader | None = field(default=None, init=False)

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
                                          allow_loopback_http=self.settings.loopback_cdn_allowed)
        return self._downloader

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._downloader is not None:
            self._downloader.close()
