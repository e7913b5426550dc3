"""The MCP tools: list_tracks, split_stems and get_job."""
