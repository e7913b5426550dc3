"""Virtual environments for the agent frameworks, one per framework, cached by a hash of its pins.

Each framework is installed on its own, exactly as a new user would (`pip install NAME==VERSION`), into
`<cache>/<name>-<hash>`; the server is NOT installed into them (frameworks pin their own `mcp`, and the
server wheel installs the top-level packages `server` and `tools`): drivers start the server through its
console script, given to them by the test. `python envs.py [NAME ...]` builds them ahead of a run.

Cache folder: $SUNO_STEMS_COMPAT_CACHE, else ~/.cache/suno-stems-mcp-compat.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PYTHON = os.environ.get("SUNO_STEMS_COMPAT_PYTHON", sys.executable)
"""Interpreter the framework venvs are made from (the one running the tests by default)."""

FRAMEWORKS: dict[str, list[str]] = {
    # name: pip requirements, exact versions as published on PyPI (checked with `pip index versions`)
    "openai-agents": ["openai-agents==0.24.0"],
    # `pydantic-ai` (the meta package with every provider) is at 2.66.0 on PyPI; the slim package with its mcp
    # extra is the one at 2.68.0 and is what the pydantic-ai docs install for MCP use.
    "pydantic-ai": ["pydantic-ai-slim[mcp]==2.68.0"],
    "langchain-mcp-adapters": ["langchain-mcp-adapters==0.3.2"],
    "google-adk": ["google-adk[mcp]==2.13.0"],  # the MCP toolset needs the mcp extra
    "fastmcp": ["fastmcp==4.2.3"],
    "llama-index-tools-mcp": ["llama-index-tools-mcp==0.6.0"],
    # smolagents[mcp] alone resolves mcp 2.x, which its adapter (mcpadapt) cannot import
    # (`streamablehttp_client` is gone from mcp 2): a new user has to add mcp<2 by hand, so do we.
    "smolagents": ["smolagents[mcp]==1.26.0", "mcp<2"],
    "agno": ["agno[mcp]==3.1.10"],  # the mcp extra brings mcp and fastmcp, which MCPTools needs
    "crewai-tools": ["crewai-tools[mcp]==1.15.30"],
    "mcp-use": ["mcp-use==1.7.1"],
}

BUILD_TIMEOUT = 900.0


def cache_root() -> Path:
    raw = os.environ.get("SUNO_STEMS_COMPAT_CACHE") or "~/.cache/suno-stems-mcp-compat"
    return Path(raw).expanduser()


def pins_hash(name: str) -> str:
    py = subprocess.run([PYTHON, "-c", "import sys; print(sys.version)"], capture_output=True, text=True).stdout
    blob = json.dumps([name, FRAMEWORKS[name], py.strip(), 1]).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


@dataclass
class Env:
    name: str
    path: Path
    python: Path | None  # None when it could not be installed
    install_seconds: float | None
    error: str | None
    versions: dict[str, str]
    cached: bool


def _versions(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True)
    try:
        return {p["name"].lower(): p["version"] for p in json.loads(out.stdout)}
    except ValueError:
        return {}


def ensure(name: str) -> Env:
    """The venv for this framework: built now unless a build with the same pins is cached (success or failure).
    Safe to call from several processes at once (pytest-xdist workers): one builds, the others wait."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    key = f"{name}-{pins_hash(name)}"
    path = root / key
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_locked(name, path, root / f"{key}.log")


def _ensure_locked(name: str, path: Path, log: Path) -> Env:
    done, failed = path / ".compat-ok.json", path / ".compat-failed.json"
    python = path / "bin" / "python"
    if done.exists():
        info = json.loads(done.read_text())
        return Env(name, path, python, info["install_seconds"], None, info["versions"], True)
    if failed.exists():
        info = json.loads(failed.read_text())
        return Env(name, path, None, info.get("install_seconds"), info["error"], {}, True)
    shutil.rmtree(path, ignore_errors=True)  # a build that was interrupted: no marker, start over
    started = time.monotonic()
    error = None
    requirements = FRAMEWORKS[name]
    with open(log, "w") as out:
        steps = [
            [PYTHON, "-m", "venv", str(path)],
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *requirements],
        ]
        for step in steps:
            out.write("$ " + " ".join(step) + "\n")
            out.flush()
            try:
                rc = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT).returncode
            except subprocess.TimeoutExpired:
                rc, error = -1, f"`pip install {' '.join(requirements)}` did not finish in {BUILD_TIMEOUT:g} s"
            if rc != 0:
                error = error or f"`pip install {' '.join(requirements)}` failed (exit {rc}): " + _tail(log)
                break
    seconds = round(time.monotonic() - started, 1)
    if error is not None:
        # The failure is cached too (a clean clone retries it; delete the folder to retry here).
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        failed.write_text(json.dumps({"error": error, "install_seconds": seconds}))
        return Env(name, path, None, seconds, error, {}, False)
    versions = _versions(python)
    done.write_text(json.dumps({"install_seconds": seconds, "versions": versions, "pins": requirements}))
    return Env(name, path, python, seconds, None, versions, False)


def _tail(log: Path, lines: int = 12) -> str:
    text = log.read_text(errors="replace").strip().splitlines()
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())[-1500:]


def ensure_all(names: list[str], workers: int = 3) -> dict[str, Env]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(names, pool.map(ensure, names), strict=False))


if __name__ == "__main__":
    wanted = sys.argv[1:] or list(FRAMEWORKS)
    t0 = time.monotonic()
    for name, env in ensure_all(wanted).items():
        state = "cached" if env.cached else "built"
        print(f"{name:24} {state:6} {env.install_seconds!s:>7} s  {env.error or env.path}", flush=True)
    print(f"total {time.monotonic() - t0:.1f} s")
