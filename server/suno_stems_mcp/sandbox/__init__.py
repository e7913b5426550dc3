"""An emulator of apiframe's v2 API (Suno songs and stems): the demo's backend and every test's.

Nothing here talks to apiframe. `Sandbox` is the ASGI app and its state; `ThreadedSandbox` serves one on
a loopback port from a background thread.
"""

from .emulator import Sandbox
from .config import DEMO_KEY, INACTIVE_KEY, SandboxConfig
from .faults import Fault
from .runner import ThreadedSandbox
from .store import JobPlan

__all__ = ["DEMO_KEY", "INACTIVE_KEY", "Fault", "JobPlan", "Sandbox", "SandboxConfig", "ThreadedSandbox"]
