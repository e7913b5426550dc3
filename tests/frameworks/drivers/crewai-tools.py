"""crewai-tools: MCPServerAdapter (its defaults) -> CrewAI tools; each call is tool.run(**args) as a crew's agent
executes a tool call. CrewAI sends tool schemas to the LLM in OpenAI strict mode, where every property is
required and optional ones become nullable: a model then has to send null for what it leaves out, so the
script does exactly that for every property the converted schema requires."""

from __future__ import annotations

import asyncio

from _common import drive, error_text, run_main, server_params, short


def _run(cfg):
    from crewai_tools import MCPServerAdapter
    from mcp import StdioServerParameters

    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        params = StdioServerParameters(command=command, args=args, env=env)
    else:
        params = {"url": cfg["url"], "transport": "streamable-http"}
    notes = []
    with MCPServerAdapter(params) as tools:
        by_name = {t.name: t for t in tools}
        schemas = {}
        for name, tool in by_name.items():
            schema = tool.args_schema.model_json_schema()
            strict = _strict(schema, notes)
            schemas[name] = strict

        async def call(name, args):
            sent = dict(args)
            for prop in schemas[name].get("required", []):
                sent.setdefault(prop, None)
            try:
                result = by_name[name].run(**sent)
            except Exception as exc:
                return None, error_text(exc), None
            text = result if isinstance(result, str) else str(result)
            return text, (text if text.lower().startswith("error") else None), None

        script = asyncio.run(drive(call))
    return script.report(converted_schema=short(schemas.get("split_stems"), 1500), notes=notes)


def _strict(schema, notes):
    """Every property required, as OpenAI strict mode (which CrewAI uses for tool calls) demands; what the model
    then sends for a property it does not want is null. This is the script's emulation of such a model."""
    strict = dict(schema)
    strict["required"] = list(schema.get("properties", {}))
    notes.append("emulated strict-mode model: null sent for every property it leaves out")
    return strict


async def main(cfg):
    return await asyncio.to_thread(_run, cfg)


run_main(main)
