"""Child process of download.py (not a benchmark itself): downloads one file and reports time, CPU and memory.

    python bench/_download_child.py MODE URL WARM_URL OUTPUT_DIR JOB_ID

MODE `downloader`: the server's own `Downloader.save` (server/downloads.py), from `Runtime.downloader()`, exactly
as get_job uses it. Diagnostic modes, none with fsync/rename/checks:
  plain         the Runtime's async pool, a bare `stream -> aiter_raw(64 KiB) -> write` loop
  thread-httpx        a blocking httpx.Client streaming `iter_raw()` in a worker thread (no event loop per chunk)
  thread-httpx-fsync  the same, plus `os.fsync` before closing (what durability costs)
A small warm-up download runs first, then the peak-RSS counter is reset (/proc/self/clear_refs), so the
figures are the download's own.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

from suno_stems_mcp.apiframe.models import ApiTrack
from suno_stems_mcp.config import Settings
from suno_stems_mcp.core.runtime import Runtime
from suno_stems_mcp.deadline import Deadline

CHUNK = 64 * 1024  # what httpcore reads per socket read anyway


async def plain(runtime: Runtime, url: str, path: Path) -> None:
    async with runtime.http.stream("GET", url) as response:
        response.raise_for_status()
        with open(path, "wb") as out:
            async for chunk in response.aiter_raw(CHUNK):
                out.write(chunk)


def thread_httpx(client: Any, url: str, path: Path, fsync: bool) -> None:
    with client.stream("GET", url) as response, open(path, "wb") as out:
        response.raise_for_status()
        for chunk in response.iter_raw():
            out.write(chunk)
        if fsync:
            out.flush()
            os.fsync(out.fileno())


async def main() -> None:
    mode, url, warm_url, output, job_id = sys.argv[1:6]
    root = Path(output)
    runtime = Runtime(Settings(output_dir=root, sandbox=True, download=True))
    downloader = runtime.downloader()
    track = ApiTrack(id="vocals", audio_url=url)
    warm = ApiTrack(id="vocals", audio_url=warm_url)
    await downloader.save(downloader.folder_for("warm up", "00000000" + job_id[8:]), [warm], Deadline(120))
    sync_client = None
    if mode.startswith("thread-httpx"):  # made and warmed before the clock starts, like the async pool
        import httpx

        sync_client = httpx.Client()
        sync_client.get(warm_url).raise_for_status()
    gc.collect()
    reset = c.reset_hwm()
    before = c.proc_status()
    cpu0 = c.cpu_seconds()
    t0 = time.perf_counter()
    if mode == "downloader":
        folder = downloader.folder_for("bench", job_id)
        saved = await downloader.save(folder, [track], Deadline(900))
        path = saved[0].path
        assert path is not None, "the download ran out of time"
    else:
        import anyio

        path = root / f"{mode}-{job_id}.wav"
        if mode == "plain":
            await plain(runtime, url, path)
        elif mode in ("thread-httpx", "thread-httpx-fsync"):
            await anyio.to_thread.run_sync(thread_httpx, sync_client, url, path, mode.endswith("fsync"))
        else:
            raise SystemExit(f"unknown mode {mode}")
    elapsed = time.perf_counter() - t0
    cpu = c.cpu_seconds() - cpu0
    after = c.proc_status()
    size = os.path.getsize(path)
    await runtime.aclose()
    print(json.dumps({"mode": mode, "seconds": elapsed, "cpu_seconds": cpu, "bytes": size, "hwm_reset": reset,
                      "rss_before": before["VmRSS"], "hwm_before": before["VmHWM"], "rss_after": after["VmRSS"],
                      "hwm_after": after["VmHWM"], "path": str(path)}))


if __name__ == "__main__":
    asyncio.run(main())
