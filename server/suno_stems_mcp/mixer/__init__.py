"""The stem mixer: one self-contained HTML view (built from view/ into mixer.html, shipped in the wheel).

Hosts with MCP Apps render it from the `ui://` resource beside split_stems and get_job; for the others the
same page is written next to a job's saved stems with a local config (see view/ and its contract)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

URI = "ui://suno-stems/mixer"
"""The view's resource, as tools link to it."""
CDN = "https://cdn2.apiframe.ai"
"""Where apiframe serves stems: declared in the resource's CSP for hosts that honour it (the view fetches its
audio through the stem_audio tool, so it does not need it)."""
PAGE = "mixer.html"
"""The local page's file name, in a job's folder."""
CONFIG_MARKER = '<script id="mixer-config" type="application/json">{}</script>'
STEMS = ("vocals", "instrumental")

_BUILT = Path(__file__).with_name("mixer.html")


@cache
def view_html() -> str:
    """The built view, verbatim."""
    return _BUILT.read_text(encoding="utf-8")


def local_page(job: dict[str, Any], files: dict[str, str]) -> str:
    """The view with its local config: `files` maps vocals and instrumental to file names in the page's folder.
    Every `<` in the JSON is written \\u003c, so no value can close the script element."""
    html = view_html()
    if html.count(CONFIG_MARKER) != 1:
        raise ValueError("the built mixer.html lacks its one mixer-config marker")
    config = {"mode": "local", "job": job, "files": {stem: quote(files[stem]) for stem in STEMS}}
    payload = json.dumps(config, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return html.replace(CONFIG_MARKER, f'<script id="mixer-config" type="application/json">{payload}</script>', 1)
