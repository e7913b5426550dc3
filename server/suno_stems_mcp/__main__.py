"""`python -m suno_stems_mcp`: the same as the `suno-stems-mcp` command."""

from .cli import main

raise SystemExit(main())
