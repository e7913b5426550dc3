"""Failures a person can act on, named by what they mean.

Every one is a `ToolError`, so its text reaches the model as it is (any other exception becomes a bare
"Error executing tool"). The text says what happened, what to do next and whether anything was charged,
names the job id whenever one exists, and never holds the API key.

    StemsError
    ├── SettingsError          an environment variable holds something unusable (the server does not start)
    ├── MissingKey             no apiframe key is configured
    ├── InvalidArguments       the call's arguments are wrong; nothing was sent
    ├── ApiError               apiframe answered with an error, or could not be reached
    │   ├── KeyRejected        401, 403
    │   ├── NotEnoughCredits   402
    │   ├── NotFound           404
    │   ├── Conflict           409
    │   ├── Rejected           400 and other 4xx
    │   ├── RateLimited        429 asking for a longer wait than the call has
    │   └── ApiUnavailable     network, timeouts, 5xx, unreadable answers
    └── SaveError              a file could not be saved (`reason`, and the `fix` a person can make)
        └── DownloadFailed     a finished job's files could not be saved; says so with its id and links
"""

from __future__ import annotations

from mcp.server.mcpserver.exceptions import ToolError


class StemsError(ToolError):
    """Base of every failure this server reports to the model."""


class SettingsError(StemsError):
    """An environment variable holds something unusable; the message names it and what it should be."""


KEY_HEADER = "X-Apiframe-Key"
"""The HTTP header that carries each user's apiframe key to a hosted server."""


class MissingKey(StemsError):
    def __init__(self, *, hosted: bool = False) -> None:
        if hosted:
            super().__init__(
                f"No apiframe key came with this request. This is a hosted server: send your afk_… key from the "
                f"apiframe dashboard in the {KEY_HEADER} HTTP header of every request (set it in your MCP "
                "client's headers for this server). Nothing was sent to apiframe.")
            return
        super().__init__(
            "No apiframe API key is configured. Set APIFRAME_API_KEY to your afk_… key from the apiframe "
            "dashboard in this server's environment (or the Claude Desktop extension settings) and restart it; "
            "to try everything without a key or credits, run the server with --sandbox."
        )


class InvalidArguments(StemsError):
    """The call's arguments are wrong; nothing was sent to apiframe."""


class ApiError(StemsError):
    """apiframe answered with an error, or could not be reached."""

    def __init__(self, message: str, *, status: int | None = None, job_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.job_id = job_id


class KeyRejected(ApiError):
    """401 or 403: the key is wrong, revoked or inactive."""


class NotEnoughCredits(ApiError):
    """402: the account's balance is below the price of the job."""

    def __init__(self, message: str, *, required: int | None, available: int | None) -> None:
        super().__init__(message, status=402)
        self.required = required
        self.available = available


class NotFound(ApiError):
    """404: no such job in this account."""


class Conflict(ApiError):
    """409: apiframe refuses this action for this parent (its reason is in the message)."""


class Rejected(ApiError):
    """400 (or another 4xx): apiframe says the request is invalid."""


class RateLimited(ApiError):
    """429 with a wait longer than the call had left."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class ApiUnavailable(ApiError):
    """apiframe did not answer usably (network, timeouts, 5xx, unreadable bodies) within the call's time."""


class SaveError(StemsError):
    """A file could not be saved; `fix` says what the person can do about it."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(f"{reason}; {fix}")
        self.reason = reason
        self.fix = fix


class DownloadFailed(SaveError):
    """The stems exist, but saving them to disk failed; the message carries the job id and the URLs, so nothing
    is lost."""

    def __init__(self, message: str, *, job_id: str, cause: SaveError) -> None:
        StemsError.__init__(self, message)
        self.reason, self.fix, self.job_id = cause.reason, cause.fix, job_id
