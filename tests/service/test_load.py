"""A bounded load test on loopback: 50 concurrent clients, a fixed number of mixed runs and reads."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from typing import Any

import pytest

from tests.service.conftest import LiveServer, tiny, wait_done

httpx = pytest.importorskip("httpx")

CLIENTS = 50
REQUESTS = 1000
DISTINCT_RUNS = 8


def test_fifty_clients_get_no_error_and_lose_no_job(server: LiveServer) -> None:
    """1000 requests (runs of 8 new workloads, status, summary, model and list reads): 0 errors,
    every accepted job done; the p50 and p99 latencies are printed."""
    with server.client() as client:
        warm = client.post("/analytic/wan2-1/run", json=tiny()).json()["report_id"]
        wait_done(client, warm)
    bodies = [tiny(num_frames=45 + 4 * index) for index in range(DISTINCT_RUNS)]
    rng = random.Random(15)
    plan = []
    for _ in range(REQUESTS):
        kind = rng.choices(["run", "status", "summary", "model", "list"], weights=[15, 35, 30, 5, 15])[0]
        plan.append((kind, rng.randrange(DISTINCT_RUNS)))
    latencies: list[float] = []
    by_kind: dict[str, list[float]] = {}
    errors: list[str] = []
    accepted: set[str] = set()

    async def one(client: httpx.AsyncClient, kind: str, index: int) -> None:
        started = time.perf_counter()
        try:
            if kind == "run":
                response = await client.post("/analytic/wan2-1/run", json=bodies[index])
                if response.status_code == 202:
                    accepted.add(response.json()["report_id"])
                expected = {202}
            elif kind == "list":
                response = await client.get("/analytic/wan2-1/reports", params={"limit": 20})
                expected = {200}
            else:
                report_id = (
                    warm if kind != "status" or not accepted else sorted(accepted)[index % len(accepted)]
                )
                response = await client.get(f"/analytic/wan2-1/{report_id}/{kind}")
                expected = {200}
            if response.status_code not in expected:
                errors.append(f"{kind}: {response.status_code} {response.text[:200]}")
        except httpx.HTTPError as error:
            errors.append(f"{kind}: {type(error).__name__}: {error}")
        latencies.append(time.perf_counter() - started)
        by_kind.setdefault(kind, []).append(latencies[-1])

    async def client_loop(client: httpx.AsyncClient, queue: asyncio.Queue[tuple[str, int]]) -> None:
        while True:
            try:
                kind, index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(client, kind, index)

    async def main() -> float:
        queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        for item in plan:
            queue.put_nowait(item)
        # The clients are made before the clock starts: making one costs the load generator itself
        # tens of milliseconds of CPU, which would count as the server's latency.
        clients = [httpx.AsyncClient(base_url=server.url, timeout=120.0) for _ in range(CLIENTS)]
        started = time.perf_counter()
        try:
            loops = (client_loop(client, queue) for client in clients)
            await asyncio.wait_for(asyncio.gather(*loops), timeout=600)
        finally:
            await asyncio.gather(*(client.aclose() for client in clients))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    quantiles = statistics.quantiles(latencies, n=100)
    summary: dict[str, Any] = {
        "requests": len(latencies),
        "errors": len(errors),
        "p50_ms": round(quantiles[49] * 1000, 1),
        "p99_ms": round(quantiles[98] * 1000, 1),
        "seconds": round(elapsed, 1),
    }
    print(f"load: {summary}")
    print("load p50 by kind (ms):", {k: round(statistics.median(v) * 1000, 1) for k, v in by_kind.items()})
    print("load max by kind (ms):", {k: round(max(v) * 1000, 1) for k, v in by_kind.items()})
    assert errors == [] and len(latencies) == REQUESTS
    with server.client() as client:
        for report_id in accepted:
            assert wait_done(client, report_id)["status"] == "done"
    assert len(accepted) == DISTINCT_RUNS
