"""Context cost: the bytes of `tools/list` and of a typical split_stems result, with a breakdown and cuts.

Sizes are of the JSON as sent: `model_dump(by_alias=True, exclude_none=True)` dumped compactly
(`separators=(",", ":")`), checked against the bytes of the real stdio answer of `suno-stems-mcp` and of the
`initialize` answer (whose `instructions` are also read into every conversation). Baseline in the same run:
bench/hello_server.py's tools/list and hello result. Results come from the server in process against a fast
sandbox, downloading into a folder named like the default (".../Music/Suno Stems"), as on stdio.

For each candidate cut the script applies it to the real JSON and reports the bytes saved; "model-visible"
is name + title + description + inputSchema, what hosts such as Claude Desktop pass to the model (outputSchema
and annotations are used by the client, not the model). Token figures are bytes/4, a rough rule.

    .venv/bin/python bench/context_cost.py [--quick]
"""

from __future__ import annotations

import asyncio
import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import hello_server
from mcp import Client
from pydantic import SecretStr

from suno_stems_mcp.config import Settings
from suno_stems_mcp.mcp_server import build_server
from suno_stems_mcp.sandbox import DEMO_KEY, Sandbox, SandboxConfig, ThreadedSandbox
from suno_stems_mcp.sandbox.seed import demo_id

MODEL_VISIBLE = ("name", "title", "description", "inputSchema")


def size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def dumped(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")


def wire_sizes() -> dict[str, int]:
    """Bytes of the real stdio answers (one JSON-RPC line each) of the installed server. Each request is sent
    after the previous answer, and stdin is closed only at the end (the server stops at end of input)."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}
    process = subprocess.Popen(c.our_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=c.child_env(), cwd=tempfile.gettempdir())
    assert process.stdin is not None and process.stdout is not None
    answers: dict[int, tuple[int, dict[str, Any]]] = {}

    def ask(*messages: dict[str, Any], want: int) -> None:
        for message in messages:
            process.stdin.write(json.dumps(message) + "\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]
        while want not in answers:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                raise RuntimeError("the server closed stdout before answering")
            message = json.loads(line)
            if "id" in message:
                answers[message["id"]] = (len(line.rstrip("\n").encode()), message)

    try:
        ask(init, want=1)
        ask({"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, want=2)
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    init_bytes, init_msg = answers[1]
    list_bytes, list_msg = answers[2]
    return {"initialize_line": init_bytes, "instructions": len(init_msg["result"].get("instructions", "").encode()),
            "tools_list_line": list_bytes, "tools_list_result": size(list_msg["result"])}


# candidate cuts -------------------------------------------------------------------------------------------

def _walk(node: Any, fn: Any) -> Any:
    node = fn(node)
    if isinstance(node, dict):
        return {k: _walk(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, fn) for v in node]
    return node


def drop_additional_properties(tool: dict[str, Any]) -> dict[str, Any]:
    tool = copy.deepcopy(tool)
    tool["inputSchema"].pop("additionalProperties", None)
    return tool


def drop_output_schema(tool: dict[str, Any]) -> dict[str, Any]:
    tool = copy.deepcopy(tool)
    tool.pop("outputSchema", None)
    return tool


def drop_output_descriptions(tool: dict[str, Any]) -> dict[str, Any]:
    tool = copy.deepcopy(tool)
    if "outputSchema" in tool:
        tool["outputSchema"] = _walk(tool["outputSchema"], lambda n: {k: v for k, v in n.items() if k != "description"}
                                     if isinstance(n, dict) and isinstance(n.get("description"), str) else n)
    return tool


def drop_output_required(tool: dict[str, Any]) -> dict[str, Any]:
    tool = copy.deepcopy(tool)
    if "outputSchema" in tool:
        tool["outputSchema"] = _walk(tool["outputSchema"], lambda n: {k: v for k, v in n.items() if k != "required"}
                                     if isinstance(n, dict) and isinstance(n.get("required"), list) else n)
    return tool


def drop_title(tool: dict[str, Any]) -> dict[str, Any]:
    tool = copy.deepcopy(tool)
    tool.pop("title", None)
    return tool


ANNOTATION_DEFAULTS = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False,
                       "openWorldHint": True}


def drop_default_annotations(tool: dict[str, Any]) -> dict[str, Any]:
    """Annotations equal to the spec's default, and destructive/idempotent hints on a read-only tool (the spec
    says they are meaningful only when readOnlyHint is false): dropping them changes nothing a client may infer."""
    tool = copy.deepcopy(tool)
    hints = tool.get("annotations")
    if hints:
        read_only = hints.get("readOnlyHint", False)
        kept = {k: v for k, v in hints.items() if ANNOTATION_DEFAULTS.get(k, object()) != v
                and not (read_only and k in ("destructiveHint", "idempotentHint"))}
        if kept:
            tool["annotations"] = kept
        else:
            tool.pop("annotations")
    return tool


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def without_nulls_and_false(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls_and_false(v) for k, v in value.items() if v is not None and v is not False}
    if isinstance(value, list):
        return [without_nulls_and_false(v) for v in value]
    return value


TOOL_CUTS = (
    ("drop outputSchema from tools/list (clients then skip validation; not model-visible on most hosts)",
     drop_output_schema),
    ("drop the descriptions inside outputSchema", drop_output_descriptions),
    ("drop `required` lists inside outputSchema", drop_output_required),
    ("drop tool `title` (hosts show the name when absent)", drop_title),
    ("drop annotations equal to the spec default, and destructive/idempotent hints of read-only tools",
     drop_default_annotations),
    ("drop inputSchema additionalProperties:false (the server refuses unknown arguments anyway)",
     drop_additional_properties),
)


async def collect(output: Path) -> dict[str, Any]:
    running = ThreadedSandbox(Sandbox(SandboxConfig.fast())).start()
    settings = Settings(api_key=SecretStr(DEMO_KEY), base_url=running.url, output_dir=output, download=True,
                        sandbox=True, log_level="WARNING")
    try:
        async with Client(build_server(settings)) as client, Client(hello_server.mcp) as hello:
            c.quiet()
            tools = dumped(await client.list_tools())
            hello_tools = dumped(await hello.list_tools())
            hello_result = dumped(await hello.call_tool("hello", {"name": "bench"}))
            done = await client.call_tool("split_stems", {"parent_job_id": demo_id("Paper Satellites"), "index": 1})
            assert not done.is_error, done
            running.sandbox.plan_next(kinds=("stems",), runs_for=600.0)
            pending = await client.call_tool("split_stems", {"parent_job_id": demo_id("Golden Hour Drive"),
                                                             "index": 1, "wait_seconds": 1})
            assert not pending.is_error, pending
            listed = await client.call_tool("list_tracks", {})
        return {"tools": tools, "hello_tools": hello_tools, "hello_result": hello_result, "done": dumped(done),
                "pending": dumped(pending), "listed": dumped(listed)}
    finally:
        running.stop()


def result_breakdown(result: dict[str, Any]) -> dict[str, int]:
    text = sum(len(block.get("text", "").encode()) for block in result.get("content", []))
    structured = size(result.get("structuredContent")) if "structuredContent" in result else 0
    total = size(result)
    return {"total": total, "content_text": text, "structured_content": structured,
            "envelope": total - text - structured}


def main() -> None:
    p = c.parser(__doc__.splitlines()[0])
    args = p.parse_args()
    c.banner("context cost: tools/list and results, in bytes", args.quick)
    with tempfile.TemporaryDirectory(prefix="bench-ctx-") as tmp:
        output = Path(tmp) / "Music" / "Suno Stems"
        data = asyncio.run(collect(output))
    wire = wire_sizes()
    tools = data["tools"]
    total = size(tools)
    hello_total = size(data["hello_tools"])
    figures: dict[str, Any] = {"tools_list_bytes": total, "hello_tools_list_bytes": hello_total,
                               "ratio_vs_hello": total / hello_total, "wire": wire}

    print(f"\n   tools/list result: {total} bytes (~{total // 4} tokens); hello world's: {hello_total} bytes"
          f" ({total / hello_total:.1f}x for 3 tools vs 1)")
    print(f"   on the wire (stdio): tools/list line {wire['tools_list_line']} bytes (result "
          f"{wire['tools_list_result']});"
          f" initialize line {wire['initialize_line']} bytes, of which instructions {wire['instructions']}")
    envelope = total - size(tools["tools"]) + 2
    rows = []
    per_tool: dict[str, Any] = {}
    fields = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")
    for tool in tools["tools"]:
        parts = {f: size(tool[f]) if f in tool else 0 for f in fields}
        parts["other keys and punctuation"] = size(tool) - sum(parts.values())
        visible = sum(size(tool[f]) for f in MODEL_VISIBLE if f in tool)
        per_tool[tool["name"]] = {"total": size(tool), "model_visible": visible, **parts}
        rows.append([tool["name"], size(tool), parts["description"], parts["inputSchema"], parts["outputSchema"],
                     parts["annotations"], parts["title"], parts["other keys and punctuation"], visible])
    visible_total = sum(t["model_visible"] for t in per_tool.values())
    rows.append(["(envelope: _meta, ttlMs, cacheScope)", envelope, "", "", "", "", "", "", ""])
    c.table(rows, ["tool", "bytes", "description", "inputSchema", "outputSchema", "annotations", "title", "other",
                   "model-visible"])
    out_total = sum(t["outputSchema"] for t in per_tool.values())
    print(f"   outputSchema is {out_total} bytes = {100 * out_total / total:.0f}% of tools/list; model-visible part"
          f" (name+title+description+inputSchema) {visible_total} bytes (~{visible_total // 4} tokens)")
    figures["per_tool"] = per_tool
    figures["model_visible_bytes"] = visible_total
    figures["output_schema_bytes"] = out_total

    print("\n   candidate cuts to tools/list (bytes saved when applied to the real JSON):")
    cuts = []
    for label, fn in TOOL_CUTS:
        after = {**tools, "tools": [fn(t) for t in tools["tools"]]}
        saved = total - size(after)
        vis_after = sum(size(t[f]) for t in after["tools"] for f in MODEL_VISIBLE if f in t)
        cuts.append({"cut": label, "saved": saved, "model_visible_saved": visible_total - vis_after})
    c.table([[x["cut"], x["saved"], f"{100 * x['saved'] / total:.1f}%", x["model_visible_saved"]] for x in cuts],
            ["cut", "bytes saved", "of total", "model-visible saved"])
    figures["tool_cuts"] = cuts

    print("\n   results (CallToolResult as sent):")
    rows = []
    results: dict[str, Any] = {}
    for label, key in (("split_stems, completed, files saved (typical on stdio)", "done"),
                       ("split_stems, still running after wait", "pending"),
                       ("list_tracks, demo account (3 songs + 1 stems job)", "listed"),
                       ("hello world's hello", "hello_result")):
        b = result_breakdown(data[key])
        results[key] = b
        rows.append([label, b["total"], b["content_text"], b["structured_content"], b["envelope"]])
    c.table(rows, ["result", "bytes", "content text", "structuredContent", "envelope"])
    done = data["done"]["structuredContent"]
    print("   the completed split_stems structuredContent, by field (bytes of \"key\":value):")
    field_sizes = {k: size({k: v}) - 2 for k, v in done.items()}
    tracks = done.get("tracks", [])
    track_fields: dict[str, int] = {}
    for track in tracks:
        for k, v in track.items():
            track_fields[k] = track_fields.get(k, 0) + size({k: v}) - 2
    print("   " + ", ".join(f"{k} {v}" for k, v in sorted(field_sizes.items(), key=lambda kv: -kv[1])))
    print(f"   inside tracks ({len(tracks)}): " + ", ".join(f"{k} {v}" for k, v in
                                                        sorted(track_fields.items(), key=lambda kv: -kv[1])))
    figures["results"] = results
    figures["done_fields"] = field_sizes
    figures["done_track_fields"] = track_fields

    structured = done
    text_total = results["done"]["content_text"]
    result_cuts = [
        ("omit null fields (error, image_url, tags, completed_at while running...)",
         size(structured) - size(without_nulls(structured))),
        ("omit null fields and false flags (reused, expired, sandbox when false)",
         size(structured) - size(without_nulls_and_false(structured))),
        ("drop source (parent_job_id/index/track_id echo the caller's own arguments)",
         size({"source": structured.get("source")}) - 2 if "source" in structured else 0),
        ("drop image_url from tracks (always null for stems)",
         sum(size({"image_url": t.get("image_url")}) - 2 for t in tracks if "image_url" in t)),
    ]
    print("\n   candidate cuts to the completed split_stems result (bytes saved, per copy of the data):")
    c.table([[label, saved, f"{100 * saved / results['done']['total']:.1f}%"] for label, saved in result_cuts],
            ["cut", "bytes saved", "of result"])
    figures["result_cuts"] = [{"cut": label, "saved": saved} for label, saved in result_cuts]
    print(f"   not a cut: the text block repeats structuredContent ({text_total} bytes). A host hands the model one of"
          " the two, so the model pays once; the wire pays twice. Keep both (hosts that read only text need the"
          " JSON; the spec asks for the text copy).")
    c.emit("context_cost", args.quick, figures)


if __name__ == "__main__":
    main()
