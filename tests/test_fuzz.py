"""Input fuzzing through the real MCP client: hypothesis-made arguments for each tool, sent with `mcp.Client` in
memory to a server pointed at a live sandbox.

Properties, for every example:
- the call returns a CallToolResult (a protocol error or an exception fails the test): either an error with a
  non-empty text that is not the SDK's bare crash text ("Error executing tool <name>"), or a success whose
  structuredContent validates against the tool's outputSchema;
- input that is invalid (judged independently of the server: jsonschema on the advertised inputSchema, plus the
  rules "exactly one of index/track_id", "webhook_url is https with a host", "webhook_events needs webhook_url")
  is refused and sends nothing to the API (no new `/v2/` request in the sandbox's log).

The one leniency the server documents is applied by the oracle too: an array sent as JSON text (as Claude
Desktop does) is decoded before validation. Anything else that breaks the advertised schema (a wrong JSON type,
and an explicit null for an optional argument means "not given") must be refused.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import anyio.from_thread
import hypothesis.configuration
import jsonschema
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp_types import CallToolResult

from suno_stems_mcp.sandbox import Sandbox, SandboxConfig, ThreadedSandbox

from . import reliability
from .support import FAILED, PROCESSING, SEEDED_STEMS, SONG, SONG_2, connected, settings_for, text

MAX_WAIT = 1.0
"""The fuzzed server's SUNO_STEMS_MAX_WAIT: its schemas advertise wait_seconds 0..1, so no example waits long."""
CALL_BOUND = 30.0
CRASH = re.compile(r"Error executing tool \w+(: Error executing tool \w+)*")
EVENTS = ("progress", "completed", "failed")

# --- values -------------------------------------------------------------------------------------------------------

INJECTIONS = [
    "../../../../etc/passwd", "..\\..\\windows\\win.ini", "/v2/me", "%2e%2e%2f%2e%2e%2fetc", "....//....//",
    "' OR '1'='1' --", "\"; DROP TABLE jobs; --", "1; SELECT * FROM users",
    "$(id)", "`id`", "; cat /etc/passwd", "| nc 127.0.0.1 9", "&& rm -rf /", "$HOME", "%s%s%s%n",
    "{\"jsonrpc\": \"2.0\", \"id\": 1}", "]}\"", "{\"$ne\": null}", "null", "true", "[]", "{}", "\"quoted\"",
    "x\r\nX-API-Key: y", "x\r\n\r\nGET /v2/me HTTP/1.1\r\nHost: x", "x\nSet-Cookie: a=b", "\r\n",
    "{{7*7}}", "${7*7}", "#{7*7}", "<%= 7*7 %>", "<script>alert(1)</script>", "javascript:alert(1)",
    "\x00", "a\x00b", "%00", "\x1b[31mred", "NaN", "-NaN", "Infinity", "-Infinity", "1e309", "-0", "0x10",
    "file:///etc/passwd", "http://169.254.169.254/latest/meta-data/",
]
EXOTIC = [
    "\u202e", "\u202d", "\u2066", "\u200b", "\u200c", "\u200d", "\ufeff", "\u00a0", "\u3000", "e\u0301",
    "😀", "👩‍👩‍👧‍👦", "🇺🇳", "\U0010fffd", "ﷺ", "שלום", "مرحبا", "日本語", "Ω", "ß", "İ", "\t", "\x7f",
]
ID_LOOKALIKES = [
    SONG.upper(), SONG + "\n", " " + SONG, SONG + "/../me", SONG + "?x=1", SONG + "#x", SONG[:-1], SONG + "0",
    SONG.replace("-", ""), "{" + SONG + "}", "urn:uuid:" + SONG, SONG.replace("a", "g", 1), SONG + "%2F..",
    "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
]
BOOL_WORDS = ("0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes")

texts = st.one_of(
    st.text(max_size=40),  # hypothesis' default alphabet: any code point but surrogates
    st.lists(st.sampled_from(EXOTIC), min_size=1, max_size=12).map("".join),
    st.sampled_from(INJECTIONS),
    st.builds(lambda unit, count: unit * count, st.sampled_from(["A", "é", "😀", "\u200b", "../", "%", "\r\n"]),
              st.integers(1_000, 100_000)),  # huge strings, up to ~100k characters
)
numbers = st.one_of(
    st.integers(-(10**6), 10**6),
    st.sampled_from([10**30, -(10**30), 2**63, -(2**63), 2**31, -1, 0]),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
junk = st.one_of(texts, numbers, st.booleans(), st.none(), json_values)
uuids = st.uuids().map(str)
known_ids = st.sampled_from([SONG, SONG_2, SEEDED_STEMS, PROCESSING, FAILED])
ids = st.one_of(known_ids, uuids, st.sampled_from(ID_LOOKALIKES), junk)


def integers_around(low: int, high: int) -> st.SearchStrategy[Any]:
    """Valid integers, out-of-range ones, the forms lax mode converts, and junk."""
    return st.one_of(
        st.integers(low, high),
        st.integers(low, high),
        st.integers(-(10**9), 10**9),
        st.sampled_from([high + 1, low - 1, 10**30, -(10**30), 2**63]),
        st.booleans(),
        st.integers(low, high).map(float),
        st.integers(low, high).map(str),
        st.sampled_from(["NaN", "inf", "-1", "1e3", "0x1", "", " ", "½"]),
        junk,
    )


booleans = st.one_of(st.booleans(), st.none(), st.sampled_from((*BOOL_WORDS, "maybe", "2", "True ", "null")),
                     st.sampled_from([0, 1, 2, -1, 0.5, 1.0]), junk)
hook_urls = st.one_of(
    st.none(),
    # valid ones point at a closed loopback port: the sandbox's webhook deliveries must never leave the machine
    st.sampled_from(["https://127.0.0.1:9/hook", "https://localhost:9/h?x=${7*7}", "https://[::1]:9/../../etc"]),
    st.sampled_from(["http://127.0.0.1:9/hook", "https://", "https:///path", "//127.0.0.1/x", "ftp://127.0.0.1/",
                     "javascript:alert(1)", "https://[::1", "https://:9/x", "HTTPS//127.0.0.1", "https://@/",
                     "https:127.0.0.1", "wss://127.0.0.1:9/"]),
    junk,
)
hook_events = st.one_of(st.none(), st.lists(st.sampled_from(EVENTS), min_size=1, max_size=4), st.just([]),
                        st.lists(junk, min_size=1, max_size=3), st.just(json.dumps(["completed"])), junk)
cursors = st.one_of(st.none(), texts, st.just("x" * 2001), json_values)


def tool_fields(track_ids: list[str]) -> dict[str, dict[str, st.SearchStrategy[Any]]]:
    wait = integers_around(0, int(MAX_WAIT))
    return {
        "list_tracks": {"job_id": st.one_of(st.none(), ids), "limit": integers_around(1, 50), "cursor": cursors},
        "split_stems": {
            "parent_job_id": ids,
            "index": st.one_of(st.none(), integers_around(1, 2)),
            "track_id": st.one_of(st.none(), st.sampled_from(track_ids), texts, junk),
            "wait_seconds": wait,
            "download": booleans,
            "webhook_url": hook_urls,
            "webhook_events": hook_events,
        },
        "get_job": {"job_id": ids, "wait_seconds": wait, "download": booleans},
    }


VALID_BASE: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "list_tracks": st.fixed_dictionaries({}, optional={"limit": st.integers(1, 50)}),
    "split_stems": st.fixed_dictionaries({"parent_job_id": st.sampled_from([SONG, SONG_2]),
                                          "index": st.sampled_from([1, 2]),
                                          "wait_seconds": st.integers(0, int(MAX_WAIT))}),
    "get_job": st.fixed_dictionaries({"job_id": known_ids, "wait_seconds": st.integers(0, int(MAX_WAIT))}),
}


def arguments(tool: str, fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Half wholly random argument sets (any field present or missing, plus unknown keys), half a valid call
    with one field replaced, removed, or an unknown key added: so valid calls run too."""
    extra_keys = st.text(min_size=1, max_size=20).filter(lambda key: key not in fields)
    extras = st.one_of(st.just({}), st.just({}), st.dictionaries(extra_keys, junk, min_size=1, max_size=2))
    random_sets = st.builds(lambda chosen, more: {**chosen, **more},
                            st.fixed_dictionaries({}, optional=fields), extras)
    field = st.sampled_from(sorted(fields)).flatmap(lambda name: st.tuples(st.just(name), fields[name]))

    def mutate(base: dict[str, Any], change: tuple[str, Any], how: str, more: dict[str, Any]) -> dict[str, Any]:
        name, value = change
        if how == "drop":
            return {k: v for k, v in base.items() if k != name}
        if how == "extra":
            return {**base, **more}
        return {**base, name: value}

    near_valid = st.builds(mutate, VALID_BASE[tool], field, st.sampled_from(["replace", "replace", "drop", "extra",
                                                                              "keep"]),
                           st.dictionaries(extra_keys, junk, min_size=1, max_size=1))
    return st.one_of(random_sets, near_valid)


# --- the oracle: validity judged without the server ----------------------------------------------------------

PLAIN_STRING = {"get_job": {"job_id"}, "split_stems": {"parent_job_id"}, "list_tracks": set()}


def rule_problems(tool: str, args: dict[str, Any]) -> list[str]:
    if tool != "split_stems":
        return []
    problems = []
    if (args.get("index") is None) == (args.get("track_id") is None):
        problems.append("exactly one of index/track_id")
    url, events = args.get("webhook_url"), args.get("webhook_events")
    if events is not None and url is None:
        problems.append("webhook_events needs webhook_url")
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            secure = parts.scheme == "https" and bool(parts.hostname)
        except ValueError:
            secure = False
        if not secure:
            problems.append("webhook_url must be https with a host")
    return problems


def decode_json_text(tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """The documented leniency: a list or object sent as JSON text in a non-string field is decoded first."""
    seen = dict(args)
    for name, value in args.items():
        if isinstance(value, str) and name not in PLAIN_STRING[tool]:
            try:
                decoded = json.loads(value)
            except (ValueError, RecursionError):
                continue
            if isinstance(decoded, (list, dict)):
                seen[name] = decoded
    return seen


def classify(tool: str, args: dict[str, Any], schema: dict[str, Any]) -> str:
    """'valid' or 'invalid', by the advertised inputSchema (uuid format included) and the rules it cannot say.
    An explicit null for an optional argument means it was not given."""
    required = set(schema.get("required", ()))
    seen = decode_json_text(tool, {k: v for k, v in args.items() if v is not None or k in required})
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker(["uuid"]))
    return "valid" if validator.is_valid(seen) and not rule_problems(tool, seen) else "invalid"


# --- the server ----------------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _hypothesis_keeps_its_files_out_of_the_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Hypothesis caches (constants, unicode data) under ./.hypothesis even without a database: not here."""
    previous = getattr(hypothesis.configuration, "__hypothesis_home_directory", None)
    hypothesis.configuration.set_hypothesis_home_dir(tmp_path_factory.getbasetemp() / "hypothesis")
    yield
    hypothesis.configuration.set_hypothesis_home_dir(previous)


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,  # nothing written into the tree
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.large_base_example],
    )


@contextmanager
def fuzz_target(tmp_path: Path) -> Iterator[tuple[ThreadedSandbox, anyio.from_thread.BlockingPortal, Client,
                                                    dict[str, Any]]]:
    """A sandbox with plenty of credits, and one in-memory client on one server, driven from sync code."""
    with ThreadedSandbox(Sandbox(SandboxConfig.fast(credits=10_000_000))) as sandbox, \
            anyio.from_thread.start_blocking_portal() as portal:
        # sandbox=False: the production rules (in sandbox mode split_stems also takes http://localhost webhooks)
        settings_ = settings_for(sandbox, tmp_path, max_wait=MAX_WAIT, download=False, sandbox=False)
        with portal.wrap_async_context_manager(connected(settings_)) as client:
            tools = {tool.name: tool for tool in portal.call(client.list_tools).tools}
            yield sandbox, portal, client, tools


async def _call(client: Client, name: str, args: dict[str, Any]) -> CallToolResult:
    with anyio.fail_after(CALL_BOUND):
        return await client.call_tool(name, args)


def api_requests(sandbox: ThreadedSandbox) -> int:
    count = len(sandbox.sandbox.requests(path_prefix="/v2/"))
    assert count < 20_000, "the sandbox's request log is full: counts would be wrong"
    return count


def check_answer(name: str, result: CallToolResult, output_schema: dict[str, Any] | None) -> None:
    assert isinstance(result, CallToolResult)
    if result.is_error:
        message = text(result).strip()
        assert message, "an error result without text"
        assert not CRASH.fullmatch(message), f"the tool crashed (the SDK's bare crash text): {message!r}"
    else:
        assert result.structured_content is not None, "a success without structuredContent"
        assert output_schema is not None
        jsonschema.validate(result.structured_content, output_schema)


MAX_EXAMPLES = {"list_tracks": 150, "split_stems": 220, "get_job": 150}


@pytest.mark.parametrize("tool", ["list_tracks", "split_stems", "get_job"])
def test_fuzzed_arguments_get_a_clear_answer_and_invalid_ones_never_reach_the_api(tmp_path: Path, tool: str) -> None:
    reliability.describe(
        "fuzzing",
        "Hypothesis-generated arguments for each tool, sent through `mcp.Client` in memory to a server backed by a "
        "live sandbox: wrong JSON types, null, missing required and unknown extra arguments, huge strings (up to "
        "100k characters), exotic Unicode (RTL overrides, zero-width, emoji, combining marks), injection-looking "
        "strings (path traversal, SQL, shell metacharacters, JSON fragments, CRLF header injection, template "
        "syntax), id lookalikes, out-of-range and huge numbers (10**30), floats, NaN-like strings and booleans "
        "for integers; half of the examples are a valid call with one field broken. Validity is judged apart "
        "from the server: jsonschema on the advertised inputSchema plus the rules on index/track_id and webhooks. "
        "Every call must return a tool result (never a protocol error or the SDK's bare crash text), successes "
        "must match the outputSchema, and invalid input must send nothing to the API.",
        headers=["tool", "examples run", "successes", "errors", "invalid", "invalid that reached the API",
                 "crashes"],
    )
    counts: Counter[str] = Counter()
    with fuzz_target(tmp_path) as (sandbox, portal, client, tools):
        track_ids = [t["track_id"] for t in portal.call(_call, client, "list_tracks", {"job_id": SONG})
                     .structured_content["tracks"]]
        schema, output_schema = tools[tool].input_schema, tools[tool].output_schema
        strategy = arguments(tool, tool_fields(track_ids)[tool])

        @fuzz_settings(MAX_EXAMPLES[tool])
        @given(args=strategy)
        @example(args={"job_id": "x\r\nX-API-Key: y"} if tool != "split_stems" else
                 {"parent_job_id": SONG, "track_id": "x\r\nX-API-Key: y", "wait_seconds": 0})
        @example(args={"job_id": "../../v2/me"} if tool != "split_stems" else
                 {"parent_job_id": "../../v2/me", "index": 1})
        @example(args={"cursor": "{{7*7}}"} if tool == "list_tracks" else {})
        def one_call(args: dict[str, Any]) -> None:
            verdict = classify(tool, args, schema)
            before = api_requests(sandbox)
            result = portal.call(_call, client, tool, args)
            reached = api_requests(sandbox) - before
            counts["examples"] += 1
            counts["errors" if result.is_error else "successes"] += 1
            counts[verdict] += 1
            if result.is_error and CRASH.fullmatch(text(result).strip()):
                counts["crashes"] += 1
            check_answer(tool, result, output_schema)
            if verdict == "invalid":
                counts["invalid reached the API"] += 1 if reached else 0
                assert result.is_error, f"invalid input {args!r:.300} succeeded"
                assert reached == 0, f"invalid input {args!r:.300} sent {reached} request(s) to the API"

        one_call()
    reliability.row("fuzzing", f"`{tool}`", counts["examples"], counts["successes"], counts["errors"],
                    counts["invalid"], counts["invalid reached the API"], counts["crashes"])
    assert counts["examples"] >= MAX_EXAMPLES[tool] // 2, counts
    assert counts["invalid"] > 0 and counts["valid"] > 0, f"the generator misses a whole class of input: {counts}"
    if tool != "list_tracks":
        assert counts["successes"] > 0, f"no valid call ever succeeded: {counts}"


def test_well_formed_but_unknown_job_ids_get_a_clear_not_found_error(tmp_path: Path) -> None:
    tried: Counter[str] = Counter()
    with fuzz_target(tmp_path) as (sandbox, portal, client, _):
        calls = {
            "get_job": lambda job_id: {"job_id": job_id},
            "list_tracks": lambda job_id: {"job_id": job_id},
            "split_stems": lambda job_id: {"parent_job_id": job_id, "index": 1, "wait_seconds": 0},
        }
        charged_before = sandbox.sandbox.counters.credits_charged

        @fuzz_settings(60)
        @given(job_id=st.uuids().map(str), upper=st.booleans())
        def unknown(job_id: str, upper: bool) -> None:
            job_id = job_id.upper() if upper else job_id
            for tool, build in calls.items():
                result = portal.call(_call, client, tool, build(job_id))
                tried[tool] += 1
                message = text(result)
                assert result.is_error, f"{tool} found a job {job_id} that does not exist"
                assert f"There is no job {job_id.lower()}" in message and "list_tracks" in message, message
                assert not CRASH.fullmatch(message.strip())

        unknown()
        assert sandbox.sandbox.counters.credits_charged == charged_before
    total = sum(tried.values())
    reliability.fact("fuzzing", f"{total} calls with well-formed but unknown job ids ({tried['get_job']} per tool, "
                     "random uuids in lower and upper case) each got a not-found error that names the id and "
                     "points to list_tracks; none crashed, none charged.")
    assert tried["get_job"] >= 30


# --- what the schema refuses, and the one thing it lets through -------------------------------------------------

WRONG_TYPES = [
    ("get_job", {"job_id": SONG, "wait_seconds": "0"}),
    ("get_job", {"job_id": SONG, "wait_seconds": False}),
    ("get_job", {"job_id": SONG, "download": "no"}),
    ("get_job", {"job_id": SONG, "download": 0}),
    ("list_tracks", {"limit": "3"}),
    ("list_tracks", {"limit": True}),
    ("split_stems", {"parent_job_id": SONG, "index": True, "wait_seconds": 0}),
    ("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": "0"}),
    ("split_stems", {"parent_job_id": SONG, "index": 1, "wait_seconds": 0, "download": "off"}),
]


def case_id(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "-".join(f"{k}={v!r:.12}" for k, v in value.items() if k not in ("job_id", "parent_job_id"))


@pytest.mark.parametrize(("tool", "args"), WRONG_TYPES, ids=case_id)
def test_what_breaks_the_advertised_schema_is_refused_without_calling_the_api(tmp_path: Path, tool: str,
                                                                              args: dict[str, Any]) -> None:
    with fuzz_target(tmp_path) as (sandbox, portal, client, tools):
        assert classify(tool, args, tools[tool].input_schema) == "invalid"
        before = api_requests(sandbox)
        result = portal.call(_call, client, tool, args)
        reached = api_requests(sandbox) - before
    assert result.is_error and "Invalid arguments" in text(result), text(result)[:300]
    assert reached == 0


def test_a_list_sent_as_json_text_is_read_as_the_list(tmp_path: Path) -> None:
    """What Claude Desktop does with array arguments; the SDK decodes it and so does the schema check."""
    args = {"parent_job_id": SONG, "index": 1, "wait_seconds": 0, "webhook_url": "https://127.0.0.1:9/h",
            "webhook_events": '["completed"]'}
    with fuzz_target(tmp_path) as (sandbox, portal, client, tools):
        assert classify("split_stems", args, tools["split_stems"].input_schema) == "valid"
        result = portal.call(_call, client, "split_stems", args)
        posted = sandbox.sandbox.requests("POST", "/v2/music/suno/action")[-1].json()
    assert not result.is_error, text(result)
    assert posted["webhookEvents"] == ["completed"]
