"""agno: MCPTools on its defaults as an async context manager, each call executed as agno's agent loop does
(FunctionCall(function, arguments).aexecute()); the model reads the result (or the error) it returns."""

from __future__ import annotations

import shlex

from _common import drive, error_text, run_main, server_params, short
from agno.tools.function import FunctionCall
from agno.tools.mcp import MCPTools


def _text(value):
    if value is None or isinstance(value, (str, dict, list)):
        return value
    content = getattr(value, "content", None)
    return content if isinstance(content, str) else str(value)


async def main(cfg):
    notes: list[str] = []
    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        # MCPTools(command="suno-stems-mcp --sandbox") is refused: agno only runs commands whose executable is
        # on its allow-list (python, uvx, npx, ...). StdioServerParameters is its documented other way.
        from mcp import StdioServerParameters

        toolkit = MCPTools(server_params=StdioServerParameters(command=command, args=args, env=env))
        try:
            MCPTools(command=shlex.join([command, *args]), env=env)
            notes.append("MCPTools(command=...) accepted the server command")
        except ValueError as exc:
            notes.append(f"MCPTools(command='suno-stems-mcp --sandbox') refused: {exc}")
    else:
        toolkit = MCPTools(url=cfg["url"], transport="streamable-http")
    async with toolkit as tools:
        functions = tools.functions

        async def call(name, args):
            fc = FunctionCall(function=functions[name], arguments=args, call_id="c")
            try:
                outcome = await fc.aexecute()
            except Exception as exc:
                return None, error_text(exc), None
            if outcome.status == "failure":
                return _text(fc.result), (outcome.error or _text(fc.result) or "failure"), None
            return _text(fc.result if fc.result is not None else outcome.result), None, None

        script = await drive(call)
    return script.report(converted_schema=short(functions["split_stems"].parameters, 1500), notes=notes)


run_main(main)
