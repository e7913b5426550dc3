"""langchain-mcp-adapters: MultiServerMCPClient(...).get_tools(), then each tool invoked with a ToolCall, as
LangGraph's ToolNode / create_agent do: the ToolMessage's content is what the model reads."""

from __future__ import annotations

import itertools

from _common import drive, run_main, server_params, short
from langchain_mcp_adapters.client import MultiServerMCPClient


async def main(cfg):
    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        connection = {"transport": "stdio", "command": command, "args": args, "env": env}
    else:
        connection = {"transport": "streamable_http", "url": cfg["url"]}
    client = MultiServerMCPClient({"stems": connection})
    tools = {t.name: t for t in await client.get_tools()}
    ids = itertools.count(1)

    async def call(name, args):
        message = await tools[name].ainvoke({"type": "tool_call", "id": f"call_{next(ids)}", "name": name,
                                             "args": args})
        content = message.content
        text = content if isinstance(content, str) else "".join(
            b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
        error = text if getattr(message, "status", "success") == "error" else None
        artifact = getattr(message, "artifact", None)
        structured = artifact.get("structured_content") if isinstance(artifact, dict) else None
        return text, error, structured

    script = await drive(call)
    schema = {n: t.tool_call_schema.model_json_schema() if hasattr(t.tool_call_schema, "model_json_schema")
              else t.tool_call_schema for n, t in tools.items()}
    return script.report(converted_schema=short(schema.get("split_stems"), 1500))


run_main(main)
