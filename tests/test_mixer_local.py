"""mixer.html beside a split's saved stems, for hosts that do not show the mixer view: written once and whole,
named in the Job, and the same view with its local config (relative file names, nothing that closes the
config's script element). Opening it in a browser is in tests/test_mixer_browser.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from suno_stems_mcp.mixer import CONFIG_MARKER, local_page, view_html
from suno_stems_mcp.sandbox import ThreadedSandbox

from .support import SEEDED_STEMS, SONG, connected, files_under, ok, settings_for

pytestmark = pytest.mark.anyio


def config_of(page: str) -> dict:
    found = re.search(r'<script id="mixer-config" type="application/json">(.*?)</script>', page, flags=re.S)
    assert found is not None
    return json.loads(found[1])


async def test_a_saved_split_gets_mixer_html_beside_its_stems(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        job = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
    page = Path(job["mixer"])
    folder = page.parent
    assert page.name == "mixer.html" and page.is_absolute()
    assert files_under(tmp_path, pages=True) == [folder / "instrumental.wav", page, folder / "vocals.wav"]
    assert {Path(t["file"]).parent for t in job["tracks"]} == {folder}
    assert "mixer.html there plays them together" in job["next_step"]
    html = page.read_text(encoding="utf-8")
    assert CONFIG_MARKER not in html and len(html) == pytest.approx(len(view_html()), abs=2000)
    config = config_of(html)
    assert config["mode"] == "local"
    assert config["files"] == {"vocals": "vocals.wav", "instrumental": "instrumental.wav"}
    assert config["job"]["job_id"] == SEEDED_STEMS and config["job"]["status"] == "COMPLETED"
    assert config["job"]["source"] == {"title": "Midnight Harbor"}
    assert [t["title"] for t in config["job"]["tracks"]] == ["Vocals", "Instrumental"]
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left


async def test_the_page_is_written_once_and_never_over_one_that_is_there(live_sandbox: ThreadedSandbox,
                                                                         tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        page = Path(ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))["mixer"])
        page.write_text("kept", encoding="utf-8")
        again = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
    async with connected(settings_for(live_sandbox, tmp_path)) as client:  # a new process: found, not rewritten
        later = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
    assert again["mixer"] == later["mixer"] == str(page) and page.read_text(encoding="utf-8") == "kept"


async def test_only_a_saved_split_gets_a_page(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path / "off", download=False)) as client:
        unsaved = ok(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
    async with connected(settings_for(live_sandbox, tmp_path / "song")) as client:
        song = ok(await client.call_tool("get_job", {"job_id": SONG}))
    assert "mixer" not in unsaved and files_under(tmp_path / "off", pages=True) == []
    assert "mixer" not in song and all(t.get("file") for t in song["tracks"])
    assert not [p for p in files_under(tmp_path / "song", pages=True) if p.name == "mixer.html"]


def test_the_config_cannot_close_its_script_element() -> None:
    job = {"job_id": "x", "status": "COMPLETED", "done": True, "tracks": [{"id": "vocals", "title": "</script><b>"}]}
    page = local_page(job, {"vocals": "vocals <1>.mp3", "instrumental": "instrumental.mp3"})
    assert CONFIG_MARKER not in page and "</script><b>" not in page
    assert page.count('<script id="mixer-config"') == 1
    config = config_of(page)
    assert config["job"]["tracks"][0]["title"] == "</script><b>"
    assert config["files"] == {"vocals": "vocals%20%3C1%3E.mp3", "instrumental": "instrumental.mp3"}
