"""The use cases behind the tools: split a track, read and wait for a job, save and describe its files."""
