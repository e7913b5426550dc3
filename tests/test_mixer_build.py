"""The mixer view as shipped: the committed mixer.html is what its sources build, it is one self-contained
document, and the wheel carries it but not its sources."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from suno_stems_mcp.mixer import CONFIG_MARKER, view_html

from .support import child_env

ROOT = Path(__file__).resolve().parents[1]
MIXER = Path("server/suno_stems_mcp/mixer")
HOST = Path("tests/mixer/harness/web")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed: the view cannot be rebuilt here")
def test_the_committed_view_is_what_its_sources_build(tmp_path: Path) -> None:
    """`npm ci && npm run check` in a copy of the sources (never in the tree: no node_modules left behind)."""
    shutil.copytree(ROOT / MIXER / "view", tmp_path / MIXER / "view", ignore=shutil.ignore_patterns("node_modules"))
    shutil.copy2(ROOT / MIXER / "mixer.html", tmp_path / MIXER / "mixer.html")
    if (ROOT / HOST).is_dir():  # the browser tests' host script is built by the same script
        shutil.copytree(ROOT / HOST, tmp_path / HOST)
    view = tmp_path / MIXER / "view"
    for step in (["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"], ["npm", "run", "check"]):
        done = subprocess.run(step, cwd=view, capture_output=True, text=True, timeout=300, env=child_env())
        assert done.returncode == 0, f"{' '.join(step)} failed:\n{done.stdout}\n{done.stderr}"


def test_the_view_is_one_self_contained_document() -> None:
    html = view_html()
    assert html.count(CONFIG_MARKER) == 1
    markup = re.sub(r"<script>.*?</script>", "<script></script>", html, flags=re.S)
    assert markup.count("<script") == 2  # the config block and the inline bundle
    assert not re.search(r"<(link|img|iframe|audio|video|source)\b|\bsrc=|@import|url\(", markup)
    assert len(html.encode()) < 600_000


@pytest.mark.slow
def test_the_wheel_ships_the_built_view_and_not_its_sources(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, timeout=300, env=child_env())
    with zipfile.ZipFile(next(tmp_path.glob("suno_stems_mcp-*.whl"))) as archive:
        names = archive.namelist()
        shipped = archive.read("suno_stems_mcp/mixer/mixer.html").decode()
    assert shipped == view_html()
    assert not [n for n in names if "/mixer/view/" in n or "node_modules" in n]
