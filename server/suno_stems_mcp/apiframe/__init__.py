"""apiframe's v2 API as this server needs it: read jobs, list them, submit a stems split.

The client (and httpx with it) is imported on first use, so the server's first answer does not wait for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .models import ApiJob, ApiJobPage, ApiTrack, Submission

if TYPE_CHECKING:
    from .client import ApiframeClient

__all__ = ["ApiJob", "ApiJobPage", "ApiTrack", "ApiframeClient", "Submission"]


def __getattr__(name: str) -> Any:
    if name == "ApiframeClient":
        from .client import ApiframeClient

        return ApiframeClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
