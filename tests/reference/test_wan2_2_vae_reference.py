"""The reference harness on diffusers' Wan2.2 VAE: a golden file reproduced, drawn workloads exact."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from llm_perf_opt.reference.golden import dumps_record
from llm_perf_opt.reference.wan2_2_vae import measure_wan2_2_vae, wan2_2_vae_record
from llm_perf_opt.wan2_2.check import compare_vae_with_record

pytestmark = pytest.mark.reference

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "wan2_2_vae"


def test_fresh_measurement_equals_golden_file() -> None:
    """Re-measuring the small batch-2 decode gives the stored file byte for byte."""
    measurement = measure_wan2_2_vae("decode", batch=2, frames=9, height=384, width=640)
    record = wan2_2_vae_record("decode", 2, 9, 384, 640, measurement)
    path = GOLDEN_DIR / "decode__b2_f9_384x640.json"
    assert path.read_text(encoding="utf-8") == dumps_record(record)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    use=st.sampled_from(["encode", "decode"]),
    batch=st.integers(1, 2),
    frames=st.one_of(st.sampled_from([1, 5, 9, 13]), st.integers(1, 15)),
    height=st.integers(1, 3).map(lambda k: 32 * k),
    width=st.integers(1, 3).map(lambda k: 32 * k),
)
def test_exact_agreement_at_drawn_workloads(
    use: str, batch: int, frames: int, height: int, width: int
) -> None:
    """One, two and more chunks, batches of 1 and 2, frame counts 4k+1 and not: every figure is equal,
    whole eager bytes of every id included."""
    measurement = measure_wan2_2_vae(use, batch=batch, frames=frames, height=height, width=width)
    rows = compare_vae_with_record(
        json.loads(dumps_record(wan2_2_vae_record(use, batch, frames, height, width, measurement)))
    )
    assert any(row.metric == "module_bytes_read" for row in rows)
    mismatches = [row for row in rows if not row.matches]
    assert not mismatches, mismatches[:5]
