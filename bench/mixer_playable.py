"""The mixer view: time from the tool result to "playable" for two long stems, in real Chromium, through a real
MCP session with the real server (stem_audio chunks from the saved files) on a sandbox.

    .venv/bin/python bench/mixer_playable.py [--quick] [--runs 3] [--seconds 180] [--formats mp3,wav]

MP3 is what apiframe's CDN serves (the sandbox serves it with the `mp3` extra); WAV is the sandbox's default.

The baseline, measured in the same run and the same browser frame: decoding one stem's bytes alone
(decodeAudioData, no transfer). Needs the `browser` extra and a Debian Chromium (chromium-headless-shell or
chromium); without them it says so and reports nothing. The host is the browser tests' (tests/mixer/harness):
its tools/call goes view → postMessage → AppBridge → Playwright (CDP) → the in-memory session, where a real
host has a network hop instead.
"""

from __future__ import annotations

import base64
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import _common as common  # noqa: E402

DECODE_ALONE = """async (b64) => {
  const bin = atob(b64); const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const ctx = new AudioContext();
  const t0 = performance.now();
  await ctx.decodeAudioData(bytes.buffer);
  const t = performance.now() - t0;
  await ctx.close();
  return t / 1000;
}"""


async def one_run(browser: Any, running: Any, output: Path) -> dict[str, float]:
    from mcp import Client
    from mcp.client.extension import advertise
    from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

    from suno_stems_mcp.mcp_server import build_server
    from suno_stems_mcp.mixer import view_html
    from tests.mixer.harness import MixerHost
    from tests.support import SEEDED_STEMS, settings_for

    apps = advertise(EXTENSION_ID, {"mimeTypes": [APP_MIME_TYPE]})
    async with Client(build_server(settings_for(running, output)), extensions=[apps]) as client, \
            MixerHost(view_html(), call_tool=client.call_tool, browser=browser) as host:
        result = await client.call_tool("get_job", {"job_id": SEEDED_STEMS})  # saves the files, untimed
        await host.send_result(result)
        await host.wait_until("s => s.ready || s.error", timeout=300)
        state = await host.state()
        if not state["ready"]:
            raise SystemExit(f"the view did not load: {state['error']}")
        marks = {m["name"]: m["t"] / 1000 for m in await host.marks()}
        t0 = marks["tool-result"]
        vocals = next(Path(t["file"]) for t in result.structured_content["tracks"] if t["id"] == "vocals")
        return {
            "playable": marks["playable"] - t0,
            "transfer": max(marks["bytes-vocals"], marks["bytes-instrumental"]) - t0,
            "decoded_last": max(marks["decoded-vocals"], marks["decoded-instrumental"]) - t0,
            "chunks": len(host.calls_to("stem_audio")),
            "stem_bytes": vocals.stat().st_size,
            "decode_one_alone": await host.view.evaluate(DECODE_ALONE,
                                                         base64.b64encode(vocals.read_bytes()).decode()),
        }


async def main() -> None:
    parser = common.parser(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--formats", default="mp3,wav", help="comma-separated: mp3, wav")
    args = parser.parse_args()
    runs, seconds = (1, 10.0) if args.quick else (args.runs, args.seconds)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    common.banner("mixer: tool result to playable", args.quick)
    try:
        from playwright.async_api import async_playwright

        from tests.mixer.harness import find_chromium, launch_chromium

        find_chromium()
    except (ImportError, RuntimeError) as missing:
        print(f"   skipped: {missing}")
        common.emit("mixer_playable", args.quick, {"skipped": str(missing), "met": None})
        return
    from suno_stems_mcp.mixer import view_html
    from suno_stems_mcp.sandbox import Sandbox, SandboxConfig, ThreadedSandbox
    from suno_stems_mcp.sandbox.audio import mp3_available

    if "mp3" in formats and not mp3_available():
        print("   mp3 skipped: the encoder is not installed (pip install -e '.[mp3]')")
        formats.remove("mp3")
    rows, figures = [], {}
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        common.quiet()
        try:
            for audio_format in formats:
                results = []
                config = SandboxConfig.fast(track_seconds=seconds, audio_format=audio_format)
                with ThreadedSandbox(Sandbox(config)) as running, \
                        tempfile.TemporaryDirectory(prefix="mixer-bench-") as output:
                    for n in range(runs):
                        r = await one_run(browser, running, Path(output))
                        results.append(r)
                        print(f"   {audio_format} run {n + 1}: playable {r['playable']:.3f} s (both stems' bytes "
                              f"in {r['transfer']:.3f} s, decoded {r['decoded_last']:.3f} s, {r['chunks']} chunks); "
                              f"baseline decode-one-alone {r['decode_one_alone']:.3f} s")
                playable = common.median([r["playable"] for r in results])
                baseline = common.median([r["decode_one_alone"] for r in results])
                transfer = common.median([r["transfer"] for r in results])
                rows += [(f"{audio_format}: playable", f"{playable:.3f} s"),
                         (f"{audio_format}: transfer of both stems", f"{transfer:.3f} s"),
                         (f"{audio_format}: baseline, decode one stem alone", f"{baseline:.3f} s"),
                         (f"{audio_format}: playable / baseline", f"{common.ratio(playable, baseline):.2f}"),
                         (f"{audio_format}: one stem", f"{results[0]['stem_bytes']:,} B")]
                figures[audio_format] = {
                    "stem_bytes": results[0]["stem_bytes"], "chunks": results[0]["chunks"], "playable_s": playable,
                    "transfer_s": transfer, "baseline_decode_one_s": baseline,
                    "ratio": common.ratio(playable, baseline)}
        finally:
            await browser.close()
    common.table(rows, ("median", "value"))
    common.emit("mixer_playable", args.quick, {
        "seconds_of_audio": seconds, "view_bytes": len(view_html().encode()), "formats": figures, "met": None})


if __name__ == "__main__":
    anyio.run(main)
