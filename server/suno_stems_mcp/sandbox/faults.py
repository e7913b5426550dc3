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
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Literal

Body = Literal["json", "html", "empty", "malformed", "truncated", "gzip-bomb", "gzip-corrupt", "endless"]
Drop = Literal["before", "after"]

GIB = 1 << 30
FAKE_BODIES: frozenset[str] = frozenset({"gzip-bomb", "gzip-corrupt", "endless"})

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
    hits: int = field(default=0, init=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        method, _, path = self.route.partition(" ")
        if not path.startswith("/"):
            raise ValueError(f"route must look like 'GET /v2/jobs/*', got {self.route!r}")
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
    def spoils_answer(self) -> bool:
        return self.status is None and (
            self.drop == "after" or self.body in ("malformed", "truncated") or self.short_by > 0
            or self.drip_headers > 0
        )


class FaultPlan:
    """The rules waiting to fire, in the order they were added; each fires `times` times then retires."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    fault.hits += 1
                    return fault
        return None

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return [fault for fault in self._faults if fault.times > 0]
