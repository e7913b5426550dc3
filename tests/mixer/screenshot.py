"""Retake the README's screenshot of the mixer (docs/mixer.png) with the browser tests' host and the real server:

    .venv/bin/python -m tests.mixer.screenshot [docs/mixer.png] [--theme light|dark]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import anyio
from mcp import Client
from mcp.client.extension import advertise
from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID
from playwright.async_api import async_playwright

from suno_stems_mcp.mcp_server import build_server
from suno_stems_mcp.mixer import view_html
from suno_stems_mcp.sandbox import Sandbox, SandboxConfig, ThreadedSandbox

from ..support import SEEDED_STEMS, settings_for
from .harness import MixerHost, launch_chromium


async def take(path: Path, theme: str) -> None:
    apps = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
    with ThreadedSandbox(Sandbox(SandboxConfig.fast(track_seconds=95.0))) as running, \
            tempfile.TemporaryDirectory(prefix="mixer-shot-") as output:
        async with async_playwright() as playwright:
            browser = await launch_chromium(playwright)
            try:
                async with Client(build_server(settings_for(running, Path(output))), extensions=[apps]) as client, \
                        MixerHost(view_html(), call_tool=client.call_tool, theme=theme, browser=browser) as host:
                    await host.send_result(await client.call_tool("get_job", {"job_id": SEEDED_STEMS}))
                    await host.wait_until("s => s.ready", timeout=60)
                    await host.controls.locator('.stem[data-stem="vocals"] .volume').fill("70")
                    await host.controls.locator("#seek").fill("300")
                    await host.view.evaluate("() => document.activeElement && document.activeElement.blur()")
                    await host.page.wait_for_timeout(300)
                    await host.page.locator("#view").screenshot(path=str(path))
            finally:
                await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="docs/mixer.png")
    parser.add_argument("--theme", default="light", choices=("light", "dark"))
    args = parser.parse_args()
    Path(args.path).parent.mkdir(parents=True, exist_ok=True)
    anyio.run(take, Path(args.path), args.theme)
    print(f"wrote {args.path}")


if __name__ == "__main__":
    main()
