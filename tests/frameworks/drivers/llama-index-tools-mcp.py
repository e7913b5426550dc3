"""llama-index-tools-mcp: BasicMCPClient on its defaults + McpToolSpec(...).to_tool_list_async(); each call is
FunctionTool.acall(**args) as llama-index agents do; the model reads ToolOutput.content (or the error text)."""

from __future__ import annotations

from _common import drive, error_text, run_main, server_params, short
from llama_index.tools.mcp import BasicMCPClient, McpToolSpec


async def main(cfg):
    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        client = BasicMCPClient(command, args=args, env=env)
    else:
        client = BasicMCPClient(cfg["url"])
    tools = {t.metadata.name: t for t in await McpToolSpec(client=client).to_tool_list_async()}

    async def call(name, args):
        try:
            output = await tools[name].acall(**args)
        except Exception as exc:
            return None, error_text(exc), None
        raw = getattr(output, "raw_output", None)
        structured = getattr(raw, "structuredContent", None)
        is_error = bool(getattr(raw, "isError", False)) or bool(getattr(output, "is_error", False))
        return output.content, (output.content if is_error else None), structured

    script = await drive(call)
    return script.report(converted_schema=short(tools["split_stems"].metadata.fn_schema_str, 1500))


run_main(main)
