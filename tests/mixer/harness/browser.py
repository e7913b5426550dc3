"""Debian's Chromium through PyPI playwright (never a Playwright browser download)."""

from __future__ import annotations

import os
import shutil

from playwright.async_api import Browser, Playwright

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

_CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser")


def find_chromium() -> str:
    """MIXER_CHROMIUM, else the first Debian Chromium on PATH (or in /usr/lib/chromium)."""
    explicit = os.environ.get("MIXER_CHROMIUM")
    if explicit:
        return explicit
    for name in _CANDIDATES:
        bundled = f"/usr/lib/chromium/{name}"
        found = shutil.which(name) or (bundled if os.path.exists(bundled) else None)
        if found:
            return found
    raise RuntimeError("No Chromium found: apt-get install -y chromium-headless-shell (or set MIXER_CHROMIUM)")


async def launch_chromium(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_FLAGS, headless=True)
