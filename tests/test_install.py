"""The built wheel: the right files, the console script, and it starts in a fresh environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from suno_stems_mcp import __version__

from .support import child_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)], check=True,
                   timeout=300, env=child_env())
    return next(out.glob("suno_stems_mcp-*.whl"))


def test_the_wheel_holds_one_distinctive_package_and_the_command(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
        metadata = next(archive.read(n).decode() for n in names if n.endswith("METADATA"))
    assert wheel.name.startswith(f"suno_stems_mcp-{__version__}-py3-none-any")
    assert {n.split("/")[0] for n in names if not n.startswith("suno_stems_mcp-")} == {"suno_stems_mcp"}
    assert {"suno_stems_mcp/sandbox/audio.py", "suno_stems_mcp/tools/split_stems.py"} <= set(names)
    assert not any("__pycache__" in n or n.endswith(".pth") for n in names)
    assert "suno-stems-mcp = suno_stems_mcp.cli:main" in entry_points
    assert "Requires-Dist: mcp<3,>=2.3" in metadata and "Requires-Python: >=3.10" in metadata


def test_the_wheel_starts_in_a_fresh_environment(wheel: Path, tmp_path: Path) -> None:
    uvx = shutil.which("uvx") or str(Path(sys.executable).with_name("uvx"))
    if not Path(uvx).exists():
        pytest.skip("uv is not installed")
    result = subprocess.run([uvx, "--isolated", "--from", str(wheel), "suno-stems-mcp", "--version"],
                            capture_output=True, text=True, timeout=300,
                            env=child_env(UV_CACHE_DIR=str(tmp_path / "cache")))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"suno-stems-mcp {__version__}"
