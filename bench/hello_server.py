"""The baseline: a bare `MCPServer` hello world with one tool, in the same environment as suno-stems-mcp.

    python bench/hello_server.py                      # stdio (what cold_start.py and call_overhead.py time)
    python bench/hello_server.py --http --port 8123   # streamable HTTP at /mcp (concurrency.py's RSS baseline)

`delay` lets the HTTP baseline hold a call open as long as a real split would, so memory is compared under
the same number of calls in flight; it defaults to 0 and is not used on stdio.
"""

import sys

from mcp.server import MCPServer

mcp = MCPServer("hello")


@mcp.tool()
async def hello(name: str, delay: float = 0) -> str:
    """Say hello to someone."""
    if delay:
        import anyio

        await anyio.sleep(delay)
    return f"Hello, {name}!"


if __name__ == "__main__":
    if "--http" in sys.argv:
        port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 8000
        mcp.run("streamable-http", host="127.0.0.1", port=port)
    else:
        mcp.run()
