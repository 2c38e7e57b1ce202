"""The worker pool on its own: a job the library rejects is marked failed with the library's error."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from llm_perf_opt.service.compute import ServiceOptions, options_json
from llm_perf_opt.service.store import open_store
from llm_perf_opt.service.workers import WorkerPool


def test_a_job_that_fails_records_the_error_and_the_pool_goes_on(tmp_path: Path) -> None:
    """A stored request for an unknown variant fails in the worker process with the field's message."""
    store = open_store(tmp_path)
    request = {"model_id": "wan9", "model_variant": "t9v", "workload_profile_id": "wan2-1-ci-tiny"}
    store.submit("t9v__wan2-1-ci-tiny__0123456789ab", json.dumps(request), options_json(ServiceOptions()),
                 rebuild=False, max_queued=10)  # fmt: skip

    async def run() -> None:
        pool = WorkerPool(store, tmp_path, slots=1, poll_s=0.1)
        await pool.start()
        try:
            for _ in range(600):
                job = store.job("t9v__wan2-1-ci-tiny__0123456789ab")
                if job is not None and job.status == "failed":
                    return
                await asyncio.sleep(0.1)
        finally:
            await pool.stop()

    asyncio.run(run())
    job = store.job("t9v__wan2-1-ci-tiny__0123456789ab")
    assert job is not None and job.status == "failed" and job.attempts == 1
    assert job.error is not None and job.error.startswith("model_variant: unknown variant 't9v'")
    store.close()
