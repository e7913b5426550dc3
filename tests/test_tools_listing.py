"""What `tools/list` tells a client: the three tools, their hints, descriptions, schemas, and its size."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from suno_stems_mcp.sandbox import ThreadedSandbox

from .support import SEEDED_STEMS, SONG, connected, ok, settings_for

pytestmark = pytest.mark.anyio

TOOLS_LIST_BUDGET = 6500
"""Bytes of the whole tools/list answer, compact (6,178 B measured: BENCHMARKS.md §6): every conversation pays
for it before the first word, so growing it is a decision, made here."""


async def listed(running: ThreadedSandbox, output: Path, **changes: Any) -> dict[str, Any]:
    async with connected(settings_for(running, output, **changes)) as client:
        result = await client.list_tools()
    return {tool.name: tool for tool in result.tools}


def title_keys(schema: Any, where: str = "$") -> Iterator[str]:
    """Where a schema holds a `title` keyword (a property that is *named* title is not one)."""
    if isinstance(schema, list):
        for n, item in enumerate(schema):
            yield from title_keys(item, f"{where}[{n}]")
    elif isinstance(schema, dict):
        for key, value in schema.items():
            if key == "title":
                yield where
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                for name, sub in value.items():
                    yield from title_keys(sub, f"{where}.{key}.{name}")
            else:
                yield from title_keys(value, f"{where}.{key}")


async def test_tools_list_has_exactly_the_three_tools(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    tools = await listed(live_sandbox, tmp_path)
    assert sorted(tools) == ["get_job", "list_tracks", "split_stems"]


@pytest.mark.parametrize("name", ["list_tracks", "get_job"])
async def test_the_free_tools_are_read_only_idempotent_and_open_world(live_sandbox: ThreadedSandbox, tmp_path: Path,
                                                                      name: str) -> None:
    hints = (await listed(live_sandbox, tmp_path))[name].annotations
    assert hints is not None
    assert (hints.read_only_hint, hints.idempotent_hint, hints.open_world_hint) == (True, True, True)


async def test_split_stems_is_not_read_only_not_destructive_but_idempotent_and_open_world(
        live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    hints = (await listed(live_sandbox, tmp_path))["split_stems"].annotations
    assert hints is not None
    assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint) == (
        False, False, True, True)


async def test_descriptions_say_what_each_tool_costs_and_what_comes_next(live_sandbox: ThreadedSandbox,
                                                                         tmp_path: Path) -> None:
    tools = await listed(live_sandbox, tmp_path)
    split = tools["split_stems"].description or ""
    assert "11" in split and "credits" in split and "get_job" in split
    for free in ("get_job", "list_tracks"):
        assert "Free." in (tools[free].description or ""), free
    assert "split_stems" in (tools["list_tracks"].description or "")
    assert all("\n" not in (tool.description or "") and "  " not in (tool.description or "") for tool in tools.values())


async def test_input_schemas_refuse_unknown_properties(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    tools = await listed(live_sandbox, tmp_path)
    assert {name: tool.input_schema.get("additionalProperties") for name, tool in tools.items()} == {
        "list_tracks": False, "split_stems": False, "get_job": False}


async def test_wait_seconds_is_any_wait_the_server_then_bounds(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    tools = await listed(live_sandbox, tmp_path, max_wait=10.0)
    for name in ("split_stems", "get_job"):
        wait = tools[name].input_schema["properties"]["wait_seconds"]
        assert wait == {"description": wait["description"], "minimum": 0, "type": "integer", "nullable": True}, name
    assert "wait_seconds" not in tools["list_tracks"].input_schema["properties"]


def portability_problems(schema: Any, where: str = "") -> list[str]:
    """What schema converters (OpenAI strict, Gemini, LangChain, mcp-use, smolagents) mangle."""
    found: list[str] = []
    if isinstance(schema, dict):
        if isinstance(schema.get("type"), list):
            found.append(f"{where}: a type list {schema['type']}")
        if "anyOf" in schema or "oneOf" in schema:
            found.append(f"{where}: a union")
        if "enum" in schema and len({type(v) for v in schema["enum"]}) != 1:
            found.append(f"{where}: an enum of mixed types {schema['enum']}")
        for key, value in schema.items():
            found += portability_problems(value, f"{where}/{key}")
    elif isinstance(schema, list):
        for n, item in enumerate(schema):
            found += portability_problems(item, f"{where}/{n}")
    return found


async def test_input_schemas_travel_through_every_converter(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    tools = await listed(live_sandbox, tmp_path)
    assert [p for name, tool in tools.items() for p in portability_problems(tool.input_schema, name)] == []
    assert {name: tool.input_schema.get("required", []) for name, tool in tools.items()} == {
        "list_tracks": [], "split_stems": ["parent_job_id"], "get_job": ["job_id"]}


@pytest.mark.parametrize(("name", "arguments"), [
    ("list_tracks", {"job_id": None, "limit": None, "cursor": None}),
    ("get_job", {"job_id": SEEDED_STEMS, "wait_seconds": None, "download": None}),
    ("split_stems", {"parent_job_id": SONG, "index": 1, "track_id": None, "wait_seconds": None, "download": None,
                     "webhook_url": None, "webhook_events": None}),
])
async def test_an_explicit_null_means_not_given(live_sandbox: ThreadedSandbox, tmp_path: Path, name: str,
                                                arguments: dict[str, Any]) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        ok(await client.call_tool(name, arguments))


async def test_schemas_carry_no_pydantic_titles_but_keep_a_property_named_title(live_sandbox: ThreadedSandbox,
                                                                               tmp_path: Path) -> None:
    tools = await listed(live_sandbox, tmp_path)
    found = [f"{name}.{part}{where}" for name, tool in tools.items()
             for part, schema in (("inputSchema", tool.input_schema), ("outputSchema", tool.output_schema))
             for where in title_keys(schema)]
    assert found == []
    defs = tools["get_job"].output_schema["$defs"]  # type: ignore[index]
    assert "title" in defs["Track"]["properties"]
    assert "title" in tools["list_tracks"].output_schema["$defs"]["TrackRef"]["properties"]  # type: ignore[index]


async def test_every_tool_advertises_an_output_schema(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    tools = await listed(live_sandbox, tmp_path)
    key_field = {"list_tracks": "tracks", "split_stems": "next_step", "get_job": "next_step"}
    for name, tool in tools.items():
        assert tool.output_schema is not None, name
        Draft202012Validator.check_schema(tool.output_schema)
        assert tool.output_schema["type"] == "object", name
        assert key_field[name] in tool.output_schema["properties"], name


@pytest.mark.parametrize(("name", "arguments"), [
    ("list_tracks", {}),
    ("list_tracks", {"job_id": SEEDED_STEMS}),
    ("get_job", {"job_id": SEEDED_STEMS}),
    ("get_job", {"job_id": SONG, "download": False}),
    ("split_stems", {"parent_job_id": SONG, "index": 2}),
    ("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 0}),
])
async def test_a_real_result_validates_against_the_advertised_output_schema(live_sandbox: ThreadedSandbox,
                                                                            tmp_path: Path, name: str,
                                                                            arguments: dict[str, Any]) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        schema = {tool.name: tool.output_schema for tool in (await client.list_tools()).tools}[name]
        result = await client.call_tool(name, arguments)
    data = ok(result)
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in Draft202012Validator(schema).iter_errors(data)]
    assert problems == []
    assert json.loads(result.content[0].text) == data  # type: ignore[union-attr]


async def test_the_whole_tools_list_fits_the_budget(live_sandbox: ThreadedSandbox, tmp_path: Path) -> None:
    async with connected(settings_for(live_sandbox, tmp_path)) as client:
        answer = await client.list_tools()
    size = len(json.dumps(answer.model_dump(by_alias=True, exclude_none=True), separators=(",", ":")).encode())
    assert size <= TOOLS_LIST_BUDGET, f"tools/list is {size} bytes, over the budget of {TOOLS_LIST_BUDGET}"
