"""The sandbox's state in one SQLite file that all of a user's sandbox processes share.

SQLite (standard library) rather than a lock file and JSON: transactions across processes that wait for each
other (`BEGIN IMMEDIATE` with a busy timeout) instead of failing, crash safety (WAL) without hand-made atomic
renames, incremental reads, and a free "has anyone else written?" check (`PRAGMA data_version`), which makes
a read of an unchanged state cost microseconds.

`SharedStore` is `Store` whose dicts are a working copy of the file. Every outermost `with store.lock` is one
`BEGIN IMMEDIATE` transaction that first loads the rows other processes changed since this one last looked
(each row carries the revision that wrote it) and ends by writing what this process changed. The fields of a
job that change after it is made (cancelled, expired, refunded, settled, webhooks sent) only ever grow, so a
row and the copy are merged field by field: a webhook noted here between transactions survives a refund
written meanwhile by another process. A job's other fields are fixed when it is made, its timing included,
so processes with different settings agree on every job's life. Requests, counters and queued plans stay
per process.

A reset (`clear`) deletes every row and changes the state's generation; processes with a copy drop theirs at
their next transaction, so a reset is safe while they run.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .config import SandboxConfig
from .store import Account, Job, Kind, Seeder, Store, TrackPlan

FILE_NAME = "state.sqlite3"
SCHEMA_VERSION = 1
BUSY_SECONDS = 30.0

_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE accounts (key TEXT PRIMARY KEY, rev INTEGER NOT NULL, data TEXT NOT NULL)",
    "CREATE TABLE jobs (id TEXT PRIMARY KEY, rev INTEGER NOT NULL, data TEXT NOT NULL)",
    "CREATE TABLE idempotency (owner TEXT NOT NULL, key TEXT NOT NULL, rev INTEGER NOT NULL,"
    " fingerprint TEXT NOT NULL, job_id TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (owner, key))",
    "CREATE INDEX accounts_rev ON accounts (rev)",
    "CREATE INDEX jobs_rev ON jobs (rev)",
    "CREATE INDEX idempotency_rev ON idempotency (rev)",
)
TIMING_FIELDS = ("queue_seconds", "stems_seconds", "song_seconds")


class StateFileError(Exception):
    """The state file cannot be used as it is (made by a newer version)."""


# the file -------------------------------------------------------------------------------------------------


def connect(state_dir: Path) -> sqlite3.Connection:
    """The state file in `state_dir` (made, with the folder, when missing), ready for `transaction`."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    conn = sqlite3.connect(state_dir / FILE_NAME, timeout=BUSY_SECONDS, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        with transaction(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StateFileError(f"{state_dir / FILE_NAME} was made by a newer suno-stems-mcp "
                                     f"(schema {version}, this one reads {SCHEMA_VERSION})")
            if version == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                set_meta(conn, state_id=str(uuid.uuid4()), generation=str(uuid.uuid4()), rev=0,
                         changed_at=time.time())
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction: other processes wait for it (up to BUSY_SECONDS) rather than interleave."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT name, value FROM meta").fetchall())


def set_meta(conn: sqlite3.Connection, **values: object) -> None:
    conn.executemany("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                     [(name, value if isinstance(value, str) else json.dumps(value)) for name, value in values.items()])


def clear(conn: sqlite3.Connection) -> None:
    """Within a transaction: forget every account, job and key, under a new generation."""
    for table in ("accounts", "jobs", "idempotency"):
        conn.execute(f"DELETE FROM {table}")
    set_meta(conn, generation=str(uuid.uuid4()), changed_at=time.time())


def record_timing(conn: sqlite3.Connection, config: SandboxConfig) -> None:
    """Within a transaction: new jobs, whichever process makes them, take this config's timing."""
    set_meta(conn, timing={name: getattr(config, name) for name in TIMING_FIELDS})


# rows -----------------------------------------------------------------------------------------------------


def job_to_json(job: Job) -> str:
    data = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
    data.update(tracks=[dataclasses.asdict(track) for track in job.tracks], webhook_events=list(job.webhook_events),
                webhook_sent=sorted(job.webhook_sent))
    return json.dumps(data, separators=(",", ":"))


def job_from_json(raw: str) -> Job:
    data = json.loads(raw)
    data.update(tracks=[TrackPlan(**track) for track in data["tracks"]],
                webhook_events=tuple(data["webhook_events"]), webhook_sent=set(data["webhook_sent"]))
    return Job(**data)


def _job_state(job: Job) -> tuple[Any, ...]:
    """What may change in a job after it is made."""
    return (job.cancelled_at, job.expired_by_hand, job.refunded, job.settled, frozenset(job.webhook_sent),
            job.webhook_failures)


def _merge(job: Job, row: Job) -> None:
    """Each changing field of `job` becomes the later of its value here and in the file."""
    if row.cancelled_at is not None:
        job.cancelled_at = row.cancelled_at if job.cancelled_at is None else min(job.cancelled_at, row.cancelled_at)
    job.expired_by_hand |= row.expired_by_hand
    job.refunded |= row.refunded
    job.settled |= row.settled
    job.webhook_sent |= row.webhook_sent
    job.webhook_failures = max(job.webhook_failures, row.webhook_failures)


# the store ------------------------------------------------------------------------------------------------


class _Transaction:
    """Re-entrant per thread, like the in-memory store's lock; the outermost level is one SQLite transaction."""

    def __init__(self, mutex: threading.RLock, begin: Callable[[], None], end: Callable[[], None]) -> None:
        self.mutex = mutex
        self.depth = 0
        self._begin = begin
        self._end = end

    def __enter__(self) -> _Transaction:
        self.mutex.acquire()
        if self.depth == 0:
            try:
                self._begin()
            except BaseException:
                self.mutex.release()
                raise
        self.depth += 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.depth -= 1
        try:
            if self.depth == 0:
                self._end()
        finally:
            self.mutex.release()


class SharedStore(Store):
    """`Store` kept in the state file of `state_dir`, shared with every other process that opens it."""

    def __init__(self, state_dir: Path, config: SandboxConfig, *, seeder: Seeder | None = None) -> None:
        self.state_dir = state_dir
        self._conn = connect(state_dir)
        self._generation: str | None = None
        self._data_version: int | None = None
        self._seen = 0
        self._timing: dict[str, float] = {}
        self._saved_accounts: dict[str, tuple[Any, ...]] = {}
        self._saved_jobs: dict[str, tuple[Any, ...]] = {}
        self._saved_keys: dict[tuple[str, str], tuple[str, str, float]] = {}
        super().__init__(config, seeder=seeder)
        self.lock = self._transaction = _Transaction(threading.RLock(), self._begin, self._end)

    # the dicts a transaction keeps current -------------------------------------------------------------------

    @property
    def accounts(self) -> dict[str, Account]:
        self._catch_up()
        return self._accounts

    @accounts.setter
    def accounts(self, value: dict[str, Account]) -> None:
        self._accounts = value

    @property
    def jobs(self) -> dict[str, Job]:
        self._catch_up()
        return self._jobs

    @jobs.setter
    def jobs(self, value: dict[str, Job]) -> None:
        self._jobs = value

    @property
    def idempotency(self) -> dict[tuple[str, str], tuple[str, str, float]]:
        self._catch_up()
        return self._idempotency

    @idempotency.setter
    def idempotency(self, value: dict[tuple[str, str], tuple[str, str, float]]) -> None:
        self._idempotency = value

    def _catch_up(self) -> None:
        """Outside a transaction, load what other processes committed: one cheap check when they committed nothing."""
        with self._transaction.mutex:
            if self._transaction.depth == 0 and self._data_version != self._data_version_now():
                with self._transaction:
                    pass

    def _data_version_now(self) -> int:
        version: int = self._conn.execute("PRAGMA data_version").fetchone()[0]
        return version

    def timing(self, kind: Kind) -> tuple[float, float]:
        """The timing the latest process to start recorded (`share_timing`), else this store's config's."""
        queued, runs = super().timing(kind)
        runs_name = "stems_seconds" if kind == "stems" else "song_seconds"
        return self._timing.get("queue_seconds", queued), self._timing.get(runs_name, runs)

    def share_timing(self) -> None:
        """New jobs, whichever process makes them, take this store's config's timing."""
        with self.lock:
            record_timing(self._conn, self.config)
            self._timing = {name: getattr(self.config, name) for name in TIMING_FIELDS}

    def close(self) -> None:
        with self.lock:  # waits for a transaction of another thread, and writes what is left
            pass
        self._conn.close()

    # the transaction -------------------------------------------------------------------------------------

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._pull()
        except BaseException:
            self._abandon()
            raise

    def _end(self) -> None:
        try:
            self._push()
            self._conn.execute("COMMIT")
        except BaseException:
            self._abandon()
            raise

    def _abandon(self) -> None:
        """Roll back; the copy may now be ahead of the file, so the next transaction loads it all again."""
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._generation = self._data_version = None

    def _pull(self) -> None:
        version = self._data_version_now()
        if version == self._data_version:
            return  # nobody else has committed since this process last looked
        self._data_version = version
        values = meta(self._conn)
        if values["generation"] != self._generation:
            self._generation = values["generation"]
            self._seen = 0
            for table in (self._accounts, self._jobs, self._idempotency, self._saved_accounts, self._saved_jobs,
                          self._saved_keys):
                table.clear()
        self._timing = json.loads(values.get("timing", "{}"))
        for key, data in self._conn.execute("SELECT key, data FROM accounts WHERE rev > ?", (self._seen,)):
            fields = json.loads(data)
            account = self._accounts.get(key)
            if account is None:
                self._accounts[key] = account = Account(**fields)
            else:
                vars(account).update(fields)  # in place: requests under way hold this object
            self._saved_accounts[key] = dataclasses.astuple(account)
        for job_id, data in self._conn.execute("SELECT id, data FROM jobs WHERE rev > ?", (self._seen,)):
            row = job_from_json(data)
            job = self._jobs.get(job_id)
            if job is None:
                self._jobs[job_id] = row
            else:
                _merge(job, row)
            self._saved_jobs[job_id] = _job_state(row)
        for owner, key, fingerprint, job_id, at in self._conn.execute(
                "SELECT owner, key, fingerprint, job_id, at FROM idempotency WHERE rev > ?", (self._seen,)):
            self._idempotency[(owner, key)] = self._saved_keys[(owner, key)] = (fingerprint, job_id, at)
        self._seen = int(values["rev"])

    def _push(self) -> None:
        accounts = [(key, account, dataclasses.astuple(account)) for key, account in self._accounts.items()]
        accounts = [item for item in accounts if self._saved_accounts.get(item[0]) != item[2]]
        jobs = [(job_id, job, _job_state(job)) for job_id, job in self._jobs.items()]
        jobs = [item for item in jobs if self._saved_jobs.get(item[0]) != item[2]]
        keys = [(key, value) for key, value in self._idempotency.items() if self._saved_keys.get(key) != value]
        if not (accounts or jobs or keys):
            return
        rev = self._seen + 1
        self._conn.executemany("INSERT OR REPLACE INTO accounts (key, rev, data) VALUES (?, ?, ?)",
                               [(key, rev, json.dumps(vars(account))) for key, account, _ in accounts])
        self._conn.executemany("INSERT OR REPLACE INTO jobs (id, rev, data) VALUES (?, ?, ?)",
                               [(job_id, rev, job_to_json(job)) for job_id, job, _ in jobs])
        self._conn.executemany(
            "INSERT OR REPLACE INTO idempotency (owner, key, rev, fingerprint, job_id, at) VALUES (?, ?, ?, ?, ?, ?)",
            [(owner, key, rev, *value) for (owner, key), value in keys])
        set_meta(self._conn, rev=rev, changed_at=time.time())  # idleness is wall-clock time, whatever the clock
        self._seen = rev
        self._saved_accounts.update((key, state) for key, _, state in accounts)
        self._saved_jobs.update((job_id, state) for job_id, _, state in jobs)
        self._saved_keys.update(keys)
