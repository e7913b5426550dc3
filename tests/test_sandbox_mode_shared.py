"""`--sandbox` servers started one per call (as langchain-mcp-adapters and llama-index start them) share one
sandbox: a split made through one is found, finished and saved through the next."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from .support import child_env, ok, stdio_params

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_a_split_made_by_one_sandbox_process_is_followed_by_the_next(tmp_path: Path) -> None:
    env = child_env(SUNO_STEMS_OUTPUT_DIR=str(tmp_path / "stems"), SUNO_STEMS_SANDBOX_DIR=str(tmp_path / "state"),
                    SUNO_STEMS_SANDBOX_STEMS_SECONDS="1")
    with (tmp_path / "first.log").open("w") as errlog:
        async with Client(stdio_client(stdio_params("--sandbox", env=env), errlog=errlog)) as first:
            songs = ok(await first.call_tool("list_tracks", {}))["tracks"]
            song = next(t for t in songs if t["splittable"])
            job = ok(await first.call_tool("split_stems", {"parent_job_id": song["job_id"], "index": song["index"],
                                                           "wait_seconds": 0}))
    assert not job["done"]
    with (tmp_path / "second.log").open("w") as errlog:
        async with Client(stdio_client(stdio_params("--sandbox", env=env), errlog=errlog)) as second:
            for _ in range(10):
                later = ok(await second.call_tool("get_job", {"job_id": job["job_id"], "wait_seconds": 3}))
                if later["done"] and all(t.get("file") for t in later["tracks"]):
                    break
    assert later["status"] == "COMPLETED", later
    assert all(Path(t["file"]).is_file() for t in later["tracks"])
