"""What every driver shares (stdlib only: it runs inside each framework's own venv).

A driver gets its configuration as one JSON argument:
  {"framework", "transport": "stdio"|"http", "command": [...server command and args...], "env": {...},
   "url": "http://127.0.0.1:P/mcp" (http only)}
and prints exactly one line `COMPAT-REPORT {json}` on stdout (the last one wins; frameworks may print too).

`Script` is the scripted "model": it decides each next tool call from what the framework handed back for the
previous one (the model-facing text or structured content, or the error text), the way an assistant that
follows the server's `next_step` / `done` fields would. It plays a conversation of three user requests
(REQUESTS), each its own agent run where the framework has an agent loop, as a real chat would have them:
  1. "split my newest song": list_tracks -> split_stems(first splittable track) -> get_job ... until done
     (at most 10 calls for the split), then the answer;
  2. a mistake, a song that does not exist: split_stems on a random job id -> text naming list_tracks / no
     such job; then, as that text says, list_tracks; then the answer;
  3. a mistake, both index and track_id: split_stems with both -> text saying to give exactly one; the answer.
A user's mistakes are requests of their own, not steps of the split: a framework's per-run limits (turns,
retries) apply to each request. `Script(one_request=True)` plays all of it as one request instead.
"""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
import uuid
from typing import Any

# The drivers are named after their frameworks (drivers/fastmcp.py, ...): once this module is loaded, take the
# drivers' folder off sys.path so that `import fastmcp` finds the framework, not its driver.
_HERE = __import__("os").path.dirname(__import__("os").path.abspath(__file__))
sys.path[:] = [p for p in sys.path if __import__("os").path.abspath(p or ".") != _HERE]

REQUESTS = {
    "list": "Split my newest Suno song into vocals and instrumental.",
    "error_a": "Split track 1 of my Suno song {job_id}.",
    "error_b": "Split that song's first track, the one with track id {track_id}.",
}
"""What the user says at the start of each request, by the phase the request starts in."""

MAX_SPLIT_CALLS = 10
GIVE_UP_AFTER = 3
"""A model that sees this many failed split_stems/get_job calls in a row stops trying (and tells the user)."""
TEXT_LIMIT = 700

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def load_config() -> dict[str, Any]:
    return json.loads(sys.argv[1])


def server_params(cfg: dict[str, Any]) -> tuple[str, list[str], dict[str, str]]:
    """(command, args, env) to start the stdio server as the framework's own stdio params expect them."""
    command = list(cfg["command"])
    return command[0], [*command[1:], "--sandbox"], dict(cfg["env"])


def short(value: Any, limit: int = TEXT_LIMIT) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text)} chars]"


def as_data(observed: Any) -> Any:
    """What a model could read out of what it was handed: a dict/list if the text is JSON, else the text."""
    if isinstance(observed, (dict, list)):
        return observed
    if isinstance(observed, str):
        try:
            return json.loads(observed)
        except ValueError:
            return observed
    return observed


def find_job(observed: Any) -> dict[str, Any] | None:
    """The Job object in a result, however the framework wrapped it."""
    data = as_data(observed)
    if isinstance(data, dict):
        if "job_id" in data and "done" in data:
            return data
        for key in ("structuredContent", "structured_content", "result", "content", "text"):
            if key in data:
                found = find_job(data[key])
                if found:
                    return found
    if isinstance(data, list):
        for item in data:
            found = find_job(item)
            if found:
                return found
    if isinstance(data, str):
        # a text block that embeds the JSON (e.g. "[TextContent(text='{...}')]" or a repr)
        start = data.find('{"job_id"')
        if start >= 0:
            try:
                return json.JSONDecoder().raw_decode(data[start:])[0]
            except ValueError:
                pass
    return None


def find_tracks(observed: Any) -> list[dict[str, Any]] | None:
    data = as_data(observed)
    if isinstance(data, dict):
        if isinstance(data.get("tracks"), list) and "has_more" in data:
            return data["tracks"]
        for key in ("structuredContent", "structured_content", "result", "content", "text"):
            if key in data:
                found = find_tracks(data[key])
                if found is not None:
                    return found
    if isinstance(data, list):
        for item in data:
            found = find_tracks(item)
            if found is not None:
                return found
    if isinstance(data, str):
        start = data.find('{"tracks"')
        if start >= 0:
            try:
                return find_tracks(json.JSONDecoder().raw_decode(data[start:])[0])
            except ValueError:
                pass
    return None


def flat_text(observed: Any) -> str:
    if isinstance(observed, str):
        return observed
    try:
        return json.dumps(observed, default=repr, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(observed)


class Script:
    """The scripted model. `next_call(observed, error)` -> (tool, args) or None when the script is over.

    `observed` is what the framework handed the model for the previous call (text or structured), `error` the
    text of a tool error when the framework reported one as an error (exception, error flag, retry prompt)."""

    def __init__(self, *, one_request: bool = False, phase: str = "list", parent: dict[str, Any] | None = None) -> None:
        self.one_request = one_request
        self.request = 0
        """How many requests have started."""
        self.calls: list[dict[str, Any]] = []
        self.phase = phase
        self._unknown_job = str(uuid.uuid4())
        self.parent: dict[str, Any] | None = parent
        self.job_id: str | None = None
        self.split_calls = 0
        self.errors_in_a_row = 0
        self.flow_done_job: dict[str, Any] | None = None
        self.flow_problem: str | None = None
        self.errors: dict[str, dict[str, Any]] = {}
        self._pending: tuple[str, dict[str, Any], str] | None = None
        self._started = 0.0

    # -- bookkeeping -------------------------------------------------------------------------------------
    def record(self, observed: Any, error: str | None, *, structured: Any = None, seconds: float | None = None) -> None:
        if self._pending is None:
            return
        tool, args, phase = self._pending
        entry = {
            "request": self.request,
            "phase": phase,
            "tool": tool,
            "args": args,
            "seconds": round(seconds if seconds is not None else time.monotonic() - self._started, 2),
            "error": short(error) if error is not None else None,
            "model_text": short(flat_text(observed)) if observed is not None else None,
            "structured": short(json.dumps(structured, default=repr)) if structured is not None else None,
        }
        self.calls.append(entry)

    def start(self, tool: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self._pending = (tool, args, self.phase)
        self._started = time.monotonic()
        return tool, args

    # -- the "model" -------------------------------------------------------------------------------------
    @property
    def over(self) -> bool:
        return self.phase == "over"

    def prompt(self) -> str:
        """What the user says to start the next request."""
        parent = self.parent or {}
        return REQUESTS[self.phase].format(job_id=self._unknown_job, track_id=parent.get("track_id") or "x")

    def first(self) -> tuple[str, dict[str, Any]]:
        """The first call of the next request."""
        self.request += 1
        if self.phase == "error_a":
            return self._error_a()
        if self.phase == "error_b":
            return self._error_b()
        assert self.phase == "list", f"no request starts in phase {self.phase}"
        return self.start("list_tracks", {})

    def next_call(self, observed: Any, error: str | None, *, structured: Any = None,
                  seconds: float | None = None) -> tuple[str, dict[str, Any]] | None:
        self.record(observed, error, structured=structured, seconds=seconds)
        seen = structured if structured is not None else observed
        if self.phase == "list":
            tracks = find_tracks(seen) or find_tracks(observed)
            usable = [t for t in (tracks or []) if t.get("splittable")]
            if error is not None or not usable:
                self.flow_problem = f"list_tracks gave no splittable track (error: {short(error, 300)})"
                return self._next_request("error_a")
            self.parent = usable[0]
            self.phase = "split"
            return self._split()
        if self.phase == "split":
            return self._after_split_call(seen, observed, error)
        if self.phase == "error_a":
            self.errors["a_unknown_job"] = self._judge(observed, error, ("list_tracks", "no job", "no such job"))
            self.phase = "after_a"  # as the error says: call list_tracks to see the songs
            return self.start("list_tracks", {})
        if self.phase == "after_a":
            return self._next_request("error_b")
        if self.phase == "error_b":
            self.errors["b_index_and_track_id"] = self._judge(observed, error, ("exactly one",))
            self.phase = "over"
            return None
        return None

    def _split(self) -> tuple[str, dict[str, Any]]:
        self.split_calls += 1
        assert self.parent is not None
        return self.start("split_stems", {"parent_job_id": self.parent["job_id"], "index": self.parent["index"]})

    def _after_split_call(self, seen: Any, observed: Any, error: str | None) -> tuple[str, dict[str, Any]] | None:
        job = None if error is not None else (find_job(seen) or find_job(observed))
        if job is not None:
            self.job_id = job.get("job_id") or self.job_id
            if job.get("done"):
                self.flow_done_job = job
                return self._next_request("error_a")
        if job is None:
            if error is None and self.calls:
                self.calls[-1]["error"] = "no Job in what the model got: " + short(flat_text(observed), 300)
            self.errors_in_a_row += 1
            if self.errors_in_a_row >= GIVE_UP_AFTER:
                self.flow_problem = f"gave up after {GIVE_UP_AFTER} failed calls in a row"
                return self._next_request("error_a")
        else:
            self.errors_in_a_row = 0
        if job is None:
            # A model told "error" retries: split_stems again (its description says repeats are free), or
            # get_job when the error text names the split's job id.
            named = [m for m in UUID_RE.findall(error or flat_text(observed)) if self.parent and m != self.parent["job_id"]]  # noqa: E501
            if named:
                self.job_id = named[0]
        if self.split_calls >= MAX_SPLIT_CALLS:
            self.flow_problem = f"not done after {MAX_SPLIT_CALLS} calls"
            return self._next_request("error_a")
        if self.job_id is None:
            return self._split()
        self.split_calls += 1
        args: dict[str, Any] = {"job_id": self.job_id}
        hint = re.search(r"wait_seconds\s*=\s*(\d+)", str((job or {}).get("next_step", "")))
        if hint:
            args["wait_seconds"] = int(hint.group(1))
        return self.start("get_job", args)

    def _next_request(self, phase: str) -> tuple[str, dict[str, Any]] | None:
        """This request is over: the model answers the user (None), and the next request starts in `phase`.
        With one_request, the model goes on to it in the same request instead."""
        self.phase = phase
        if not self.one_request:
            return None
        return self._error_a() if phase == "error_a" else self._error_b()

    def _error_a(self) -> tuple[str, dict[str, Any]]:
        self.phase = "error_a"
        return self.start("split_stems", {"parent_job_id": self._unknown_job, "index": 1})

    def _error_b(self) -> tuple[str, dict[str, Any]]:
        self.phase = "error_b"
        parent = self.parent or {"job_id": str(uuid.uuid4()), "track_id": "x"}
        return self.start("split_stems", {"parent_job_id": parent["job_id"], "index": 1,
                                          "track_id": parent.get("track_id") or "x"})

    @staticmethod
    def _judge(observed: Any, error: str | None, wanted: tuple[str, ...]) -> dict[str, Any]:
        seen = flat_text(observed) if observed is not None else ""
        text = seen if error is None or error.strip() == seen.strip() else (error + "\n" + seen).strip()
        ok = any(w in text.lower() for w in wanted)
        return {"ok": ok, "reported_as_error": error is not None, "model_text": short(text.strip(), 900),
                "wanted_any_of": list(wanted)}

    # -- the report ----------------------------------------------------------------------------------------
    def report(self, **extra: Any) -> dict[str, Any]:
        flow_errors = [c for c in self.calls if c["phase"] in ("list", "split") and c["error"]]
        job = self.flow_done_job
        job_seconds = None
        if job and job.get("created_at") and job.get("completed_at"):
            from datetime import datetime
            c0 = datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))
            c1 = datetime.fromisoformat(job["completed_at"].replace("Z", "+00:00"))
            job_seconds = round((c1 - c0).total_seconds(), 1)
        problems = []
        if self.flow_problem:
            problems.append(self.flow_problem)
        if job is None and not self.flow_problem:
            problems.append("the split never reached done")
        if job is not None and (job.get("status") != "COMPLETED" or len(job.get("tracks") or []) != 2):
            problems.append(f"split ended {job.get('status')} with {len(job.get('tracks') or [])} tracks")
        for c in flow_errors:
            problems.append(f"{c['tool']} call errored after {c['seconds']} s: {short(c['error'], 300)}")
        for name in ("a_unknown_job", "b_index_and_track_id"):
            e = self.errors.get(name)
            if e is None:
                problems.append(f"error case {name} was not reached")
            elif not e["ok"]:
                problems.append(f"error case {name}: model got {short(e['model_text'], 300)!r}")
        if not self.over:
            problems.append(f"the conversation stopped in request {self.request} (phase {self.phase})")
        out = {
            "ok": not problems,
            "problems": problems,
            "flow_calls": self.split_calls,
            "split_job_seconds": job_seconds,
            "final_job": {k: job.get(k) for k in ("job_id", "status", "done", "next_step")} if job else None,
            "errors": self.errors,
            "calls": self.calls,
        }
        out.update(extra)
        return out


async def drive(call) -> Script:  # type: ignore[no-untyped-def]
    """Run the script against `call(tool, args) -> (observed, error, structured)`, the framework's tool path
    (frameworks without an agent loop: the requests follow one another on the same connection)."""
    script = Script()
    while not script.over:
        step = script.first()
        while step is not None:
            tool, args = step
            started = time.monotonic()
            try:
                observed, error, structured = await call(tool, args)
            except Exception as exc:
                observed, error, structured = None, error_text(exc), None
            step = script.next_call(observed, error, structured=structured, seconds=time.monotonic() - started)
    return script


def emit(report: dict[str, Any]) -> None:
    sys.stdout.write("\nCOMPAT-REPORT " + json.dumps(report, default=repr) + "\n")
    sys.stdout.flush()


def error_text(exc: BaseException) -> str:
    """An exception as one line: its type and message, and those of what it wraps (groups included)."""
    parts = []
    seen = set()
    stack = [exc]
    while stack and len(parts) < 6:
        e = stack.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        parts.append(f"{type(e).__name__}: {e}")
        stack.extend(getattr(e, "exceptions", ()) or ())
        if e.__cause__ is not None:
            stack.append(e.__cause__)
    return " <- ".join(parts)


def run_main(main) -> None:  # type: ignore[no-untyped-def]
    """Run the async driver; whatever happens, print one report."""
    import asyncio

    cfg = load_config()
    started = time.monotonic()
    try:
        report = asyncio.run(main(cfg))
    except BaseException as exc:
        report = {"ok": False, "problems": [f"driver crashed: {error_text(exc)}"],
                  "traceback": traceback.format_exc()[-4000:]}
    report.setdefault("framework", cfg.get("framework"))
    report.setdefault("transport", cfg.get("transport"))
    report["driver_seconds"] = round(time.monotonic() - started, 1)
    emit(report)
