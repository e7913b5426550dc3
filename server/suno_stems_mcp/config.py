"""Settings, read from the environment once at startup (never at import), with errors that say what to fix."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from .errors import SettingsError

Transport = Literal["stdio", "http"]

DEFAULT_BASE_URL = "https://api.apiframe.ai"
DEFAULT_OUTPUT_DIR = "~/Music/Suno Stems"
DEFAULT_MAX_WAIT = 45.0
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class Settings:
    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    output_dir: Path = Path(DEFAULT_OUTPUT_DIR).expanduser()  # noqa: RUF009 - a constant, computed once
    download: bool = True
    max_wait: float = DEFAULT_MAX_WAIT
    http_token: SecretStr | None = None
    sandbox: bool = False
    transport: Transport = "stdio"
    log_level: str = "INFO"
    hosted: bool = False
    """Many users: each request brings its own apiframe key (X-Apiframe-Key); downloads never happen."""

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        transport: Transport = "stdio",
        sandbox: bool = False,
        hosted: bool = False,
    ) -> Settings:
        env = os.environ if environ is None else environ
        key = env.get("APIFRAME_API_KEY", "").strip()
        if hosted:
            _check_hosted(env, transport=transport, sandbox=sandbox, key=key)
        token = env.get("SUNO_STEMS_HTTP_TOKEN", "").strip()
        return cls(
            api_key=SecretStr(key) if key else None,
            base_url=_base_url(env.get("APIFRAME_BASE_URL", "").strip() or DEFAULT_BASE_URL),
            output_dir=Path(env.get("SUNO_STEMS_OUTPUT_DIR", "").strip() or DEFAULT_OUTPUT_DIR).expanduser(),
            download=False if hosted else _flag(env, "SUNO_STEMS_DOWNLOAD", default=transport == "stdio"),
            max_wait=_seconds(env.get("SUNO_STEMS_MAX_WAIT", "").strip()),
            http_token=SecretStr(token) if token else None,
            sandbox=sandbox or _flag(env, "SUNO_STEMS_SANDBOX", default=False),
            transport=transport,
            log_level=_log_level(env.get("SUNO_STEMS_LOG_LEVEL", "").strip()),
            hosted=hosted,
        )

    @property
    def loopback_cdn_allowed(self) -> bool:
        """Audio may come over plain http from this machine: only from a sandbox (the embedded one, or one the
        person started and pointed APIFRAME_BASE_URL at)."""
        return self.sandbox or _is_loopback(urlsplit(self.base_url).hostname)

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _check_hosted(env: Mapping[str, str], *, transport: Transport, sandbox: bool, key: str) -> None:
    """Hosted mode serves many users, each with their own key: the server itself holds none, saves nothing."""
    if transport != "http":
        raise SettingsError("--hosted serves many users over HTTP: add --transport http.")
    if key:
        raise SettingsError(
            "APIFRAME_API_KEY is set, but a hosted server holds no apiframe key of its own: each user sends theirs "
            "in the X-Apiframe-Key header of every request. Unset APIFRAME_API_KEY (or run without --hosted to "
            "serve one account).")
    if sandbox or _flag(env, "SUNO_STEMS_SANDBOX", default=False):
        raise SettingsError(
            "--hosted cannot be combined with --sandbox: run `suno-stems-mcp sandbox` and point APIFRAME_BASE_URL "
            "at the URL it prints; every key afk_sandbox_<name> is then its own account.")
    if _flag(env, "SUNO_STEMS_DOWNLOAD", default=False):
        raise SettingsError(
            "SUNO_STEMS_DOWNLOAD is on, but a hosted server never saves files on its disk (they would belong to "
            "its users): unset it. Results carry the audio URLs.")


def _is_loopback(host: str | None) -> bool:
    if host in (None, ""):
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={env[name]!r} is not a yes/no value: use true or false.")


def _seconds(raw: str) -> float:
    if not raw:
        return DEFAULT_MAX_WAIT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 1 <= value <= 3600:
        raise SettingsError(
            f"SUNO_STEMS_MAX_WAIT={raw!r} is not a number of seconds from 1 to 3600 "
            f"(default {DEFAULT_MAX_WAIT:g}; keep it under your client's tool-call timeout, often 60 s)."
        )
    return value


def _base_url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"APIFRAME_BASE_URL={raw!r} is not an http(s) URL; leave it unset for {DEFAULT_BASE_URL}.")
    return raw.rstrip("/")


def _log_level(raw: str) -> str:
    level = (raw or "INFO").upper()
    if level not in LOG_LEVELS:
        raise SettingsError(f"SUNO_STEMS_LOG_LEVEL={raw!r} is not one of {', '.join(LOG_LEVELS)}.")
    return level
