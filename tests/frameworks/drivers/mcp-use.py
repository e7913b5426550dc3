"""mcp-use: MCPClient.from_dict(...) + LangChainAdapter().create_tools(client), as MCPAgent builds its tools;
each call goes through the LangChain tool with a ToolCall (args validated against the converted schema)."""

from __future__ import annotations

import itertools

from _common import drive, error_text, run_main, server_params, short
from mcp_use import MCPClient
from mcp_use.adapters.langchain_adapter import LangChainAdapter


async def main(cfg):
    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        server = {"command": command, "args": args, "env": env}
    else:
        server = {"url": cfg["url"]}
    client = MCPClient.from_dict({"mcpServers": {"stems": server}})
    ids = itertools.count(1)
    try:
        tools = {t.name: t for t in await LangChainAdapter().create_tools(client)}

        async def call(name, args):
            try:
                message = await tools[name].ainvoke({"type": "tool_call", "id": f"call_{next(ids)}", "name": name,
                                                     "args": args})
            except Exception as exc:
                return None, error_text(exc), None
            content = getattr(message, "content", message)
            text = content if isinstance(content, str) else str(content)
            error = text if getattr(message, "status", "success") == "error" else None
            return text, error, None

        script = await drive(call)
        schema = tools["split_stems"].args_schema
        schema = schema.model_json_schema() if hasattr(schema, "model_json_schema") else schema
    finally:
        await client.close_all_sessions()
    return script.report(converted_schema=short(schema, 1500))


run_main(main)
