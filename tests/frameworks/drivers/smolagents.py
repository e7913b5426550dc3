"""smolagents: MCPClient (its defaults) -> tools, each call made through a ToolCallingAgent's own
execute_tool_call (argument validation against the converted inputs, then the tool), as its agent loop does.
The agent loop hands the model str(result), or the AgentError's message."""

from __future__ import annotations

import asyncio
import warnings

from _common import drive, error_text, run_main, server_params, short


def _run(cfg):
    from mcp import StdioServerParameters
    from smolagents import MCPClient, ToolCallingAgent
    from smolagents.models import ChatMessage, Model

    class NoModel(Model):  # the script plays the model; the agent only executes its calls
        def generate(self, *a, **k) -> ChatMessage:
            raise RuntimeError("not used")

    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        params = StdioServerParameters(command=command, args=args, env=env)
    else:
        params = {"url": cfg["url"], "transport": "streamable-http"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client = MCPClient(params)
    try:
        tools = client.get_tools()
        agent = ToolCallingAgent(tools=tools, model=NoModel(model_id="scripted"))

        async def call(name, args):
            try:
                result = agent.execute_tool_call(name, args)
            except Exception as exc:
                return None, error_text(exc), None
            return (result if isinstance(result, (str, dict, list)) else str(result)), None, None

        script = asyncio.run(drive(call))
        inputs = {t.name: t.inputs for t in tools}
        return script.report(converted_schema=short(inputs.get("split_stems"), 1500),
                             warnings=[short(str(w.message), 300) for w in caught])
    finally:
        client.disconnect()


async def main(cfg):
    return await asyncio.to_thread(_run, cfg)


run_main(main)
