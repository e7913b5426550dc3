"""openai-agents: an Agent with MCPServerStdio / MCPServerStreamableHttp on their defaults, run by Runner.run on
its defaults (max_turns=10) with a scripted Model (no LLM), one run per user request, each continuing the
conversation (result.to_input_list()). The tool outputs the Runner feeds back to the model are what the script
reads. Each model turn is one tool call or the answer: the split request takes list_tracks, one call per 4 s
of split and the answer, so its turns are reported (turns_per_request) against the 10 it may use."""

from __future__ import annotations

import json

from _common import REQUESTS, Script, run_main, server_params, short
from agents import Agent, Runner
from agents.items import ModelResponse
from agents.mcp import MCPServerStdio, MCPServerStreamableHttp
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText


class ScriptedModel(Model):
    def __init__(self, script: Script) -> None:
        self.script = script
        self.turn = 0
        """Model turns in the current run (Runner.run)."""
        self.tools_seen: dict = {}
        self.calls = 0

    async def get_response(self, system_instructions, input, model_settings, tools, output_schema, handoffs,
                           tracing, *, previous_response_id=None, conversation_id=None, prompt=None, **_):
        self.turn += 1
        for t in tools:
            self.tools_seen[t.name] = getattr(t, "params_json_schema", None)
        if self.turn == 1:
            step = self.script.first()
        else:
            outputs = [i for i in input if isinstance(i, dict) and i.get("type") == "function_call_output"]
            out = outputs[-1]["output"] if outputs else None
            text = out if isinstance(out, str) else json.dumps(out)
            lowered = text.lower()
            error = text if ("error" in lowered[:120] or "timed out" in lowered[:200]) and '"job_id"' not in text[:20] \
                and '"tracks"' not in text[:20] else None
            step = self.script.next_call(text, error)
        if step is None:
            return ModelResponse(output=[ResponseOutputMessage(
                id="msg", type="message", role="assistant", status="completed",
                content=[ResponseOutputText(type="output_text", text="done", annotations=[])])],
                usage=Usage(), response_id=None)
        name, args = step
        self.calls += 1  # ids unique in the conversation, across runs
        return ModelResponse(output=[ResponseFunctionToolCall(
            type="function_call", id=f"fc_{self.calls}", call_id=f"call_{self.calls}", name=name,
            arguments=json.dumps(args), status="completed")], usage=Usage(), response_id=None)

    async def stream_response(self, *a, **k):  # not used: Runner.run does not stream
        raise NotImplementedError


async def main(cfg):
    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        server = MCPServerStdio(params={"command": command, "args": args, "env": env}, name="stems")
    else:
        server = MCPServerStreamableHttp(params={"url": cfg["url"]}, name="stems")
    script = Script()
    model = ScriptedModel(script)
    run_error = None
    turns: list[int] = []
    async with server:
        agent = Agent(name="stems", instructions="Split songs into stems.", model=model, mcp_servers=[server])
        conversation: list = []
        for _request in REQUESTS:
            if script.over or run_error is not None:
                break
            model.turn = 0
            conversation.append({"role": "user", "content": script.prompt()})
            try:
                result = await Runner.run(agent, conversation)
                conversation = result.to_input_list()
            except Exception as exc:
                run_error = f"{type(exc).__name__}: {exc}"
            turns.append(model.turn)
    report = script.report(converted_schema=short(model.tools_seen.get("split_stems"), 1500), run_error=run_error,
                           turns_per_request=turns)
    if run_error:
        report["ok"] = False
        report["problems"].append(f"Runner.run raised {short(run_error, 400)}")
    return report


run_main(main)
