"""Helpers for tests that drive the MCP server through real clients against a real sandbox."""

from __future__ import annotations

import array
import atexit
import io
import os
import re
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import CallToolResult, Implementation
from pydantic import SecretStr

from suno_stems_mcp.cli import own_command
from suno_stems_mcp.config import Settings
from suno_stems_mcp.mcp_server import build_server
from suno_stems_mcp.sandbox import DEMO_KEY, ThreadedSandbox
from suno_stems_mcp.sandbox.seed import demo_id

SONG = demo_id("Midnight Harbor")
SONG_2 = demo_id("Paper Satellites")
SEEDED_STEMS = demo_id("Midnight Harbor stems")
PROCESSING = demo_id("Neon Rain")
FAILED = demo_id("Static Bloom")


SANDBOX_STATE = Path(tempfile.mkdtemp(prefix="pytest-sandbox-state-"))
"""The state `--sandbox` subprocesses of this test process share; removed when it exits."""
atexit.register(shutil.rmtree, SANDBOX_STATE, True)


def settings_for(running: ThreadedSandbox, output: Path, **changes: Any) -> Settings:
    """Settings pointing the server at a test's sandbox, saving under `output`."""
    values: dict[str, Any] = {
        "api_key": SecretStr(DEMO_KEY),
        "base_url": running.url,
        "output_dir": output,
        "download": True,
        "max_wait": 10.0,
        "sandbox": True,
    }
    values.update(changes)
    return Settings(**values)


@asynccontextmanager
async def connected(settings: Settings, *, client_name: str | None = None) -> AsyncIterator[Client]:
    """An in-memory `mcp.Client` on a fresh server built from `settings`, introducing itself as `client_name`
    (default: the SDK's own name, which the server treats as a client that allows only short calls)."""
    info = Implementation(name=client_name, version="1.0") if client_name else None
    async with Client(build_server(settings), client_info=info) as client:
        yield client


def command() -> list[str]:
    """How to start the installed `suno-stems-mcp`: as the demo does, never from the current folder."""
    return own_command()


def stdio_params(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> StdioServerParameters:
    executable, *rest = command()
    return StdioServerParameters(command=executable, args=[*rest, *args], env=env, cwd=cwd)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess, without this project's settings: nothing (no real key above all)
    leaks in from the developer's shell. Certificates and proxies stay, for the steps that reach PyPI."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("APIFRAME_", "SUNO_STEMS_"))}
    base["SUNO_STEMS_SANDBOX_DIR"] = str(SANDBOX_STATE)  # the shared sandbox of these tests, not the user's
    base.update(extra)
    return base


def served_url(process: subprocess.Popen[str], timeout: float = 30) -> str:
    """The /mcp URL a `suno-stems-mcp --transport http` subprocess logs when it starts serving."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        found = re.search(r"at (http://\S+/mcp)", line)
        if found:
            return found.group(1)
    raise AssertionError("the server never said where it serves")


def text(result: CallToolResult) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful result (failing the test with the error text otherwise)."""
    assert not result.is_error, text(result)
    assert result.structured_content is not None
    return dict(result.structured_content)


def error(result: CallToolResult) -> str:
    assert result.is_error, f"expected an error, got {result.structured_content}"
    return text(result)


def wav_samples(data: bytes) -> array.array[int]:
    with wave.open(io.BytesIO(data)) as decoded:
        assert (decoded.getnchannels(), decoded.getsampwidth()) == (1, 2)
        return array.array("h", decoded.readframes(decoded.getnframes()))


def files_under(root: Path, *, pages: bool = False) -> list[Path]:
    """The files under `root`, sorted; without the mixer.html a stems job's saved files get beside them, unless
    `pages` (tests/test_mixer_local.py is about those)."""
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and (pages or p.name != "mixer.html"))


def curl_available() -> bool:
    return shutil.which("curl") is not None
