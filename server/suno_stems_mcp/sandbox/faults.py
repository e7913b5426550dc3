"""Fault injection: for chosen routes and the next N requests, answer badly on purpose.

A rule matches `"METHOD /path"` where the path may use `*` for one segment (`GET /v2/jobs/*`) or end in
`**` for any rest (`GET /cdn/**`): `GET /cdn/audio/*` aims at every audio file, `GET /cdn/audio/<job>-0.wav`
at one. What it does, in order: wait `delay` seconds; then either

- drop the connection before the request is handled (`drop="before"`);
- answer a redirect (`redirect`: a Location such as `"http://10.0.0.1{path}"`, where `{path}` is the request's
  path and query, or `"loop"` for the request's own URL; `status` picks the code, 302 by default);
- answer `status` without handling it (with a `body` of "json", "html" or "empty" and an optional
  `Retry-After`);
- answer a body that is not the file: `body="gzip-bomb"` (`Content-Encoding: gzip`, a small body inflating to
  `inflates_to` bytes), `body="gzip-corrupt"` (gzip whose deflate stream is garbage), `body="endless"` (no
  `Content-Length`, bytes until the client goes away; sockets only);
- or handle it for real and then spoil the answer: `drop="after"` (the work is done, the answer never arrives),
  `body="malformed"` (not JSON), `body="truncated"` (the connection closes halfway through the body), `short_by`
  bytes fewer than the `Content-Length` promised, `drip` (the body in pieces of `drip_size` bytes, one every
  `drip` seconds), `drip_headers` (the status line and headers one byte every `drip_headers` seconds, then the
  body at once; sockets only), `ignore_range` (answer 200 with the whole file whatever `Range` asked).

Faults of apiframe's own answers:

- `body="huge"`: a JSON answer of `huge_bytes` bytes (300 MB by default), streamed while the client listens;
  with `declare_length` (the default) its `Content-Length` says so up front, without it the body is chunked
  (sockets only);
- `body="deep"`: JSON nested `depth` levels deep (100 000 by default), which no recursive reader survives;
- rewrite the real answer's JSON (for a job, or each job of a page): `patch` sets top-level fields
  (`{"expired": None, "progress": "50", "status": "ARCHIVED"}`), `track_patch` sets fields of every track in
  `result.tracks` (`{"audioUrl": 5, "title": {"a": 1}}`), `duplicate_tracks` repeats every track (same ids),
  `lowercase_status` writes the status in lower case (`"completed"`);
- `echo_key`: apiframe echoes the caller's `X-API-Key` — `"whole"`, `"partial"` (missing its last character)
  or `"upper"` (upper-cased). With `status`, in the error body's `error` and `message`; otherwise in the real
  answer's job `error` (each job of a page) and in every track's `title` and `tags`;
- `new_jobs_only`: the rule fires only for `GET /v2/jobs/<id>` of a job created after the rule was added (a
  read-after-write lag: `status=404, times=2, new_jobs_only=True`), never for an older job such as a parent;
- `cached_replay`: on a submission whose `Idempotency-Key` was already used (with the same body), answer what
  apiframe answered the first time, `202 {"jobId", "status": "QUEUED"}`, whatever the job's status is now; a
  new key is handled for real.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Body = Literal["json", "html", "empty", "malformed", "truncated", "gzip-bomb", "gzip-corrupt", "endless", "huge",
               "deep"]
Drop = Literal["before", "after"]
Echo = Literal["whole", "partial", "upper"]

GIB = 1 << 30
MIB = 1 << 20
FAKE_BODIES: frozenset[str] = frozenset({"gzip-bomb", "gzip-corrupt", "endless", "huge", "deep"})

HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>{status} Bad Gateway</title></head>"
    "<body><h1>{status}</h1><p>The upstream server is not answering. Please try again.</p></body></html>"
)


@dataclass
class Fault:
    route: str
    times: int = 1
    status: int | None = None
    body: Body | None = None
    retry_after: float | str | None = None
    delay: float = 0.0
    drop: Drop | None = None
    short_by: int = 0
    redirect: str | None = None
    drip: float = 0.0
    drip_size: int = 1
    drip_headers: float = 0.0
    ignore_range: bool = False
    inflates_to: int = 2 * GIB
    huge_bytes: int = 300 * MIB
    declare_length: bool = True
    depth: int = 100_000
    patch: dict[str, Any] | None = None
    track_patch: dict[str, Any] | None = None
    duplicate_tracks: bool = False
    lowercase_status: bool = False
    echo_key: Echo | None = None
    new_jobs_only: bool = False
    cached_replay: bool = False
    added_at: float = field(default=0.0, init=False)
    """When the rule was added, on the sandbox's clock (set by `FaultPlan.add`; `new_jobs_only` reads it)."""
    hits: int = field(default=0, init=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        method, _, path = self.route.partition(" ")
        if not path.startswith("/"):
            raise ValueError(f"route must look like 'GET /v2/jobs/*', got {self.route!r}")
        if self.echo_key is not None and self.echo_key not in ("whole", "partial", "upper"):
            raise ValueError(f"echo_key must be 'whole', 'partial' or 'upper', got {self.echo_key!r}")
        if self.drip_size < 1:
            raise ValueError(f"drip_size must be at least 1 byte, got {self.drip_size}")
        parts = []
        for segment in path.split("/"):
            if segment == "**":
                parts.append(".*")
            elif segment == "*":
                parts.append("[^/]+")
            else:
                parts.append(re.escape(segment))
        method_pattern = "[A-Z]+" if method == "*" else re.escape(method.upper())
        self._pattern = re.compile(f"{method_pattern} {'/'.join(parts)}")

    def matches(self, method: str, path: str) -> bool:
        return self._pattern.fullmatch(f"{method} {path}") is not None

    @property
    def fakes_body(self) -> bool:
        return self.status is None and self.body in FAKE_BODIES

    @property
    def rewrites_answer(self) -> bool:
        """The request is handled for real and its JSON answer rewritten."""
        return self.status is None and (
            bool(self.patch) or bool(self.track_patch) or self.duplicate_tracks or self.lowercase_status
            or self.echo_key is not None
        )

    @property
    def spoils_answer(self) -> bool:
        return self.status is None and (
            self.drop == "after" or self.body in ("malformed", "truncated") or self.short_by > 0
            or self.drip_headers > 0
        )


class FaultPlan:
    """The rules waiting to fire, in the order they were added; each fires `times` times then retires."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.clock = clock
        """The sandbox's clock (its fault layer sets it), so `new_jobs_only` compares like with like."""

    def add(self, fault: Fault) -> Fault:
        fault.added_at = self.clock()
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str, accepts: Callable[[Fault], bool] = lambda fault: True) -> Fault | None:
        """The first live rule for this request that `accepts` agrees to (a rule it refuses is not spent)."""
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(method, path) and accepts(fault):
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return [fault for fault in self._faults if fault.times > 0]
