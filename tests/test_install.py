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


# A distribution that installs the generic top-level names this project once installed itself (as `mcp-suno` on
# PyPI ships a top-level `tools`): each module says whose it is.
OTHER_MODULES = {"server/__init__.py": "WHOSE = 'other-dist'\n", "tools/__init__.py": "WHOSE = 'other-dist'\n"}


def _other_wheel(folder: Path) -> Path:
    """A minimal wheel (PEP 427) of `other-dist`, written by hand so that building it needs no network."""
    wheel = folder / "other_dist-1.0-py3-none-any.whl"
    info = "other_dist-1.0.dist-info"
    files = {**OTHER_MODULES,
             f"{info}/METADATA": "Metadata-Version: 2.1\nName: other-dist\nVersion: 1.0\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, body in {**files, f"{info}/RECORD": record}.items():
            archive.writestr(name, body)
    return wheel


def _environment(folder: Path) -> Path:
    """A fresh virtualenv that finds this suite's installed dependencies (mcp, httpx, pydantic) after its own
    site-packages, so the two distributions under test share one site-packages of their own and nothing else.
    A plain path line in a .pth file does not run the .pth files it points at, so this project's editable
    install does not leak in."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    import sysconfig

    (Path(purelib) / "zz_suite_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _install(python: Path, wheel: Path) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300, env=child_env(PIP_DISABLE_PIP_VERSION_CHECK="1"))


def _both_work(python: Path, tmp_path: Path) -> None:
    other = subprocess.run([str(python), "-c", "import server, tools; print(server.WHOSE, tools.WHOSE)"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path, env=child_env())
    assert other.stdout.split() == ["other-dist", "other-dist"], other.stderr
    ours = subprocess.run([str(python), "-c", "from suno_stems_mcp.tools import published; "
                           "from suno_stems_mcp.mcp_server import build_server; print([t.name for t in published()])"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path, env=child_env())
    assert ours.returncode == 0 and "split_stems" in ours.stdout, ours.stderr
    command = subprocess.run([str(python.with_name("suno-stems-mcp")), "--version"], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path, env=child_env())
    assert command.stdout.strip() == f"suno-stems-mcp {__version__}", command.stderr


@pytest.mark.parametrize("order", ["other first", "ours first"])
def test_a_distribution_with_its_own_server_and_tools_coexists(wheel: Path, tmp_path: Path, order: str) -> None:
    python = _environment(tmp_path / "venv")
    other = _other_wheel(tmp_path)
    for each in ([other, wheel] if order == "other first" else [wheel, other]):
        _install(python, each)
    _both_work(python, tmp_path)
    # Removing either one leaves the other whole: no file was shared between them.
    subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "other-dist"], check=True, timeout=120,
                   env=child_env())
    ours = subprocess.run([str(python.with_name("suno-stems-mcp")), "--version"], capture_output=True, text=True,
                          timeout=60, env=child_env())
    assert ours.returncode == 0, ours.stderr


def test_the_demo_runs_from_a_folder_that_holds_a_server_py_and_a_tools_package(wheel: Path, tmp_path: Path) -> None:
    """Children are started by the console script or an isolated interpreter, never `-m` from the user's folder:
    a `server.py` or `tools/` there is never run."""
    python = _environment(tmp_path / "venv")
    _install(python, wheel)
    folder = tmp_path / "my-music-project"
    (folder / "tools").mkdir(parents=True)
    marker = tmp_path / "hijacked"
    trap = f"open({str(marker)!r}, 'w').write('run'); raise SystemExit('the folder’s own code ran')\n"
    (folder / "server.py").write_text(trap)
    (folder / "tools" / "__init__.py").write_text(trap)
    result = subprocess.run([str(python.with_name("suno-stems-mcp")), "demo"], cwd=folder, capture_output=True,
                            text=True, timeout=300, env=child_env(TMPDIR=str(tmp_path)))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Done." in result.stdout and not marker.exists()
