"""`python -m server`: the same as the `suno-stems-mcp` command."""

from .cli import main

raise SystemExit(main())
