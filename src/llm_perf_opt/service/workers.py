"""The worker pool: claim jobs from the store, compute each in a separate process, record the result.

The computation is CPU-bound (SymPy and numpy), so it runs in a :class:`ProcessPoolExecutor`: the
server's event loop only waits on it. Each slot of the pool is one asyncio task that claims a job,
renews its lease while the process computes, and marks it done or failed. Slots wake when the
server queues a job (:meth:`WorkerPool.wake`) or, for jobs queued by other servers of a shared
store, every ``poll_s`` seconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.service.compute import ComputedReport, compute_report
from llm_perf_opt.service.store import Job, Store, worker_name

__all__ = ["DEFAULT_LEASE_S", "MAX_ATTEMPTS", "WorkerPool"]

DEFAULT_LEASE_S: Final = 60.0
"""How long a claim lasts without renewal; a worker renews it every third of that."""

MAX_ATTEMPTS: Final = 3
"""Claims of one job whose worker process died before it is marked failed."""

T = TypeVar("T")

_log = logging.getLogger("llm_perf_opt.service")


class WorkerPool:
    """``slots`` concurrent jobs, each computed in a process of one shared pool."""

    def __init__(
        self,
        store: Store,
        reports_dir: Path,
        *,
        slots: int,
        lease_s: float = DEFAULT_LEASE_S,
        poll_s: float = 1.0,
        on_done: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.reports_dir = reports_dir
        self.slots = slots
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.on_done = on_done
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """A job was queued: let an idle slot claim it now."""
        self._wake.set()

    async def start(self) -> None:
        """Start the processes and the slots (after requeuing the jobs of dead local workers)."""
        recovered = await asyncio.to_thread(self.store.recover)
        if recovered:
            _log.info("requeued %d jobs of workers that are gone", recovered)
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.slots, mp_context=multiprocessing.get_context("spawn")
        )
        self._tasks = [asyncio.create_task(self._slot(slot)) for slot in range(self.slots)]

    async def stop(self) -> None:
        """Stop claiming, let the jobs in flight finish, and end the processes."""
        self._stop.set()
        self._wake.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run one interactive computation (a curve, a formula) in the pool's processes."""
        assert self._pool is not None
        return await asyncio.get_running_loop().run_in_executor(self._pool, function, *args)

    async def wait(self) -> None:
        """Run until :meth:`stop` (the ``--workers-only`` mode)."""
        await self._stop.wait()

    async def _slot(self, slot: int) -> None:
        worker = worker_name(slot)
        while not self._stop.is_set():
            try:
                job = await asyncio.to_thread(self.store.claim, worker, self.lease_s)
            except Exception:
                _log.exception("claiming a job failed")
                job = None
            if job is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)
                continue
            try:
                await self._run(job, worker)
            except Exception:
                _log.exception("recording the result of %s failed; its lease will run out", job.report_id)

    async def _run(self, job: Job, worker: str) -> None:
        pool = self._pool
        assert pool is not None
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            pool, compute_report, self.reports_dir, job.request_json, job.options_json
        )
        renewal = asyncio.create_task(self._renew(job.report_id, worker))
        try:
            computed: ComputedReport = await future
        except LlmPerfOptError as error:
            await asyncio.to_thread(self.store.fail, job.report_id, worker, str(error))
        except concurrent.futures.process.BrokenProcessPool:
            if self._pool is pool:  # the first slot to see the broken pool replaces it
                pool.shutdown(wait=False)
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.slots, mp_context=multiprocessing.get_context("spawn")
                )
            if job.attempts >= MAX_ATTEMPTS:
                message = f"internal error: the worker process died in each of {job.attempts} attempts"
                await asyncio.to_thread(self.store.fail, job.report_id, worker, message)
            else:
                _log.error(
                    "the worker process of %s died; it is claimed again when its lease ends", job.report_id
                )
        except Exception as error:
            _log.exception("job %s failed", job.report_id)
            await asyncio.to_thread(
                self.store.fail, job.report_id, worker, f"internal error: {type(error).__name__}: {error}"
            )
        else:
            await asyncio.to_thread(
                lambda: self.store.finish(
                    job.report_id,
                    worker,
                    model_variant=computed.model_variant,
                    workload_profile_id=computed.workload_profile_id,
                    predicted_total_time_ms=computed.predicted_total_time_ms,
                )
            )
            if self.on_done is not None:
                self.on_done(job.report_id)
        finally:
            renewal.cancel()

    async def _renew(self, report_id: str, worker: str) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await asyncio.to_thread(self.store.renew, report_id, worker, self.lease_s)
            except Exception:
                _log.exception("renewing the lease of %s failed", report_id)
