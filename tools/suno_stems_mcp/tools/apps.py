"""The mixer as an MCP App: its `ui://` resource (the SDK's Apps extension), and app-only tools kept out of
`tools/list` for clients that did not negotiate Apps.

The filter is SDK middleware on `tools/list`: the server's `list_tools()` takes no context, and the
middleware is the SDK's public seam that sees the request's client (`client_supports_apps(ctx)`), so
nothing of the SDK is overridden or patched. Such a client cannot call an app-only tool either: the tool
itself refuses (tools.stem_audio).
"""

from __future__ import annotations

from typing import Any

from mcp.server.apps import Apps, ResourceCsp, client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp_types import ListToolsResult

from suno_stems_mcp.mixer import CDN, URI, view_html

from . import APP_ONLY


def build_apps() -> Apps:
    apps = Apps()
    apps.add_html_resource(
        URI, view_html(), name="mixer", title="Stem mixer",
        description="Plays a split's vocals and instrumental together, with a level, mute and solo for each.",
        # The view gets its audio through stem_audio and needs no domain; hosts that honour these may let it
        # reach the CDN as well.
        csp=ResourceCsp(resource_domains=[CDN], connect_domains=[CDN]), prefers_border=True)
    return apps


async def hide_app_only_tools(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """`tools/list` without the app-only tools, for a client that did not negotiate MCP Apps."""
    result = await call_next(ctx)
    if ctx.method != "tools/list" or client_supports_apps(ctx):
        return result
    if isinstance(result, ListToolsResult):
        return result.model_copy(update={"tools": [t for t in result.tools if t.name not in APP_ONLY]})
    if isinstance(result, dict) and isinstance(result.get("tools"), list):
        shown = [t for t in result["tools"] if not (isinstance(t, dict) and t.get("name") in APP_ONLY)]
        return {**result, "tools": shown}
    return result
