"""pydantic-ai: an Agent with an MCPToolset on its defaults (stdio through fastmcp's StdioTransport, HTTP from the
URL), run by Agent.run with a FunctionModel that plays the scripted model (no LLM). What the model reads is the
ToolReturnPart's model_response_str() or the RetryPromptPart's model_response()."""

from __future__ import annotations

from _common import Script, error_text, run_main, server_params, short
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelRequest, ModelResponse, RetryPromptPart, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel


async def main(cfg):
    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        toolset = MCPToolset(StdioTransport(command=command, args=args, env=env))
    else:
        toolset = MCPToolset(cfg["url"])
    script = Script()
    seen_tools: dict = {}
    turn = [0]

    def model(messages, info: AgentInfo) -> ModelResponse:
        for t in info.function_tools:
            seen_tools[t.name] = t.parameters_json_schema
        turn[0] += 1
        if turn[0] == 1:
            step = script.first()
        else:
            last = messages[-1]
            observed, error = None, None
            if isinstance(last, ModelRequest):
                for part in last.parts:
                    if isinstance(part, ToolReturnPart):
                        observed = part.model_response_str()
                    elif isinstance(part, RetryPromptPart):
                        observed = error = part.model_response()
            step = script.next_call(observed, error)
        if step is None:
            return ModelResponse(parts=[TextPart("done")])
        name, args = step
        return ModelResponse(parts=[ToolCallPart(name, args, tool_call_id=f"call_{turn[0]}")])

    agent = Agent(FunctionModel(model), toolsets=[toolset])
    run_error = None
    try:
        async with agent:
            await agent.run("Split my newest Suno song into vocals and instrumental.")
    except Exception as exc:
        run_error = error_text(exc)
    report = script.report(converted_schema=short(seen_tools.get("split_stems"), 1500), run_error=run_error)
    if run_error:
        report["ok"] = False
        report["problems"].append(f"Agent.run raised {short(run_error, 500)}")
    return report


run_main(main)
