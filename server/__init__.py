"""suno-stems-mcp: split a Suno song into vocals and instrumental stems through apiframe, over MCP."""

__version__ = "0.1.0"
