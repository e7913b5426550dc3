"""An emulator of apiframe's v2 API (Suno songs and stems): the demo's backend and every test's.

Nothing here talks to apiframe. `Sandbox` is the ASGI app and its state (in memory, or in a shared file);
`ThreadedSandbox` serves one on a loopback port from a background thread; `SharedSandbox` is one process's
part in the sandbox that all of a user's sandbox processes share (see `shared` for how a server uses it).
Every key `afk_sandbox_<name>` is an account of its own.
"""

from .config import DEMO_KEY, INACTIVE_KEY, SandboxConfig
from .emulator import Sandbox
from .faults import Fault
from .runner import ThreadedSandbox
from .shared import STATE_DIR_VARIABLE, SharedSandbox, default_state_dir, reset
from .store import JobPlan

__all__ = [
    "DEMO_KEY",
    "INACTIVE_KEY",
    "STATE_DIR_VARIABLE",
    "Fault",
    "JobPlan",
    "Sandbox",
    "SandboxConfig",
    "SharedSandbox",
    "ThreadedSandbox",
    "default_state_dir",
    "reset",
]
