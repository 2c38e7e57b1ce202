"""Live servers on loopback for the service tests, started and stopped by the tests themselves.

The live-server tests need the ``service`` and ``service-test`` extras; without them they are
skipped (the store, OpenAPI and compute tests need only the base install).
The PostgreSQL tests need ``LLM_PERF_OPT_TEST_POSTGRES_URL`` (CI starts a server and sets it).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def _service_extras() -> bool:
    try:
        import httpx  # noqa: F401
        import litestar  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return False
    return True


SERVICE_EXTRAS = _service_extras()

POSTGRES_URL_VARIABLE = "LLM_PERF_OPT_TEST_POSTGRES_URL"

TINY: dict[str, Any] = {
    "model_id": "wan2.1-t2v-1.3b",
    "model_variant": "t2v-1.3b",
    "workload_profile_id": "wan2-1-ci-tiny",
}
"""The smallest request: every test request is this one with other overrides (one compiled tree)."""

_SERVING = re.compile(r"serving on (http://127\.0\.0\.1:\d+)/")


class LiveServer:
    """``python -m llm_perf_opt.service`` in a child process on 127.0.0.1 and a free port."""

    def __init__(self, store: str, reports: Path, *extra: str, workers_only: bool = False) -> None:
        if not SERVICE_EXTRAS:
            pytest.skip("needs the service and service-test extras")
        command = [sys.executable, "-m", "llm_perf_opt.service", "--host", "127.0.0.1", "--port", "0"]
        command += ["--store", store, "--reports", str(reports), *extra]
        if workers_only:
            command.append("--workers-only")
        self.output: list[str] = []
        self.output_dir = reports
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        self.url = ""
        ready = threading.Event()
        wanted = "workers of" if workers_only else "serving on"

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                match = _SERVING.search(line)
                if match:
                    self.url = match.group(1)
                if wanted in line:
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(120) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("the server did not start:\n" + "".join(self.output))

    def client(self, **options: Any) -> Any:
        import httpx

        return httpx.Client(base_url=self.url, timeout=60.0, **options)

    def kill(self) -> None:
        """A crash: SIGKILL to the server and its worker processes, no shutdown."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        """A clean stop: SIGTERM to the server (which ends its worker processes), then SIGKILL to
        all of them if it does not end within 30 s."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_done(client: Any, report_id: str, timeout: float = 300.0) -> dict[str, Any]:
    """Poll a job's status until it is done or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: dict[str, Any] = client.get(f"/analytic/wan2-1/{report_id}/status").json()
        if status["status"] in ("done", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"{report_id} did not finish in {timeout} s")


def tiny(**overrides: int) -> dict[str, Any]:
    """The tiny request with these overrides."""
    return {**TINY, "overrides": overrides} if overrides else dict(TINY)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server with one worker on an SQLite store, shared by the tests that only read and run."""
    folder = tmp_path_factory.mktemp("service")
    live = LiveServer(str(folder), folder)
    yield live
    live.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema of the test PostgreSQL server, dropped afterwards (skips without one)."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set")
    psycopg = pytest.importorskip("psycopg")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in url else "?"
    yield f"{url}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")
