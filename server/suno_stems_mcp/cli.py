"""The `suno-stems-mcp` command line: serve MCP (stdio or HTTP), run the sandbox alone, or run the demo.

Heavy modules are imported inside the branch that needs them, so `--version` and the stdio server's
first answer stay fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__


def own_command() -> list[str]:
    """How to start this same program as a child process: the console script beside this interpreter, else the
    interpreter in isolated mode (`-I`), so a `server.py` or a `suno_stems_mcp/` in the current folder is
    never run instead of the installed package."""
    script = Path(sys.executable).with_name("suno-stems-mcp.exe" if sys.platform == "win32" else "suno-stems-mcp")
    return [str(script)] if script.is_file() else [sys.executable, "-I", "-m", "suno_stems_mcp"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="suno-stems-mcp",
        description="MCP server that splits a Suno song (made through apiframe) into vocals and instrumental.",
    )
    parser.add_argument("--version", action="version", version=f"suno-stems-mcp {__version__}")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio",
                        help="how MCP clients connect (default: stdio)")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP transport: address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP transport: port (default: 8000)")
    parser.add_argument("--hosted", action="store_true",
                        help="HTTP transport, many users: stateless, each request brings its apiframe key in the "
                             "X-Apiframe-Key header; /healthz and /readyz; no downloads")
    parser.add_argument("--sandbox", action="store_true",
                        help="use the built-in apiframe emulator: no key, no network, no credits")
    commands = parser.add_subparsers(dest="command", metavar="{sandbox,demo}")
    sandbox = commands.add_parser("sandbox", help="run only the apiframe emulator as an HTTP API")
    sandbox.add_argument("--port", type=int, default=8787, dest="sandbox_port",
                         help="port on 127.0.0.1 (default: 8787; 0 picks a free one)")
    sandbox.add_argument("--reset", action="store_true",
                         help="start the shared sandbox state afresh first (jobs, credits and files)")
    demo = commands.add_parser("demo", help="split a demo song end to end against the sandbox, via a real MCP client")
    demo.add_argument("--output", metavar="DIR", help="where to save the stems (default: a new temporary folder)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(_parser().parse_args(argv))
    except KeyboardInterrupt:  # Ctrl-C or SIGINT: a normal way to stop, not a crash worth a traceback
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.command == "sandbox":
        from .sandbox.runner import serve_forever

        return serve_forever(args.sandbox_port, fresh=args.reset)
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(args.output)
    if args.hosted:
        from .hosted import serve_hosted

        return serve_hosted(transport=args.transport, host=args.host, port=args.port, sandbox_flag=args.sandbox)
    from .run import serve

    return serve(transport=args.transport, host=args.host, port=args.port, sandbox_flag=args.sandbox)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
