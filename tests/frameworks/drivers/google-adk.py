"""google-adk: an LlmAgent with McpToolset (StdioConnectionParams / StreamableHTTPConnectionParams on their
defaults), run by InMemoryRunner with a scripted BaseLlm (no LLM). The script reads the function_response the
Runner puts in the next LlmRequest, which is what Gemini would be given. One run_async per user request, in the
same session, as a chat would have them."""

from __future__ import annotations

import contextlib
import json

from _common import REQUESTS, Script, error_text, run_main, server_params, short
from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import InMemoryRunner
from google.adk.tools.mcp_tool import McpToolset, StdioConnectionParams, StreamableHTTPConnectionParams
from google.genai import types
from mcp import StdioServerParameters

SCRIPT = Script()
STATE: dict = {"turn": 0, "calls": 0, "declarations": {}}


class ScriptedLlm(BaseLlm):
    model: str = "scripted"

    async def generate_content_async(self, llm_request, stream: bool = False):
        STATE["turn"] += 1
        for name, tool in (llm_request.tools_dict or {}).items():
            try:
                STATE["declarations"][name] = tool._get_declaration().model_dump(exclude_none=True)
            except Exception as exc:
                STATE["declarations"][name] = f"declaration failed: {error_text(exc)}"
        if STATE["turn"] == 1:
            step = SCRIPT.first()
        else:
            response = None
            for content in reversed(llm_request.contents or []):
                parts = [p for p in (content.parts or []) if p.function_response is not None]
                if parts:
                    response = parts[-1].function_response.response
                    break
            error = None
            if isinstance(response, dict) and (response.get("isError") or "error" in response):
                error = json.dumps(response.get("error") or response.get("content"), default=repr)
            step = SCRIPT.next_call(response, error)
        if step is None:
            yield LlmResponse(content=types.Content(role="model", parts=[types.Part(text="done")]))
            return
        name, args = step
        STATE["calls"] += 1  # ids unique in the session, across requests
        yield LlmResponse(content=types.Content(role="model", parts=[types.Part(
            function_call=types.FunctionCall(name=name, args=args, id=f"call_{STATE['calls']}"))]))


async def main(cfg):
    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        params = StdioConnectionParams(server_params=StdioServerParameters(command=command, args=args, env=env))
    else:
        params = StreamableHTTPConnectionParams(url=cfg["url"])
    toolset = McpToolset(connection_params=params)
    agent = LlmAgent(name="stems", model=ScriptedLlm(), instruction="Split songs into stems.", tools=[toolset])
    runner = InMemoryRunner(agent=agent, app_name="compat")
    session = await runner.session_service.create_session(app_name="compat", user_id="u")
    run_error = None
    try:
        for _request in REQUESTS:
            if SCRIPT.over:
                break
            STATE["turn"] = 0
            async for _event in runner.run_async(user_id="u", session_id=session.id, new_message=types.Content(
                    role="user", parts=[types.Part(text=SCRIPT.prompt())])):
                pass
    except Exception as exc:
        run_error = error_text(exc)
    finally:
        with contextlib.suppress(Exception):
            await toolset.close()
    report = SCRIPT.report(converted_schema=short(STATE["declarations"].get("split_stems"), 1500),
                           run_error=run_error)
    if run_error:
        report["ok"] = False
        report["problems"].append(f"Runner.run_async raised {short(run_error, 500)}")
    return report


run_main(main)
