"""suno-stems-mcp: split a Suno song into vocals and instrumental stems through apiframe, over MCP.

The package's sources sit in two folders of the repository, `server/` (the server, its core, the apiframe
client, the sandbox) and `tools/` (the MCP tools); the wheel holds them as one package. In an editable
install both folders are on the path, and the line below lets this package span them.
"""

__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"
