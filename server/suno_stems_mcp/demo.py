"""`suno-stems-mcp demo`: the whole job, end to end, the way an assistant does it.

It starts `suno-stems-mcp --sandbox` as a subprocess (the installed command, never a file of the current
folder), talks to it with the official MCP client over stdio, and goes list_tracks -> split_stems (showing
progress) -> get_job, then shows the files on disk. The sandbox is the built-in apiframe emulator: no key, no
network, no credits.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from . import __version__
from .cli import own_command
from .vocabulary import SPLIT_PRICE

FOLLOW_UP_CALLS = 60
"""A client that allows only short calls needs several get_job calls for one split; this many is plenty."""


_PLAIN = str.maketrans({"█": "#", "░": ".", "…": "...", "“": '"', "”": '"', "—": "-", "’": "'"})


def _say(line: str = "") -> None:
    print(_printable(line), flush=True)


def _printable(text: str) -> str:
    """The text as this terminal can show it: where stdout cannot encode it (cp1252 on Windows, a pipe in
    ASCII), plain ASCII stand-ins, and '?' for anything else."""
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
        return text
    except (UnicodeEncodeError, LookupError):
        return text.translate(_PLAIN).encode(encoding, errors="replace").decode(encoding, errors="replace")


def _call_result(result: Any) -> dict[str, Any]:
    if result.is_error:
        raise RuntimeError("".join(getattr(block, "text", "") for block in result.content))
    return dict(result.structured_content)


def _bar(progress: float, width: int = 28) -> str:
    filled = int(width * max(0.0, min(progress, 100.0)) / 100)
    return "█" * filled + "░" * (width - filled)


def _describe(path: Path) -> str:
    try:
        with wave.open(str(path)) as audio:
            seconds = audio.getnframes() / audio.getframerate()
        return f"{seconds:.1f} s of audio, {path.stat().st_size / 1_000_000:.1f} MB"
    except (wave.Error, OSError, EOFError):
        return f"{path.stat().st_size / 1_000_000:.1f} MB"


async def _run(output: Path, server_log: Path, state: Path) -> None:
    executable, *args = own_command()
    params = StdioServerParameters(
        command=executable,
        args=[*args, "--sandbox"],
        env={"SUNO_STEMS_OUTPUT_DIR": str(output), "SUNO_STEMS_LOG_LEVEL": "INFO",
             "SUNO_STEMS_SANDBOX_DIR": str(state)},  # a sandbox of its own: the demo makes a real split
    )
    with server_log.open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            tools = await client.list_tools()
            _say(f"Connected to suno-stems-mcp over stdio; it offers {', '.join(t.name for t in tools.tools)}.")
            _say()

            _say("1. list_tracks: the songs in the (sandbox) apiframe account")
            listing = _call_result(await client.call_tool("list_tracks", {"limit": 5}))
            for track in listing["tracks"]:
                mark = "" if track["splittable"] else "   (a stems result: not splittable)"
                _say(f"   {track.get('title') or 'untitled':<20} job {track['job_id'][:8]}…  track {track['index']}  "
                     f"{track.get('duration') or 0:.0f} s{mark}")
            choice = next(t for t in listing["tracks"] if t["splittable"])
            _say()

            _say(f"2. split_stems: splitting track {choice['index']} of “{choice.get('title')}” "
                 f"({SPLIT_PRICE} credits; free here)")
            last = [-1.0]

            live = sys.stdout.isatty()

            async def progress(progress: float, total: float | None, message: str | None) -> None:
                if progress != last[0]:
                    last[0] = progress
                    line = f"   {_bar(progress)} {progress:5.1f}%  {message or ''}"
                    print(_printable(f"\r{line:<72}" if live else line), end="" if live else "\n", flush=True)

            started = time.monotonic()
            job = _call_result(await client.call_tool(
                "split_stems", {"parent_job_id": choice["job_id"], "index": choice["index"], "wait_seconds": 40},
                progress_callback=progress))
            if live:
                print(flush=True)
            _say(f"   job {job['job_id']} is {job['status']} after {time.monotonic() - started:.1f} s")
            _say()

            _say("3. get_job: followed as an assistant follows next_step, until the job is done (free; saved files "
                 "are not re-fetched)")
            job = _call_result(await client.call_tool(
                "get_job", {"job_id": job["job_id"], "wait_seconds": 40}, progress_callback=progress))
            for _ in range(FOLLOW_UP_CALLS):
                if job["done"] and "continue saving" not in job["next_step"]:
                    break
                job = _call_result(await client.call_tool(
                    "get_job", {"job_id": job["job_id"], "wait_seconds": 40}, progress_callback=progress))
            if live and job["status"] != "COMPLETED":
                print(flush=True)
            _say(f"   status {job['status']}, progress {job.get('progress')}%, credits {job.get('credit_cost')}, "
                 f"reused {str(job['reused']).lower()}, sandbox {str(job['sandbox']).lower()}")
            _say(f"   next_step: {job['next_step']}")
            _say()
            if job["status"] != "COMPLETED":
                raise RuntimeError(f"the split ended {job['status']}: {job.get('error')}")

            _say("4. The stems, on disk:")
            for track in job["tracks"]:
                path = Path(track.get("file")) if track.get("file") else None
                if path is None or not path.is_file():
                    raise RuntimeError(f"the {track['id']} file was not saved")
                _say(f"   {track['id']:<13} {path}")
                _say(f"   {'':<13} {_describe(path)} — also at {track['audio_url']} (until the sandbox stops)")
            _say()
            _say("The same result, as the model receives it (structured content):")
            _say(json.dumps(job, indent=2, ensure_ascii=False))


def run_demo(output_dir: str | None = None) -> int:
    output = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="suno-stems-demo-"))
    output.mkdir(parents=True, exist_ok=True)
    server_log = output / "server.log"
    _say(f"suno-stems-mcp {__version__} demo — against the built-in apiframe sandbox (no key, no network, no credits)")
    _say(f"Files will be saved in {output}")
    _say()
    try:
        with tempfile.TemporaryDirectory(prefix="suno-stems-demo-state-") as state:
            anyio.run(_run, output, server_log, Path(state))
    except Exception as problem:
        _say()
        _say(f"The demo failed: {problem}")
        log = server_log.read_text(errors="replace") if server_log.exists() else ""
        if log.strip():
            _say("The server's log:")
            _say(log)
        return 1
    _say(f"Done. Play the files in {output}, or run the server for real: see the README.")
    return 0
