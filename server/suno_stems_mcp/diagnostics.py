"""`kill -USR1 <pid>`: the server logs one status line (asyncio tasks, open files, memory) to stderr.

For operators of a long-running HTTP server, and for the soak test, which checks nothing leaks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from types import FrameType

log = logging.getLogger(__name__)


def status_line() -> str:
    try:
        tasks: int | str = len(asyncio.all_tasks(asyncio.get_running_loop()))
    except RuntimeError:
        tasks = "n/a"
    files: int | str = "n/a"
    sockets: int | str = "n/a"
    try:
        targets = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        sockets = sum(target.startswith("socket:") for target in targets)
        files = len(targets) - sockets
    except OSError:
        pass
    rss = "n/a"
    try:
        with open("/proc/self/status") as status:
            rss = next(line.split(":", 1)[1].strip() for line in status if line.startswith("VmRSS"))
    except (OSError, StopIteration):
        pass
    return f"status: tasks={tasks} open_files={files} sockets={sockets} rss={rss.replace(' ', '')}"


def install_status_signal() -> None:
    if not hasattr(signal, "SIGUSR1"):  # Windows
        return

    def report(signum: int, frame: FrameType | None) -> None:
        log.warning(status_line())

    signal.signal(signal.SIGUSR1, report)
