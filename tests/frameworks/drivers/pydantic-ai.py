"""pydantic-ai: an Agent with an MCPToolset on its defaults (stdio through fastmcp's StdioTransport, HTTP from the
URL), run by Agent.run with a FunctionModel that plays the scripted model (no LLM), one run per user request,
each continuing the conversation (message_history). What the model reads is the ToolReturnPart's
model_response_str() (a failed or retried call's part has an error outcome) or the RetryPromptPart's
model_response().

Its default retries=1 is a per-tool budget that only a success of the same tool gives back: a second failed
split_stems in one run, with no successful split_stems between (a list_tracks does not count), ends the run
with UnexpectedModelBehavior. The README says so and what to set; `limits` in the report checks both claims:
both mistakes in one run end it on the defaults, and do not with Agent(retries=2)."""

from __future__ import annotations

import itertools

from _common import REQUESTS, Script, error_text, run_main, server_params, short
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelRequest, ModelResponse, RetryPromptPart, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

try:
    from pydantic_ai.messages import ERROR_OUTCOMES
except ImportError:  # older versions report a failed call as a RetryPromptPart only
    ERROR_OUTCOMES = ("failed", "retried")


def scripted(script: Script, seen_tools: dict, turn: list[int]):  # type: ignore[no-untyped-def]
    """The FunctionModel's function for this script; turn[0] counts the model turns of the current run."""
    ids = itertools.count(1)  # tool call ids unique in the conversation, across runs

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
                        if getattr(part, "outcome", "success") in ERROR_OUTCOMES:
                            error = observed
                    elif isinstance(part, RetryPromptPart):
                        observed = error = part.model_response()
            step = script.next_call(observed, error)
        if step is None:
            return ModelResponse(parts=[TextPart("done")])
        name, args = step
        return ModelResponse(parts=[ToolCallPart(name, args, tool_call_id=f"call_{next(ids)}")])

    return model


async def both_mistakes_in_one_run(toolset, parent, **agent_kwargs):  # type: ignore[no-untyped-def]
    """Both deliberate mistakes (with list_tracks between) in ONE run: what ended it, and what the model read."""
    script = Script(one_request=True, phase="error_a", parent=parent)
    agent = Agent(FunctionModel(scripted(script, {}, [0])), toolsets=[toolset], **agent_kwargs)
    try:
        await agent.run(script.prompt())
        ended = None
    except Exception as exc:
        ended = error_text(exc)
    return {"agent_kwargs": agent_kwargs, "run_raised": short(ended, 400) if ended else None,
            "errors_read": {k: v["ok"] for k, v in script.errors.items()}}


async def main(cfg):
    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        toolset = MCPToolset(StdioTransport(command=command, args=args, env=env))
    else:
        toolset = MCPToolset(cfg["url"])
    script = Script()
    seen_tools: dict = {}
    turn = [0]
    agent = Agent(FunctionModel(scripted(script, seen_tools, turn)), toolsets=[toolset])
    run_error = None
    limits: dict = {}
    try:
        async with agent:
            history = None
            for _request in REQUESTS:
                if script.over:
                    break
                turn[0] = 0
                result = await agent.run(script.prompt(), message_history=history)
                history = result.all_messages()
            limits["defaults"] = await both_mistakes_in_one_run(toolset, script.parent)
            limits["retries=2"] = await both_mistakes_in_one_run(toolset, script.parent, retries=2)
    except Exception as exc:
        run_error = error_text(exc)
    report = script.report(converted_schema=short(seen_tools.get("split_stems"), 1500), run_error=run_error,
                           limits=limits)
    if run_error:
        report["ok"] = False
        report["problems"].append(f"Agent.run raised {short(run_error, 500)}")
    defaults, raised = limits.get("defaults"), limits.get("retries=2")
    if defaults is not None and "exceeded max retries" not in (defaults["run_raised"] or ""):
        report["problems"].append(f"the README says two split_stems errors in one run end it on its defaults: "
                                  f"{defaults}")
    if raised is not None and (raised["run_raised"] or not all(raised["errors_read"].values())
                               or len(raised["errors_read"]) != 2):
        report["problems"].append(f"the README's retries=2 does not carry both mistakes through one run: {raised}")
    report["ok"] = not report["problems"]
    return report


run_main(main)
