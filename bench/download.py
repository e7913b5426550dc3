"""Download: a ~100 MB stem from the sandbox on loopback, the server's Downloader vs curl.

A ThreadedSandbox in this process serves a finished stems job made directly in its store, with a track
duration of 2378 s (22050 Hz mono 16-bit WAV: 104,869,844 bytes, 100.0 MiB; the sandbox streams any length in
constant memory). Alternating, at least 5 runs each:
  curl        `curl -s -o FILE URL` (its own time_total; process start not counted)
  ours        server/downloads.py `Downloader.save` (from `Runtime.downloader()`, as get_job uses it) in a fresh
              child process (bench/_download_child.py), so its memory is clean: RSS growth = peak RSS during the
              download (VmHWM after resetting it) - RSS before
  diagnostics, same kind of child, without the Downloader's temporary file, rename and checks:
  plain               the Runtime's async pool, a bare `aiter_raw(64 KiB) -> write` loop (async streaming)
  thread-httpx        blocking httpx.Client `iter_raw()` in a worker thread, no fsync
  thread-httpx-fsync  the same plus `os.fsync` (the difference is what durability costs)
Target: throughput ours/curl >= 0.9; RSS growth of the downloading process <= 10 MB. The sandbox serves every
variant, so its speed caps all of them alike: the ratio compares clients; CPU seconds per run show each
client's own cost.

    .venv/bin/python bench/download.py [--quick] [--runs 5] [--seconds 2378]
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

from suno_stems_mcp.sandbox import DEMO_KEY, JobPlan, Sandbox, SandboxConfig, ThreadedSandbox
from suno_stems_mcp.sandbox.audio import Song, wav_size
from suno_stems_mcp.sandbox.music import song_tracks, stems_tracks

TARGET_RATIO = 0.9
TARGET_RSS_MB = 10.0
CURL = shutil.which("curl") or "/usr/bin/curl"


def stems_job(sandbox: Sandbox, seconds: float) -> str:
    """A COMPLETED stems job whose tracks last `seconds`, made directly in the store (nothing charged)."""
    store = sandbox.store
    account = store.accounts[DEMO_KEY]
    parent_id = str(uuid.uuid4())
    parent = store.create_job(account, kind="song", input={"model": "suno", "prompt": "bench"},
                              tracks=song_tracks(parent_id, "Long Bench Song", "bench", seconds), job_id=parent_id,
                              created_at=store.now() - 7200, plan=JobPlan(queued_for=1, runs_for=10), charge=False)
    job = store.create_job(account, kind="stems", input={"parentJobId": parent_id, "action": "stems", "index": 1},
                           tracks=stems_tracks(parent.tracks[0]), created_at=store.now() - 3600,
                           plan=JobPlan(queued_for=1, runs_for=10), charge=False)
    return job.id


def curl_once(url: str, path: Path) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([CURL, "-s", "-o", str(path), "-w", "%{time_total} %{size_download}", url],
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total, size = out.stdout.split()
    result = {"seconds": float(total), "wall_seconds": wall, "bytes": int(float(size)),
              "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}
    path.unlink()
    return result


def child_once(mode: str, url: str, warm_url: str, output: Path, job_id: str) -> dict[str, Any]:
    out = subprocess.run([c.PYTHON, str(c.BENCH / "_download_child.py"), mode, url, warm_url, str(output), job_id],
                         capture_output=True, text=True, env=c.child_env(), timeout=900, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    result = json.loads(out.stdout.strip().splitlines()[-1])
    Path(result["path"]).unlink()
    shutil.rmtree(output, ignore_errors=True)
    output.mkdir(parents=True)
    base = result["rss_before"] if result["hwm_reset"] else result["hwm_before"]
    result["rss_growth_mb"] = c.mib(result["hwm_after"] - base)
    result["rss_before_mb"] = c.mib(result["rss_before"])
    return result


def main() -> None:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=None, help="runs of each, alternating (default 5; --quick 2)")
    p.add_argument("--seconds", type=float, default=None, help="track duration (default 2378 = 100 MiB; --quick 119)")
    args = p.parse_args()
    runs = args.runs or (2 if args.quick else 5)
    seconds = args.seconds or (119.0 if args.quick else 2378.0)
    size = wav_size(Song(seed=1, duration=seconds))
    c.banner(f"download: a {c.mib(size):.1f} MiB stem, Downloader vs curl", args.quick)

    sandbox = Sandbox(SandboxConfig(seed_demo_data=False))
    running = ThreadedSandbox(sandbox).start()
    work = Path(tempfile.mkdtemp(prefix="bench-download-", dir=os.environ.get("BENCH_TMP")))
    try:
        job_id = stems_job(sandbox, seconds)
        warm_id = stems_job(sandbox, 2.0)
        url = f"{running.url}/cdn/audio/{job_id}-0.wav"
        warm_url = f"{running.url}/cdn/audio/{warm_id}-0.wav"
        output = work / "out"
        output.mkdir()
        print(f"   {url}\n   {size} bytes; files written under {work}")
        curl_once(url, work / "warm.wav")  # renders the sandbox's audio loop once and warms the page cache

        names = ["curl", "ours", "plain", "thread-httpx", "thread-httpx-fsync"]
        results: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for i in range(runs):
            k = i % len(names)
            for who in names[k:] + names[:k]:
                if who == "curl":
                    r = curl_once(url, work / "curl.wav")
                else:
                    r = child_once("downloader" if who == "ours" else who, url, warm_url, output, job_id)
                assert r["bytes"] == size, (who, r["bytes"], size)
                results[who].append(r)
                print(f"   run {i + 1}/{runs} {who:18}: {r['seconds']:.3f} s, {c.mib(size) / r['seconds']:7.1f} MiB/s,"
                      f" CPU {r['cpu_seconds']:.2f} s" + (f", RSS +{r['rss_growth_mb']:.2f} MB" if "rss_growth_mb" in r
                                                          else ""), flush=True)
    finally:
        running.stop()
        shutil.rmtree(work, ignore_errors=True)

    def med(who: str, key: str) -> float:
        return c.median([r[key] for r in results[who]])

    mibs = c.mib(size)
    ratio = med("curl", "seconds") / med("ours", "seconds")
    growth = max(r["rss_growth_mb"] for r in results["ours"])
    print(f"\n   medians of {runs} alternating runs:")
    c.table([[who, med(who, "seconds"), mibs / med(who, "seconds"), med(who, "cpu_seconds"),
              f"{med('curl', 'seconds') / med(who, 'seconds'):.3f}x",
              f"{med(who, 'rss_growth_mb'):.2f}" if who != "curl" else "-"]
             for who in names],
            ["client", "seconds", "MiB/s", "CPU s", "speed vs curl", "RSS growth MB"])
    ratio_met = ratio >= TARGET_RATIO
    rss_met = growth <= TARGET_RSS_MB
    print(f"   RSS of the downloading process before the download: {med('ours', 'rss_before_mb'):.1f} MB")
    print(f"   target: throughput ours/curl >= {TARGET_RATIO}: {ratio:.3f} -> {c.verdict(ratio_met)};"
          f" RSS growth <= {TARGET_RSS_MB:g} MB: max {growth:.2f} MB -> {c.verdict(rss_met)}")
    c.emit("download", args.quick, {
        "bytes": size, "runs": runs, "results": results,
        "curl_median_s": med("curl", "seconds"), "ours_median_s": med("ours", "seconds"),
        "plain_median_s": med("plain", "seconds"),
        "curl_mib_s": mibs / med("curl", "seconds"), "ours_mib_s": mibs / med("ours", "seconds"),
        "plain_mib_s": mibs / med("plain", "seconds"),
        "ours_cpu_s": med("ours", "cpu_seconds"), "curl_cpu_s": med("curl", "cpu_seconds"),
        "plain_cpu_s": med("plain", "cpu_seconds"),
        "diagnostics": {who: {"median_s": med(who, "seconds"), "mib_s": mibs / med(who, "seconds"),
                              "cpu_s": med(who, "cpu_seconds"), "vs_curl": med("curl", "seconds") / med(who, "seconds")}
                        for who in names},
        "throughput_ratio": ratio, "rss_growth_mb_max": growth, "rss_growth_mb_median": med("ours", "rss_growth_mb"),
        "target_ratio": TARGET_RATIO, "target_rss_mb": TARGET_RSS_MB, "ratio_met": ratio_met, "rss_met": rss_met,
        "met": ratio_met and rss_met,
    })


if __name__ == "__main__":
    main()
