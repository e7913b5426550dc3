"""fastmcp: fastmcp.Client on its defaults; call_tool(..., raise_on_error=False) returns what a host gets."""

from __future__ import annotations

from _common import drive, run_main, server_params
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport


async def main(cfg):
    if cfg["transport"] == "stdio":
        command, args, env = server_params(cfg)
        transport = StdioTransport(command=command, args=args, env=env)
    else:
        transport = StreamableHttpTransport(cfg["url"])
    async with Client(transport) as client:
        async def call(name, args):
            result = await client.call_tool(name, args, raise_on_error=False)
            text = "".join(getattr(b, "text", "") for b in result.content)
            return text, (text if result.is_error else None), result.structured_content

        script = await drive(call)
    return script.report()


run_main(main)
