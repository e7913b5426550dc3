"""What every tool does around its use case: find the runtime, choose the call's budget, report progress, and
return the result as text and structured content."""

from __future__ import annotations

import json
import logging
from typing import Any

from mcp.server.mcpserver import Context
from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from suno_stems_mcp.apiframe import ApiJob
from suno_stems_mcp.core.budget import Budget, budget, call_limit
from suno_stems_mcp.core.runtime import Runtime
from suno_stems_mcp.core.waiting import OnUpdate
from suno_stems_mcp.errors import KEY_HEADER
from suno_stems_mcp.vocabulary import JobStatus

log = logging.getLogger(__name__)

ToolContext = Context[Runtime, Any]


def runtime_of(ctx: ToolContext) -> Runtime:
    """The runtime as this call sees it: on a hosted server, with the apiframe key this request carried in
    X-Apiframe-Key and that key's own memory (nothing global changes)."""
    runtime = ctx.request_context.lifespan_context
    if not runtime.settings.hosted:
        return runtime
    headers = ctx.headers
    return runtime.for_call(headers.get(KEY_HEADER.lower()) if headers is not None else None)


def client_of(ctx: ToolContext) -> tuple[str, str]:
    """(the name the client gave at initialize, a key for what this process learns about it)."""
    params = ctx.request_context.session.client_params
    info = params.client_info if params is not None else None
    name = info.name if info is not None else ""
    return name, f"{name}/{info.version if info is not None else ''}"


def budget_for(ctx: ToolContext, wait_seconds: int | None) -> Budget:
    """The call's budget: as long as asked (by default as long as it may), within what this client allows
    (core.budget) and never past SUNO_STEMS_MAX_WAIT."""
    runtime = runtime_of(ctx)
    name, key = client_of(ctx)
    limit = call_limit(name, runtime.memory.call_limits.get(key))
    return budget(wait_seconds, max_wait=runtime.settings.max_wait, limit=limit)


def as_result(model: BaseModel) -> CallToolResult:
    """The same data twice: compact JSON for clients that show text, structured content for the rest. Empty
    fields are left out of both."""
    data = model.model_dump(mode="json", exclude_none=True)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def progress_reporter(ctx: ToolContext) -> OnUpdate:
    """Sends `notifications/progress` while a call waits; a client that cannot take them costs nothing."""

    async def report(job: ApiJob) -> None:
        noun = "splitting" if job.is_stems else "generating"
        state = job.state
        if state is JobStatus.QUEUED:
            message = f"{noun.capitalize()}: queued at apiframe"
        elif job.done:
            message = f"{noun.capitalize()}: {job.status.lower()}"
        else:
            message = f"{noun.capitalize()}: {job.progress or 0}%"
        try:
            await ctx.report_progress(100 if state is JobStatus.COMPLETED else (job.progress or 0), 100, message)
        except Exception:
            log.debug("progress notification not delivered", exc_info=True)

    return report
