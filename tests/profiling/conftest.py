"""Fixtures of the profiling tests."""

from __future__ import annotations

from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"


@pytest.fixture(scope="session")
def live_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real CPU trace of :mod:`tests.profiling.live`, recorded once per session."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from tests.profiling.live import record_trace

    return record_trace(tmp_path_factory.mktemp("trace") / "small_wan.json")
