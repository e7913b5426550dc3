"""Figures the reliability tests record as they run. A fully green session writes them to the file that
SUNO_STEMS_RELIABILITY_FILE names (RELIABILITY.md, when the figures are to be refreshed), and to no file
otherwise: a test run never rewrites a tracked file by itself.

The file is written only by a run in which every test passed and every reliability section reported, so
what it says is what the code did in that run.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SECTIONS = {
    "faults": "Fault matrix",
    "fuzzing": "Input fuzzing",
    "secrets": "Secret hygiene",
    "http": "The HTTP transport under attack",
    "soak": "Soak",
}


@dataclass
class Section:
    intro: str = ""
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)


_lock = threading.Lock()
_sections: dict[str, Section] = {}


def describe(key: str, intro: str, headers: list[str] | None = None) -> None:
    with _lock:
        section = _sections.setdefault(key, Section())
        section.intro = intro
        if headers is not None:
            section.headers = headers


def row(key: str, *cells: object) -> None:
    with _lock:
        _sections.setdefault(key, Section()).rows.append([str(cell) for cell in cells])


def fact(key: str, text: str) -> None:
    with _lock:
        _sections.setdefault(key, Section()).facts.append(text)


def dump(path: Path) -> None:
    """A worker's figures, for the controller to merge (pytest-xdist runs tests in several processes)."""
    with _lock:
        path.write_text(json.dumps({key: vars(section) for key, section in _sections.items()}))


def merge(path: Path) -> None:
    for key, data in json.loads(path.read_text()).items():
        with _lock:
            section = _sections.setdefault(key, Section())
            section.intro = section.intro or data["intro"]
            section.headers = section.headers or data["headers"]
            section.rows += data["rows"]
            section.facts += data["facts"]


def complete() -> bool:
    return all(key in _sections and (_sections[key].rows or _sections[key].facts) for key in SECTIONS)


def render() -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Reliability",
        "",
        "Written by the test suite itself (`tests/reliability.py`) at the end of a run in which every test "
        "passed, so the figures are what this code did in that run. Regenerate with "
        "`.venv/bin/python -m pytest`.",
        "",
        f"- Run: {now}, Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs",
        f"- Command: `{' '.join(['pytest', *sys.argv[1:]]) or 'pytest'}`",
        "",
    ]
    for key, title in SECTIONS.items():
        section = _sections.get(key)
        if section is None:
            continue
        lines += [f"## {title}", ""]
        if section.intro:
            lines += [section.intro, ""]
        if section.headers and section.rows:
            if section.headers[-1] == "passed":
                passed = sum(cells[-1] == "yes" for cells in section.rows)
                lines += [f"**{passed} of {len(section.rows)} passed.**", ""]
            lines.append("| " + " | ".join(section.headers) + " |")
            lines.append("|" + "---|" * len(section.headers))
            lines += ["| " + " | ".join(cells) + " |" for cells in sorted(section.rows)]
            lines.append("")
        lines += [f"- {fact}" for fact in section.facts]
        if section.facts:
            lines.append("")
    return "\n".join(lines)


def write_if_complete(session_failed: bool) -> Path | None:
    target = os.environ.get("SUNO_STEMS_RELIABILITY_FILE", "").strip()
    if not target or session_failed or not complete():
        return None
    output = Path(target)
    output.write_text(render())
    return output
