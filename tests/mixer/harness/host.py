"""MixerHost: renders a view in real Chromium as an MCP Apps host would, and records what the view does."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Browser, ConsoleMessage, Frame, Page, Playwright, async_playwright

from .browser import launch_chromium
from .server import HostPageServer

DEFAULT_CSP = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' data:; object-src 'none'; connect-src 'none'"
)

DEFAULT_CAPABILITIES: dict[str, Any] = {
    "serverTools": {},
    "serverResources": {},
    "updateModelContext": {"text": {}, "structuredContent": {}},
    "downloadFile": {},
    "openLinks": {},
    "logging": {},
}

THEMES: dict[str, dict[str, str]] = {
    "dark": {
        "--color-background-primary": "#1f1e1d",
        "--color-background-secondary": "#2a2927",
        "--color-text-primary": "#f5f4ef",
        "--color-text-secondary": "#b8b5a9",
        "--color-border-primary": "#45433f",
        "--color-ring-primary": "#d97757",
    },
    "light": {
        "--color-background-primary": "#ffffff",
        "--color-background-secondary": "#f5f4ef",
        "--color-text-primary": "#141413",
        "--color-text-secondary": "#5e5d59",
        "--color-border-primary": "#dedcd1",
        "--color-ring-primary": "#c6613f",
    },
}

CallTool = Callable[[str, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class HostEvent:
    kind: str
    payload: Any
    at: float


def _as_dict(result: Any) -> dict[str, Any]:
    """A CallToolResult (pydantic, mcp 2.x) or a dict, as the JSON the host puts on the wire."""
    if isinstance(result, dict):
        return result
    return result.model_dump(by_alias=True, exclude_none=True, mode="json")


class MixerHost:
    """`async with MixerHost(html, call_tool=..., theme="dark") as host:` then send results and inspect."""

    def __init__(
        self,
        html: str,
        call_tool: CallTool | None = None,
        *,
        theme: str = "dark",
        capabilities: dict[str, Any] | None = None,
        host_context: dict[str, Any] | None = None,
        csp: str = DEFAULT_CSP,
        browser: Browser | None = None,
        viewport: tuple[int, int] = (780, 580),
        expect_app: bool = True,
    ) -> None:
        self.html = html
        self._call_tool = call_tool
        self.theme = theme
        caps = dict(DEFAULT_CAPABILITIES if capabilities is None else capabilities)
        if call_tool is None:
            caps.pop("serverTools", None)
        self.capabilities = caps
        self.host_context = {
            "theme": theme,
            "styles": {"variables": THEMES.get(theme, {})},
            "displayMode": "inline",
            "availableDisplayModes": ["inline"],
            "platform": "web",
            "locale": "en-US",
            "containerDimensions": {"maxHeight": 800, "width": viewport[0] - 20},
            **(host_context or {}),
        }
        self.csp = csp
        self._browser = browser
        self._viewport = viewport
        self._expect_app = expect_app
        self._playwright: Playwright | None = None
        self._owns_browser = browser is None
        self._server = HostPageServer(csp)
        self.page: Page = None  # type: ignore[assignment]
        self.events: list[HostEvent] = []
        self.console: list[tuple[str, str]] = []
        self.page_errors: list[str] = []
        self._changed = asyncio.Event()
        self.calls: list[dict[str, Any]] = []  # every proxied tools/call: name, arguments, start, end
        self._in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}

    async def __aenter__(self) -> MixerHost:
        if self._browser is None:
            self._playwright = await async_playwright().start()
            self._browser = await launch_chromium(self._playwright)
        await self._server.__aenter__()
        self.page = await self._browser.new_page(viewport={"width": self._viewport[0], "height": self._viewport[1]})
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda err: self._record("pageerror", str(err)))
        await self.page.expose_function("__pyCallTool", self._proxy_call_tool)
        await self.page.expose_function("__pyEvent", lambda kind, payload: self._record(kind, payload))
        await self.page.goto(self._server.url)
        await self.page.evaluate(
            "([html, options]) => window.__host.load(html, options)",
            [self.html, {"csp": self.csp, "hostContext": self.host_context, "capabilities": self.capabilities}],
        )
        if self._expect_app:
            await self.wait_for("initialized")
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.page.close()
        finally:
            await self._server.__aexit__(*exc)
            if self._owns_browser and self._browser is not None:
                await self._browser.close()
            if self._playwright is not None:
                await self._playwright.stop()

    # --- talking to the view -------------------------------------------------------------------------------------

    async def send_input(self, arguments: dict[str, Any]) -> None:
        await self.page.evaluate("(args) => window.__host.sendToolInput(args)", arguments)

    async def send_result(self, result: Any) -> None:
        await self.page.evaluate("(r) => window.__host.sendToolResult(r)", _as_dict(result))

    async def set_host_context(self, context: dict[str, Any]) -> None:
        await self.page.evaluate("(c) => window.__host.setHostContext(c)", context)

    async def set_theme(self, theme: str) -> None:
        await self.set_host_context({"theme": theme, "styles": {"variables": THEMES.get(theme, {})}})

    async def teardown(self) -> None:
        await self.page.evaluate("() => window.__host.teardown()")
        await self.wait_for("teardown-complete")

    # --- looking at the view -------------------------------------------------------------------------------------

    @property
    def view(self) -> Frame:
        for frame in self.page.frames:
            if frame.parent_frame is self.page.main_frame:
                return frame
        raise RuntimeError("the view's frame is not there")

    @property
    def controls(self):
        """A FrameLocator for clicking the view's controls like a person."""
        return self.page.frame_locator("#view")

    async def state(self) -> dict[str, Any]:
        return await self.view.evaluate("() => window.__mixer.state()")

    async def render_mix(self, wav: bool = False) -> dict[str, Any] | None:
        return await self.view.evaluate("(wav) => window.__mixer.renderMix({wav})", wav)

    async def marks(self) -> list[dict[str, Any]]:
        return await self.view.evaluate("() => window.__mixer.marks()")

    async def wait_until(self, js_predicate: str, timeout: float = 15.0) -> Any:
        """The view's `window.__mixer.state()` once the JS predicate (`s => ...`) holds for it."""
        handle = await self.view.wait_for_function(
            "() => { const s = window.__mixer && window.__mixer.state(); "
            f"return s && ({js_predicate})(s) ? s : null; }}",
            timeout=timeout * 1000,
        )
        return await handle.json_value()

    # --- what the view did ---------------------------------------------------------------------------------------

    def of(self, kind: str) -> list[Any]:
        return [e.payload for e in self.events if e.kind == kind]

    async def wait_for(
        self, kind: str, predicate: Callable[[Any], bool] | None = None, timeout: float = 15.0, after: int = 0
    ) -> Any:
        """The payload of the first event of `kind` (from index `after`) that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[after:]:
                if event.kind == kind and (predicate is None or predicate(event.payload)):
                    return event.payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = sorted({e.kind for e in self.events})
                raise TimeoutError(f"no {kind!r} event within {timeout} s; seen: {seen}; errors: {self.errors}")
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    @property
    def csp_violations(self) -> list[Any]:
        return self.of("csp")

    @property
    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and rejections, in the host page and the view."""
        view_errors = [str(p.get("message")) for p in self.of("error")]
        return [text for kind, text in self.console if kind == "error"] + self.of("pageerror") + view_errors

    @property
    def model_contexts(self) -> list[dict[str, Any]]:
        return self.of("update-model-context")

    def downloads(self) -> list[tuple[str, str, bytes]]:
        """(uri, mime, bytes) of every embedded resource the view handed to ui/download-file."""
        out = []
        for params in self.of("download-file"):
            for item in params.get("contents", []):
                resource = item.get("resource", {})
                if "blob" in resource:
                    out.append((resource["uri"], resource.get("mimeType", ""), base64.b64decode(resource["blob"])))
                elif "text" in resource:
                    out.append((resource["uri"], resource.get("mimeType", ""), resource["text"].encode()))
        return out

    # --- internals -----------------------------------------------------------------------------------------------

    def _record(self, kind: str, payload: Any) -> None:
        self.events.append(HostEvent(kind, payload, time.monotonic()))
        self._changed.set()

    def _on_console(self, message: ConsoleMessage) -> None:
        self.console.append((message.type, message.text))
        if message.type == "error":
            self._changed.set()

    async def _proxy_call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        if self._call_tool is None:
            raise RuntimeError("this host offers no server tools")
        call = {"name": name, "arguments": arguments or {}, "start": time.monotonic(), "end": None}
        self.calls.append(call)
        self._in_flight[name] = self._in_flight.get(name, 0) + 1
        self.max_in_flight[name] = max(self.max_in_flight.get(name, 0), self._in_flight[name])
        try:
            return _as_dict(await self._call_tool(name, call["arguments"]))
        finally:
            self._in_flight[name] -= 1
            call["end"] = time.monotonic()

    def calls_to(self, name: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["name"] == name]
