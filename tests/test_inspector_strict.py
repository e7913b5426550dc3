"""The MCP Inspector's schema-portability check, `inspector --cli <server> --method tools/list --strict`, finds
nothing: no errors, no warnings (it prints 'N errors, M warnings across K tools.' when it finds any)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .support import child_env, command

pytestmark = pytest.mark.slow
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def test_the_inspectors_strict_check_of_tools_list_finds_nothing(tmp_path: Path) -> None:
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed, so the MCP Inspector cannot run")
    run = subprocess.run([npx, "-y", INSPECTOR, "--cli", *command(), "--sandbox", "--method", "tools/list",
                          "--strict"], capture_output=True, text=True, timeout=300,
                         env=child_env(SUNO_STEMS_OUTPUT_DIR=str(tmp_path)))
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"name": "split_stems"' in run.stdout, "the inspector listed no tools"
    found = re.search(r"(\d+) errors?, (\d+) warnings? across", run.stderr)
    issues = re.findall(r"(?:Warning|Error): tool \"(\w+)\"\n  Path: (\S+)", run.stderr)
    assert found is None and issues == [], f"inspector --strict: {found and found.group(0)}: {issues[:40]}"
