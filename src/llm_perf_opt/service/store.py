"""The service's job store and report index, behind one small interface selected by a URL.

- ``sqlite:///path/to/service.sqlite3`` (or a folder, which means ``<folder>/service.sqlite3``):
  the embedded default, in WAL mode, for one server process and its workers on one host.
- ``postgresql://user@host/db``: several server and worker processes on several hosts; a worker
  claims a job with ``SELECT … FOR UPDATE SKIP LOCKED``, so two workers never take the same one.

One table, ``jobs``, keyed by the report id (the content hash of the request and its options),
is both the queue and the report index: a row is ``queued``, ``running``, ``done`` or ``failed``
(with the error). Report bodies are not in the store: they are the report folders the command line
writes, under the service's reports folder.

A claimed job carries a lease: the worker renews it while it computes, and a job whose lease ran
out (its worker died) is claimed again. At start a server also requeues at once the running jobs
of dead processes on its own host. Nothing accepted is lost.

The schema is versioned: :data:`MIGRATIONS` are applied in order, each in its own transaction,
and ``schema_migrations`` records which ones ran; a store newer than this code is refused.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal, Protocol, get_args
from urllib.parse import urlsplit

from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError

__all__ = [
    "JOB_STATUSES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Job",
    "JobStatus",
    "Migration",
    "QueueFullError",
    "Store",
    "Submission",
    "open_store",
    "worker_name",
]

JobStatus = Literal["queued", "running", "done", "failed"]
JOB_STATUSES: Final[tuple[str, ...]] = get_args(JobStatus)

SQLITE_FILE: Final = "service.sqlite3"


@frozen(kw_only=True)
class Migration:
    """One step of the schema: its version, what it does, and its statements (portable SQL)."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        version=1,
        description="jobs: one row per report id, the queue",
        statements=(
            """CREATE TABLE jobs (
                report_id TEXT PRIMARY KEY,
                request_json TEXT NOT NULL,
                options_json TEXT NOT NULL,
                status TEXT NOT NULL,
                error TEXT,
                worker TEXT,
                lease_until DOUBLE PRECISION,
                attempts INTEGER NOT NULL DEFAULT 0,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL
            )""",
            "CREATE INDEX jobs_by_status ON jobs (status, created_at)",
        ),
    ),
    Migration(
        version=2,
        description="jobs: the report index (variant, profile, predicted time, finish time)",
        statements=(
            "ALTER TABLE jobs ADD COLUMN model_variant TEXT",
            "ALTER TABLE jobs ADD COLUMN workload_profile_id TEXT",
            "ALTER TABLE jobs ADD COLUMN predicted_total_time_ms DOUBLE PRECISION",
            "ALTER TABLE jobs ADD COLUMN finished_at DOUBLE PRECISION",
        ),
    ),
)
SCHEMA_VERSION: Final = MIGRATIONS[-1].version

_COLUMNS: Final = (
    "report_id, request_json, options_json, status, error, worker, lease_until, attempts, "
    "created_at, updated_at, model_variant, workload_profile_id, predicted_total_time_ms, finished_at"
)


@frozen(kw_only=True)
class Job:
    """One row of the store: a job and, once done, its entry in the report index.

    Attributes:
        report_id: the report's id (the content hash of the request and options).
        request_json: the request, as the contract's JSON.
        options_json: the run options, as JSON.
        status: ``queued``, ``running``, ``done`` or ``failed``.
        error: why it failed (``None`` unless failed).
        worker: the worker that holds or last held it, ``host:pid:slot``.
        lease_until: when the worker's claim runs out (seconds since the epoch).
        attempts: how many times a worker claimed it.
        created_at, updated_at, finished_at: seconds since the epoch.
        model_variant, workload_profile_id, predicted_total_time_ms: the report index, once done.
    """

    report_id: str
    request_json: str
    options_json: str
    status: JobStatus
    error: str | None
    worker: str | None
    lease_until: float | None
    attempts: int
    created_at: float
    updated_at: float
    model_variant: str | None
    workload_profile_id: str | None
    predicted_total_time_ms: float | None
    finished_at: float | None


@frozen(kw_only=True)
class Submission:
    """What :meth:`Store.submit` did: the job's status after it, and whether it (re)queued it."""

    status: JobStatus
    queued_now: bool


class QueueFullError(LlmPerfOptError):
    """The queue holds its maximum of waiting jobs; the client should retry later."""


def worker_name(slot: int) -> str:
    """``host:pid:slot``: who holds a claim, so that a restarted host can tell its dead workers."""
    return f"{socket.gethostname()}:{os.getpid()}:{slot}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store(Protocol):
    """The store's interface: what the server and the workers need, nothing else."""

    url: str
    kind: str

    def schema_version(self) -> int:
        """The version of the schema in the store."""
        ...

    def submit(
        self, report_id: str, request_json: str, options_json: str, *, rebuild: bool, max_queued: int
    ) -> Submission:
        """Record a job (or find it): a new id or a failed one is queued; a finished one is queued
        again only with ``rebuild``; a queued or running one is left as it is. Raises
        :class:`QueueFullError` when queuing would pass ``max_queued`` waiting jobs."""
        ...

    def claim(self, worker: str, lease_s: float) -> Job | None:
        """Take the oldest queued job (or one whose lease ran out) for ``worker``, or ``None``."""
        ...

    def renew(self, report_id: str, worker: str, lease_s: float) -> bool:
        """Extend ``worker``'s lease on its running job; ``False`` if it no longer holds it."""
        ...

    def finish(
        self,
        report_id: str,
        worker: str,
        *,
        model_variant: str,
        workload_profile_id: str,
        predicted_total_time_ms: float,
    ) -> None:
        """Mark the job done and index its report."""
        ...

    def fail(self, report_id: str, worker: str, error: str) -> None:
        """Mark the job failed with its error."""
        ...

    def recover(self) -> int:
        """Requeue the running jobs of dead processes on this host; return how many."""
        ...

    def job(self, report_id: str) -> Job | None:
        """The job of a report id, or ``None``."""
        ...

    def jobs(self, *, status: str | None, limit: int, offset: int) -> list[Job]:
        """Jobs, newest first, optionally of one status."""
        ...

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        ...

    def close(self) -> None:
        """Release the store's connections."""
        ...


class _SqlStore:
    """The SQL shared by both stores; a subclass gives connections, its placeholder and its lock."""

    url: str
    kind: str
    _mark: str = "?"
    _claim_lock: str = ""

    @contextlib.contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Any]:
        """A transaction; ``write=False`` for one that only reads (SQLite: no write lock)."""
        raise NotImplementedError
        yield

    def _sql(self, statement: str) -> str:
        return statement.replace("?", self._mark)

    def _execute(self, cursor: Any, statement: str, params: Sequence[object] = ()) -> Any:
        cursor.execute(self._sql(statement), tuple(params))
        return cursor

    def _migrate(self, up_to: int = SCHEMA_VERSION) -> None:
        with self._transaction() as cursor:
            self._lock_schema(cursor)
            self._execute(
                cursor,
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)",
            )
            current = self._version(cursor)
            if current > SCHEMA_VERSION:
                raise LlmPerfOptError(
                    f"store: {self.url} has schema version {current}, newer than this program's "
                    f"{SCHEMA_VERSION}; upgrade llm-perf-opt"
                )
        for migration in MIGRATIONS:
            if migration.version > up_to:
                break
            with self._transaction() as cursor:
                self._lock_schema(cursor)
                if self._version(cursor) >= migration.version:
                    continue
                for statement in migration.statements:
                    self._execute(cursor, statement)
                self._execute(
                    cursor,
                    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.description, time.time()),
                )

    def _lock_schema(self, cursor: Any) -> None:
        """Serialize migrations between processes (SQLite: the write transaction already does)."""

    def _lock_id(self, cursor: Any, report_id: str) -> None:
        """Serialize submissions of one id between processes (SQLite: the write transaction does)."""

    def _version(self, cursor: Any) -> int:
        row = self._execute(cursor, "SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def schema_version(self) -> int:
        with self._transaction(write=False) as cursor:
            return self._version(cursor)

    def _row(self, cursor: Any, report_id: str, lock: bool = False) -> Job | None:
        statement = f"SELECT {_COLUMNS} FROM jobs WHERE report_id = ?" + (" FOR UPDATE" if lock else "")
        row = self._execute(cursor, statement, (report_id,)).fetchone()
        return None if row is None else _job(row)

    def submit(
        self, report_id: str, request_json: str, options_json: str, *, rebuild: bool, max_queued: int
    ) -> Submission:
        now = time.time()
        with self._transaction() as cursor:
            self._lock_id(cursor, report_id)
            existing = self._row(cursor, report_id, lock=True)
            if existing is not None and existing.status in ("queued", "running"):
                return Submission(status=existing.status, queued_now=False)
            if existing is not None and existing.status == "done" and not rebuild:
                return Submission(status="done", queued_now=False)
            waiting = self._execute(cursor, "SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()
            if int(waiting[0]) >= max_queued:
                raise QueueFullError(
                    f"queue: {waiting[0]} jobs are waiting, the most this server accepts is {max_queued}"
                )
            if existing is None:
                self._execute(
                    cursor,
                    "INSERT INTO jobs (report_id, request_json, options_json, status, attempts, "
                    "created_at, updated_at) VALUES (?, ?, ?, 'queued', 0, ?, ?)",
                    (report_id, request_json, options_json, now, now),
                )
            else:
                self._execute(
                    cursor,
                    "UPDATE jobs SET status = 'queued', request_json = ?, options_json = ?, error = NULL, "
                    "worker = NULL, lease_until = NULL, created_at = ?, updated_at = ? WHERE report_id = ?",
                    (request_json, options_json, now, now, report_id),
                )
        return Submission(status="queued", queued_now=True)

    def claim(self, worker: str, lease_s: float) -> Job | None:
        now = time.time()
        with self._transaction() as cursor:
            row = self._execute(
                cursor,
                "SELECT report_id FROM jobs WHERE status = 'queued' "
                "OR (status = 'running' AND lease_until < ?) ORDER BY created_at LIMIT 1" + self._claim_lock,
                (now,),
            ).fetchone()
            if row is None:
                return None
            self._execute(
                cursor,
                "UPDATE jobs SET status = 'running', worker = ?, lease_until = ?, attempts = attempts + 1, "
                "updated_at = ? WHERE report_id = ?",
                (worker, now + lease_s, now, row[0]),
            )
            return self._row(cursor, row[0])

    def renew(self, report_id: str, worker: str, lease_s: float) -> bool:
        now = time.time()
        with self._transaction() as cursor:
            updated = self._execute(
                cursor,
                "UPDATE jobs SET lease_until = ?, updated_at = ? "
                "WHERE report_id = ? AND worker = ? AND status = 'running'",
                (now + lease_s, now, report_id, worker),
            )
            return bool(updated.rowcount == 1)

    def finish(
        self,
        report_id: str,
        worker: str,
        *,
        model_variant: str,
        workload_profile_id: str,
        predicted_total_time_ms: float,
    ) -> None:
        now = time.time()
        with self._transaction() as cursor:
            self._execute(
                cursor,
                "UPDATE jobs SET status = 'done', error = NULL, lease_until = NULL, model_variant = ?, "
                "workload_profile_id = ?, predicted_total_time_ms = ?, finished_at = ?, updated_at = ? "
                "WHERE report_id = ? AND worker = ?",
                (model_variant, workload_profile_id, predicted_total_time_ms, now, now, report_id, worker),
            )

    def fail(self, report_id: str, worker: str, error: str) -> None:
        now = time.time()
        with self._transaction() as cursor:
            self._execute(
                cursor,
                "UPDATE jobs SET status = 'failed', error = ?, lease_until = NULL, finished_at = ?, "
                "updated_at = ? WHERE report_id = ? AND worker = ?",
                (error, now, now, report_id, worker),
            )

    def recover(self) -> int:
        host = socket.gethostname()
        with self._transaction() as cursor:
            running = self._execute(
                cursor, "SELECT report_id, worker FROM jobs WHERE status = 'running'"
            ).fetchall()
            dead = []
            for report_id, worker in running:
                worker_host, _, rest = str(worker or "").partition(":")
                pid = rest.partition(":")[0]
                if worker_host == host and pid.isdigit() and not _pid_alive(int(pid)):
                    dead.append(report_id)
            for report_id in dead:
                self._execute(
                    cursor,
                    "UPDATE jobs SET status = 'queued', worker = NULL, lease_until = NULL, updated_at = ? "
                    "WHERE report_id = ? AND status = 'running'",
                    (time.time(), report_id),
                )
            return len(dead)

    def job(self, report_id: str) -> Job | None:
        with self._transaction(write=False) as cursor:
            return self._row(cursor, report_id)

    def jobs(self, *, status: str | None, limit: int, offset: int) -> list[Job]:
        where, params = ("", ()) if status is None else (" WHERE status = ?", (status,))
        with self._transaction(write=False) as cursor:
            rows = self._execute(
                cursor,
                f"SELECT {_COLUMNS} FROM jobs{where} ORDER BY created_at DESC, report_id LIMIT ? OFFSET ?",
                (*params, limit, offset),
            ).fetchall()
        return [_job(row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._transaction(write=False) as cursor:
            rows = self._execute(cursor, "SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        found = {str(status): int(count) for status, count in rows}
        return {status: found.get(status, 0) for status in JOB_STATUSES}


def _job(row: Sequence[Any]) -> Job:
    names = [name.strip() for name in _COLUMNS.split(",")]
    return Job(**dict(zip(names, row, strict=True)))


class SqliteStore(_SqlStore):
    """The embedded store: one SQLite file in WAL mode; a connection per thread.

    A write transaction (``BEGIN IMMEDIATE``) holds the database's one write lock, so a claim or a
    submission is serialized without row locks.
    """

    kind = "sqlite"

    def _row(self, cursor: Any, report_id: str, lock: bool = False) -> Job | None:
        row = cursor.execute(f"SELECT {_COLUMNS} FROM jobs WHERE report_id = ?", (report_id,)).fetchone()
        return None if row is None else _job(row)

    def __init__(self, path: Path, *, up_to: int = SCHEMA_VERSION) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._connection()
        except (OSError, sqlite3.Error) as error:
            raise LlmPerfOptError(f"store: cannot open {self.url}: {error}") from None
        self._migrate(up_to)

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            connection.execute("PRAGMA busy_timeout = 30000")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            self._local.connection = connection
        return connection

    @contextlib.contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Any]:
        connection = self._connection()
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        else:
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def close(self) -> None:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


class PostgresStore(_SqlStore):
    """The shared store: PostgreSQL through psycopg, a connection per thread; claims skip locked rows."""

    kind = "postgresql"
    _mark = "%s"
    _claim_lock = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, *, up_to: int = SCHEMA_VERSION) -> None:
        try:
            import psycopg
        except ImportError:
            raise LlmPerfOptError(
                "store: a postgresql:// store needs psycopg; install the service extra"
            ) from None
        self._psycopg = psycopg
        self.url = url
        self._local = threading.local()
        self._connections: list[Any] = []
        self._connections_lock = threading.Lock()
        try:
            self._migrate(up_to)
        except psycopg.Error as error:
            raise LlmPerfOptError(f"store: {_redacted(url)}: {error}".strip()) from None

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = self._psycopg.connect(self.url, autocommit=False)
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    @contextlib.contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Any]:
        connection = self._connection()
        with connection.transaction(), connection.cursor() as cursor:
            yield cursor

    def _lock_schema(self, cursor: Any) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(7215150015)")

    def _lock_id(self, cursor: Any, report_id: str) -> None:
        """Two servers submitting the same new id: the second waits here for the first's row."""
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (report_id,))

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@")


def open_store(location: str | Path, *, up_to: int = SCHEMA_VERSION) -> SqliteStore | PostgresStore:
    """The store at a URL (``sqlite:///…``, ``postgresql://…``) or a folder (its SQLite file),
    migrated to the current schema (``up_to``: an older version, for migration tests)."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresStore(text, up_to=up_to)
    if text.startswith("sqlite:///"):
        return SqliteStore(Path(text.removeprefix("sqlite:///")).absolute(), up_to=up_to)
    if "://" in text:
        raise LlmPerfOptError(
            f"store: unknown store URL {text!r}; accepted: sqlite:///PATH, postgresql://…, or a folder"
        )
    return SqliteStore(Path(text).absolute() / SQLITE_FILE, up_to=up_to)
