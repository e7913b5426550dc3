"""Every command in the README works as written (or, where it needs a host we do not have, its server part)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .support import child_env, command, served_url

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
DEMO = 'python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/suno-stems-mcp demo'
TESTS = 'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && .venv/bin/python -m pytest'
INSTALL = ["uvx", "--from", "/path/to/suno-stems-mcp", "suno-stems-mcp"]
"""How every host setup in the README starts the server (from a clone, until the package is on PyPI)."""


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_quickstart_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    shell = [line.strip() for block in blocks("bash") for line in block.splitlines()]
    assert DEMO in shell and TESTS in shell
    assert TESTS in (ROOT / ".ci" / "run").read_text()


def test_every_json_config_starts_the_server_the_same_way() -> None:
    configs = [json.loads(block) for block in blocks("json") if '"mcpServers"' in block]
    assert len(configs) == 2
    for config in configs:
        server = config["mcpServers"]["suno-stems"]
        assert [server["command"], *server["args"]] == INSTALL
        assert server["env"]["APIFRAME_API_KEY"].startswith("afk_")
    claude_code = next(line for block in blocks("bash") for line in block.splitlines() if "claude mcp add" in line)
    assert shlex.split(claude_code.split(" -- ", 1)[1]) == INSTALL


def test_the_configuration_table_matches_the_settings() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.M))
    source = "".join(p.read_text() for folder in ("server", "tools") for p in (ROOT / folder).rglob("*.py")
                     if "sandbox" not in p.parts)
    used = set(re.findall(r'"((?:APIFRAME|SUNO_STEMS)_[A-Z_]+)"', source))
    assert documented == used


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_host_setups_start_a_working_server_from_this_checkout(tmp_path: Path) -> None:
    """The command every host setup runs, with the clone's path filled in, serves MCP over stdio."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    uvx = shutil.which("uvx") or str(Path(sys.executable).with_name("uvx"))
    if not Path(uvx).exists():
        pytest.skip("uv is not installed")
    args = [str(ROOT) if arg == "/path/to/suno-stems-mcp" else arg for arg in INSTALL[1:]]
    env = child_env(UV_CACHE_DIR=str(tmp_path / "cache"), SUNO_STEMS_OUTPUT_DIR=str(tmp_path / "stems"))
    params = StdioServerParameters(command=uvx, args=[*args, "--sandbox"], env=env)
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            assert {t.name for t in (await client.list_tools()).tools} == {"list_tracks", "split_stems", "get_job"}
            listed = (await client.call_tool("list_tracks", {"limit": 1})).structured_content
    assert listed is not None and listed["tracks"]


@pytest.mark.slow
def test_the_http_commands_serve_and_the_python_example_splits_a_song(tmp_path: Path) -> None:
    lines = [line for block in blocks("bash") for line in block.splitlines() if "--transport http" in line]
    assert len(lines) == 2
    example = blocks("python")[0]
    for line in lines:
        words = shlex.split(line)
        env = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
        args = [word for word in words if word not in {f"{k}={v}" for k, v in env.items()}]
        assert args[0] == "suno-stems-mcp"
        args = [*command(), *args[1:], "--sandbox"]
        args[args.index("--port") + 1] = "0"
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=child_env(**env, SUNO_STEMS_OUTPUT_DIR=str(tmp_path)))
        try:
            port = served_url(process).rsplit(":", 1)[1].removesuffix("/mcp")
            if "SUNO_STEMS_HTTP_TOKEN" in env:
                continue
            script = tmp_path / "example.py"
            script.write_text(example.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
            run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr
            assert run.stdout.startswith(("Done", "Still splitting"))
        finally:
            process.terminate()
            process.wait(timeout=15)


@pytest.mark.slow
def test_the_demo_command_works_on_a_fresh_copy(tmp_path: Path) -> None:
    """The README's first command, verbatim, in a copy of the project with no virtualenv yet."""
    copy = tmp_path / "suno-stems-mcp"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".venv", ".ci-venv", "__pycache__", "*.mcpb",
                                                              ".pytest_cache", ".hypothesis", "node_modules"))
    result = subprocess.run(["bash", "-c", DEMO], cwd=copy, capture_output=True, text=True, timeout=600,
                            env=child_env(TMPDIR=str(tmp_path)))  # the demo's stems stay with the test
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "4. The stems, on disk:" in result.stdout and "Done." in result.stdout


def test_the_manifest_and_the_readme_state_the_price_the_server_charges_for() -> None:
    from suno_stems_mcp.vocabulary import SPLIT_PRICE

    manifest = (ROOT / "manifest.json").read_text()
    said = {int(n) for n in re.findall(r"(\d+) (?:apiframe )?credits", README + manifest)}
    assert said == {SPLIT_PRICE}, f"the README and manifest.json name {sorted(said)} credits, not {SPLIT_PRICE}"
