"""The Claude Desktop bundle: its manifest matches the server, and the packed bundle starts the way Claude
Desktop starts it (`uv run --directory <bundle> suno-stems-mcp`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from suno_stems_mcp import __version__
from suno_stems_mcp.config import Settings
from suno_stems_mcp.mcp_server import build_server

from .support import child_env, ok

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((ROOT / "manifest.json").read_text())
MCPB = ["npx", "-y", "@anthropic-ai/mcpb@2.1.2"]


@pytest.mark.anyio
async def test_the_manifest_lists_exactly_the_servers_tools() -> None:
    async with Client(build_server(Settings())) as client:
        listed = (await client.list_tools()).tools
    assert MANIFEST["tools"] == [{"name": t.name, "description": t.description} for t in listed]


def test_the_manifest_describes_this_version_and_its_settings() -> None:
    assert MANIFEST["version"] == __version__ and MANIFEST["manifest_version"] == "0.4"
    config = MANIFEST["user_config"]
    assert config["apiframe_api_key"]["sensitive"] is True and config["apiframe_api_key"]["required"] is False
    assert config["output_dir"]["type"] == "directory"
    assert (config["sandbox"]["type"], config["sandbox"]["default"]) == ("boolean", False)  # try it without a key
    env = MANIFEST["server"]["mcp_config"]["env"]
    assert env == {"APIFRAME_API_KEY": "${user_config.apiframe_api_key}",
                   "SUNO_STEMS_OUTPUT_DIR": "${user_config.output_dir}",
                   "SUNO_STEMS_SANDBOX": "${user_config.sandbox}"}
    args = MANIFEST["server"]["mcp_config"]["args"]
    assert args[-1] == "suno-stems-mcp" and "--frozen" in args  # installs what uv.lock pins, never resolves afresh
    assert (ROOT / MANIFEST["server"]["entry_point"]).is_file()
    assert any("apiframe" in url for url in MANIFEST["privacy_policies"])
    assert set(MANIFEST["compatibility"]["platforms"]) == {"darwin", "win32", "linux"}


def _bundle(tmp_path: Path) -> Path:
    """The bundle .ci/run packed, or a fresh one packed here with the official CLI."""
    given = os.environ.get("SUNO_STEMS_BUNDLE")
    if given and Path(given).is_file():
        return Path(given)
    if shutil.which("npx") is None:
        pytest.skip("npx (Node.js) is not installed, so the official mcpb CLI cannot pack the bundle")
    target = tmp_path / "suno-stems-mcp.mcpb"
    subprocess.run([*MCPB, "pack", str(ROOT), str(target)], check=True, capture_output=True, timeout=300)
    return target


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_packed_bundle_starts_under_uv_like_claude_desktop_runs_it(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        archive.extractall(unpacked)
    assert {"manifest.json", "pyproject.toml", "README.md", "uv.lock", "server/suno_stems_mcp/mcp_server.py",
            "tools/suno_stems_mcp/tools/split_stems.py"} <= set(names)
    assert not any(name.startswith(("tests/", ".venv/", ".git/", "bench/", ".ci/")) for name in names)
    uv = shutil.which("uv") or str(Path(os.sys.executable).with_name("uv"))
    if not Path(uv).exists():
        pytest.skip("uv is not installed (pip install uv)")
    config = json.loads((unpacked / "manifest.json").read_text())["server"]["mcp_config"]
    args = [arg.replace("${__dirname}", str(unpacked)) for arg in config["args"]]
    values = {"${user_config.apiframe_api_key}": "", "${user_config.output_dir}": str(tmp_path / "stems"),
              "${user_config.sandbox}": "true"}  # as Claude Desktop fills them in with the sandbox switch on
    env = child_env(UV_CACHE_DIR=str(tmp_path / "uv-cache"), **{k: values[v] for k, v in config["env"].items()})
    params = StdioServerParameters(command=uv, args=args, env=env)
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            assert len((await client.list_tools()).tools) == 3
            assert ok(await client.call_tool("list_tracks", {"limit": 1}))["tracks"]
