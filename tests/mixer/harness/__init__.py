"""A real-browser MCP Apps test host for the mixer view."""

from .browser import CHROMIUM_FLAGS, find_chromium, launch_chromium
from .host import DEFAULT_CSP, HostEvent, MixerHost

__all__ = ["CHROMIUM_FLAGS", "DEFAULT_CSP", "HostEvent", "MixerHost", "find_chromium", "launch_chromium"]
