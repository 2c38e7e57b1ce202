"""The job store on SQLite and on PostgreSQL: the queue's rules, claims, leases, recovery, migrations."""

from __future__ import annotations

import concurrent.futures
import sqlite3
import time
from pathlib import Path

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.service.store import (
    SCHEMA_VERSION,
    QueueFullError,
    SqliteStore,
    open_store,
    worker_name,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of each kind (PostgreSQL only where the test server's URL is set)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def _submit(store, report_id: str, *, rebuild: bool = False, max_queued: int = 100):  # type: ignore[no-untyped-def]
    return store.submit(report_id, "{}", "{}", rebuild=rebuild, max_queued=max_queued)


def test_a_new_id_is_queued_once_and_identical_submissions_share_it(location: str) -> None:
    """The first submission queues the job; the next ones find it queued, running, then done."""
    store = open_store(location)
    assert _submit(store, "a__000000000001").queued_now
    again = _submit(store, "a__000000000001")
    assert (again.status, again.queued_now) == ("queued", False)
    job = store.claim("w:1:0", 60.0)
    assert job is not None and job.report_id == "a__000000000001" and job.attempts == 1
    assert _submit(store, "a__000000000001").status == "running"
    store.finish(
        "a__000000000001", "w:1:0", model_variant="v", workload_profile_id="p", predicted_total_time_ms=1.5
    )
    done = _submit(store, "a__000000000001")
    assert (done.status, done.queued_now) == ("done", False)
    indexed = store.job("a__000000000001")
    assert indexed is not None
    assert (indexed.model_variant, indexed.workload_profile_id, indexed.predicted_total_time_ms) == (
        "v",
        "p",
        1.5,
    )
    assert store.counts() == {"queued": 0, "running": 0, "done": 1, "failed": 0}
    store.close()


def test_rebuild_requeues_a_finished_job_and_a_failed_one_is_retried(location: str) -> None:
    """``rebuild`` queues a done job again; a failed job is queued again by any submission."""
    store = open_store(location)
    _submit(store, "b__000000000001")
    store.claim("w:1:0", 60.0)
    store.finish(
        "b__000000000001", "w:1:0", model_variant="v", workload_profile_id="p", predicted_total_time_ms=0.0
    )
    assert _submit(store, "b__000000000001", rebuild=True).queued_now
    store.claim("w:1:0", 60.0)
    store.fail("b__000000000001", "w:1:0", "num_frames: bad")
    failed = store.job("b__000000000001")
    assert failed is not None and (failed.status, failed.error) == ("failed", "num_frames: bad")
    assert _submit(store, "b__000000000001").queued_now
    requeued = store.job("b__000000000001")
    assert requeued is not None and (requeued.status, requeued.error) == ("queued", None)
    store.close()


def test_the_queue_is_bounded(location: str) -> None:
    """Past ``max_queued`` waiting jobs a submission is refused; a known job is still answered."""
    store = open_store(location)
    _submit(store, "c__000000000001", max_queued=2)
    _submit(store, "c__000000000002", max_queued=2)
    with pytest.raises(QueueFullError, match="2 jobs are waiting"):
        _submit(store, "c__000000000003", max_queued=2)
    assert _submit(store, "c__000000000001", max_queued=2).status == "queued"
    assert store.job("c__000000000003") is None
    store.close()


def test_claims_are_oldest_first_and_an_expired_lease_is_claimed_again(location: str) -> None:
    """Jobs are claimed in order; a job whose worker stopped renewing is taken by another."""
    store = open_store(location)
    _submit(store, "d__000000000001")
    time.sleep(0.01)
    _submit(store, "d__000000000002")
    first = store.claim("w:1:0", 0.2)
    assert first is not None and first.report_id == "d__000000000001"
    second = store.claim("w:1:1", 60.0)
    assert second is not None and second.report_id == "d__000000000002"
    assert store.claim("w:2:0", 60.0) is None
    time.sleep(0.3)
    taken_over = store.claim("w:2:0", 60.0)
    assert taken_over is not None and taken_over.report_id == "d__000000000001" and taken_over.attempts == 2
    assert not store.renew("d__000000000001", "w:1:0", 60.0)
    assert store.renew("d__000000000001", "w:2:0", 60.0)
    store.close()


def test_recover_requeues_only_the_jobs_of_dead_local_processes(location: str) -> None:
    """A running job of a dead pid on this host is queued again; a live worker's job is kept."""
    store = open_store(location)
    _submit(store, "e__000000000001")
    _submit(store, "e__000000000002")
    dead = worker_name(0).rsplit(":", 2)[0] + ":999999999:0"
    store.claim(dead, 60.0)
    store.claim(worker_name(0), 60.0)
    assert store.recover() == 1
    statuses = {job.report_id: job.status for job in store.jobs(status=None, limit=10, offset=0)}
    assert statuses == {"e__000000000001": "queued", "e__000000000002": "running"}
    store.close()


def test_concurrent_claims_never_take_the_same_job(location: str) -> None:
    """Eight threads claiming forty jobs take each exactly once (SKIP LOCKED on PostgreSQL)."""
    store = open_store(location)
    for index in range(40):
        _submit(store, f"f__{index:012x}")

    def drain(slot: int) -> list[str]:
        taken = []
        while (job := store.claim(f"w:1:{slot}", 60.0)) is not None:
            taken.append(job.report_id)
        return taken

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        claimed = [report_id for batch in pool.map(drain, range(8)) for report_id in batch]
    assert sorted(claimed) == [f"f__{index:012x}" for index in range(40)]
    store.close()


def test_listing_pages_and_filters(location: str) -> None:
    """Jobs are listed newest first, a page at a time, optionally by status."""
    store = open_store(location)
    for index in range(5):
        _submit(store, f"g__{index:012x}")
        time.sleep(0.005)
    store.claim("w:1:0", 60.0)
    page = store.jobs(status=None, limit=2, offset=1)
    assert [job.report_id for job in page] == ["g__000000000003", "g__000000000002"]
    assert [job.report_id for job in store.jobs(status="running", limit=10, offset=0)] == ["g__000000000000"]
    store.close()


def test_migrating_a_version_1_store_keeps_its_jobs(location: str) -> None:
    """A store made at schema version 1 is migrated to the current version with its rows intact."""
    old = open_store(location, up_to=1)
    assert old.schema_version() == 1
    with old._transaction() as cursor:
        old._execute(
            cursor,
            "INSERT INTO jobs (report_id, request_json, options_json, status, attempts, "
            "created_at, updated_at) VALUES (?, '{}', '{}', 'queued', 0, 1.0, 1.0)",
            ("h__000000000001",),
        )
    old.close()
    store = open_store(location)
    assert store.schema_version() == SCHEMA_VERSION == 2
    job = store.job("h__000000000001")
    assert job is not None and job.status == "queued" and job.model_variant is None
    store.close()
    assert open_store(location).schema_version() == SCHEMA_VERSION  # migrating again is a no-op


def test_a_store_newer_than_the_program_is_refused(tmp_path: Path) -> None:
    """A schema version beyond the last migration is an error that says to upgrade."""
    SqliteStore(tmp_path / "jobs.sqlite3").close()
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as connection:
        connection.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(LlmPerfOptError, match="schema version 99, newer than this program's 2"):
        open_store(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")


def test_the_sqlite_store_is_in_wal_mode(tmp_path: Path) -> None:
    """The embedded store's journal is write-ahead, so readers never block the writer."""
    open_store(tmp_path).close()
    with sqlite3.connect(tmp_path / "service.sqlite3") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("mysql://host/db", "unknown store URL 'mysql://host/db'; accepted: sqlite:///PATH"),
        ("postgresql://nobody@127.0.0.1:1/none", "store: postgresql://nobody@127.0.0.1:1/none"),
    ],
)
def test_a_bad_store_location_is_one_error(location: str, message: str) -> None:
    """An unknown scheme or an unreachable server is one error naming the store."""
    pytest.importorskip("psycopg")
    with pytest.raises(LlmPerfOptError, match=message.replace("(", r"\(").replace(".", r"\.")):
        open_store(location)
