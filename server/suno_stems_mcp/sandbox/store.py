"""The sandbox's state: accounts, jobs and their lifecycle, idempotency keys, credits, counters.

A job's status is a function of time: it is computed whenever the job is read, from when it was created
and the plan it was given, so no background task is needed to move jobs along. Money is settled (failed
jobs refunded) by `settle`, which every request runs first.

Every key `afk_sandbox_<name>` is an account of its own, opened (and handed to the `seeder`) on first use.
`Store` keeps everything in memory; `persistence.SharedStore` is the same store kept in a file that sandbox
processes share. Whatever changes state runs under `lock`, which is all the shared store needs to know.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from .config import CREDITS_PER_JOB, DEMO_KEY, INACTIVE_KEY, SandboxConfig

Status = Literal["QUEUED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"]
Outcome = Literal["COMPLETED", "FAILED", "CANCELLED", "NEVER"]
Kind = Literal["song", "stems"]
FINAL: frozenset[str] = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
PROGRESS_EVENT_STEPS = (25, 50, 75)
SANDBOX_KEY = re.compile(r"afk_sandbox_([A-Za-z0-9_-]{1,64})")
"""A key that opens its own account on first use; the group is the account's name."""


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Account:
    key: str
    active: bool
    credits: int
    key_id: str
    key_name: str
    user_id: str
    email: str
    team_id: str
    team_name: str
    plan: str = "pro"


@dataclass(frozen=True)
class TrackPlan:
    """One track a job will have once COMPLETED; `seed` and `part` say what its audio is."""

    id: str
    title: str
    tags: str | None
    seed: int
    part: Literal["mix", "vocals", "instrumental"]
    duration: float
    has_image: bool


@dataclass(frozen=True)
class JobPlan:
    """How a job will go. Tests queue plans with `Store.plan_next` to get failures or endless jobs."""

    outcome: Outcome = "COMPLETED"
    queued_for: float | None = None
    runs_for: float | None = None
    error: str = "Stem separation failed: the source audio could not be processed."


@dataclass
class Job:
    id: str
    owner: str
    kind: Kind
    model: str
    input: dict[str, Any] | None
    created_at: float
    queued_for: float
    runs_for: float
    outcome: Outcome
    error: str
    cost: int
    tracks: list[TrackPlan]
    webhook_url: str | None = None
    webhook_events: tuple[str, ...] = ()
    base_url: str = ""
    cancelled_at: float | None = None
    expired_by_hand: bool = False
    refunded: bool = False
    settled: bool = False
    webhook_sent: set[str] = field(default_factory=set)
    webhook_failures: int = 0

    @property
    def ends_at(self) -> float | None:
        if self.outcome == "NEVER":
            return None
        return self.created_at + self.queued_for + self.runs_for

    def status(self, now: float) -> Status:
        if self.cancelled_at is not None and now >= self.cancelled_at:
            return "CANCELLED"
        elapsed = now - self.created_at
        if elapsed < self.queued_for:
            return "QUEUED"
        ends = self.ends_at
        if ends is None or now < ends:
            return "PROCESSING"
        return "COMPLETED" if self.outcome == "COMPLETED" else self.outcome  # type: ignore[return-value]

    def progress(self, now: float) -> int:
        status = self.status(now)
        if status == "COMPLETED":
            return 100
        if status == "QUEUED":
            return 0
        at = now if status == "PROCESSING" else (self.final_at(now) or now)
        ran = at - self.created_at - self.queued_for
        fraction = ran / self.runs_for if self.runs_for > 0 else 1.0
        return max(1, min(99, int(100 * fraction)))

    def final_at(self, now: float) -> float | None:
        """When the job became final, if it is."""
        if self.cancelled_at is not None and now >= self.cancelled_at:
            ends = self.ends_at
            return self.cancelled_at if ends is None else min(ends, self.cancelled_at)
        ends = self.ends_at
        return ends if ends is not None and now >= ends else None

    def expired(self, now: float, retention: float) -> bool:
        if self.status(now) != "COMPLETED":
            return False
        done = self.final_at(now)
        return self.expired_by_hand or (done is not None and now >= done + retention)

    def progress_at(self, step: int) -> float:
        return self.created_at + self.queued_for + self.runs_for * step / 100


@dataclass
class RequestRecord:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Counters:
    jobs_created: int = 0
    stems_jobs_created: int = 0
    song_jobs_created: int = 0
    credits_charged: int = 0
    credits_refunded: int = 0
    idempotent_replays: int = 0
    webhooks_delivered: int = 0
    webhooks_failed: int = 0


Seeder = Callable[["Store", Account], None]


class Store:
    """All sandbox state, behind one lock (the sandbox may run on another thread than the test reading it).

    The requests, counters, rate-limit hits and queued plans are this process's own, in every kind of store.
    """

    def __init__(self, config: SandboxConfig, *, seeder: Seeder | None = None) -> None:
        self.config = config
        self.seeder = seeder
        self.lock: AbstractContextManager[object] = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.jobs: dict[str, Job] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, str, float]] = {}
        self.requests: deque[RequestRecord] = deque(maxlen=20_000)
        self.counters = Counters()
        self._plans: list[tuple[frozenset[str], int, JobPlan]] = []
        self._hits: dict[str, deque[float]] = {}

    def now(self) -> float:
        return self.config.clock()

    def close(self) -> None:
        """Nothing to let go of in memory."""

    # accounts ------------------------------------------------------------------------------------------

    def open_demo_accounts(self) -> None:
        self.account(DEMO_KEY)
        self.account(INACTIVE_KEY)

    def _open_account(self, key: str, name: str) -> Account:
        if key == INACTIVE_KEY:
            return self.add_account(key, credits=0, name="Inactive demo", active=False)
        account = self.add_account(key, credits=self.config.credits, name="Demo" if key == DEMO_KEY else name)
        if self.seeder is not None:
            self.seeder(self, account)
        return account

    def add_account(self, key: str, *, credits: int, name: str = "Test", active: bool = True) -> Account:
        """A key of its own: an account with its own balance and its own jobs."""
        ident = uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-account:{key}")
        account = Account(
            key=key,
            active=active,
            credits=credits,
            key_id=str(uuid.uuid5(ident, "key")),
            key_name=f"{name} key",
            user_id=str(uuid.uuid5(ident, "user")),
            email=f"{name.lower().replace(' ', '-')}@sandbox.invalid",
            team_id=str(uuid.uuid5(ident, "team")),
            team_name=f"{name} team",
        )
        with self.lock:
            self.accounts[key] = account
        return account

    def account(self, key: str | None) -> Account | None:
        """The account of `key`; a sandbox key nobody has used yet opens its own account, seeded."""
        if not key:
            return None
        found = self.accounts.get(key)
        opening = SANDBOX_KEY.fullmatch(key) if found is None else None
        if opening is None:
            return found
        with self.lock:
            return self.accounts.get(key) or self._open_account(key, opening.group(1))

    def rate_limited(self, key: str) -> float | None:
        """Seconds to wait when `key` is over the configured rate, else None (and the hit is counted)."""
        limit = self.config.rate_limit
        if limit is None:
            return None
        now = self.now()
        with self.lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.config.rate_window:
                hits.popleft()
            if len(hits) >= limit:
                return (hits[0] if hits else now) + self.config.rate_window - now
            hits.append(now)
        return None

    # jobs ----------------------------------------------------------------------------------------------

    def plan_next(self, plan: JobPlan, *, kinds: tuple[Kind, ...] = ("stems", "song"), count: int = 1) -> None:
        """The next `count` jobs of these kinds follow `plan` instead of the default timing."""
        with self.lock:
            self._plans.append((frozenset(kinds), count, plan))

    def _take_plan(self, kind: Kind) -> JobPlan:
        for i, (kinds, remaining, plan) in enumerate(self._plans):
            if kind in kinds:
                if remaining <= 1:
                    del self._plans[i]
                else:
                    self._plans[i] = (kinds, remaining - 1, plan)
                return plan
        return JobPlan()

    def timing(self, kind: Kind) -> tuple[float, float]:
        """(queued_for, runs_for) of a new job of this kind that no plan times."""
        runs = self.config.stems_seconds if kind == "stems" else self.config.song_seconds
        return self.config.queue_seconds, runs

    def create_job(
        self,
        account: Account,
        *,
        kind: Kind,
        input: dict[str, Any] | None,
        tracks: list[TrackPlan],
        webhook_url: str | None = None,
        webhook_events: tuple[str, ...] = (),
        base_url: str = "",
        job_id: str | None = None,
        created_at: float | None = None,
        plan: JobPlan | None = None,
        charge: bool = True,
    ) -> Job:
        with self.lock:
            plan = plan or self._take_plan(kind)
            queued_default, runs_default = self.timing(kind)
            cost = CREDITS_PER_JOB
            job = Job(
                id=job_id or str(uuid.uuid4()),
                owner=account.key,
                kind=kind,
                model="suno",
                input=input,
                created_at=self.now() if created_at is None else created_at,
                queued_for=queued_default if plan.queued_for is None else plan.queued_for,
                runs_for=runs_default if plan.runs_for is None else plan.runs_for,
                outcome=plan.outcome,
                error=plan.error,
                cost=cost,
                tracks=tracks,
                webhook_url=webhook_url,
                webhook_events=webhook_events,
                base_url=base_url,
            )
            self.jobs[job.id] = job
            if not charge:
                # Paid (and, for a failed plan, refunded) before the sandbox started: history, not a charge.
                job.refunded = plan.outcome in ("FAILED", "CANCELLED")
            else:
                account.credits -= cost
                self.counters.credits_charged += cost
                self.counters.jobs_created += 1
                if kind == "stems":
                    self.counters.stems_jobs_created += 1
                else:
                    self.counters.song_jobs_created += 1
            return job

    def job_for(self, account: Account, job_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        return job if job is not None and job.owner == account.key else None

    def settle(self) -> None:
        """Refund jobs that have failed or been cancelled since the last look."""
        now = self.now()
        with self.lock:
            for job in self.jobs.values():
                if job.settled or job.final_at(now) is None:
                    continue
                job.settled = True
                if job.status(now) in ("FAILED", "CANCELLED") and not job.refunded and job.cost:
                    job.refunded = True
                    account = self.accounts.get(job.owner)
                    if account is not None:
                        account.credits += job.cost
                    self.counters.credits_refunded += job.cost

    def credit_cost(self, job: Job) -> int:
        return 0 if job.refunded else job.cost

    def cancel(self, job_id: str) -> None:
        with self.lock:
            self.jobs[job_id].cancelled_at = self.now()
        self.settle()

    def expire(self, job_id: str) -> None:
        with self.lock:
            self.jobs[job_id].expired_by_hand = True

    # idempotency ---------------------------------------------------------------------------------------

    @staticmethod
    def fingerprint(method: str, path: str, body: Any) -> str:
        canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def idempotent_job(self, account: Account, key: str, fingerprint: str) -> tuple[Job | None, bool]:
        """(the job this key created, whether the body differs) — (None, False) for a new key."""
        now = self.now()
        with self.lock:
            entry = self.idempotency.get((account.key, key))
            if entry is None or now - entry[2] > self.config.idempotency_seconds:
                return None, False
            stored_fingerprint, job_id, _ = entry
            if stored_fingerprint != fingerprint:
                return None, True
            self.counters.idempotent_replays += 1
            return self.jobs[job_id], False

    def remember_key(self, account: Account, key: str, fingerprint: str, job: Job) -> None:
        with self.lock:
            self.idempotency[(account.key, key)] = (fingerprint, job.id, self.now())

    # listing -------------------------------------------------------------------------------------------

    def list_jobs(
        self,
        account: Account,
        *,
        status: str | None,
        model: str | None,
        search: str | None,
        after: tuple[float, str] | None,
        limit: int,
    ) -> tuple[list[Job], bool]:
        """Newest first by (createdAt, id), starting after the cursor position; (page, has_more)."""
        now = self.now()
        with self.lock:
            jobs = [
                job
                for job in self.jobs.values()
                if job.owner == account.key
                and (status is None or job.status(now) == status)
                and (model is None or job.model == model)
                and (search is None or job.id == search)
            ]
        jobs.sort(key=lambda job: (job.created_at, job.id), reverse=True)
        if after is not None:
            jobs = [job for job in jobs if (job.created_at, job.id) < after]
        return jobs[:limit], len(jobs) > limit
