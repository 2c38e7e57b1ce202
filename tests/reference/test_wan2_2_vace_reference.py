"""The Wan2.2 (transformers, VAE) and VACE reference records are what a fresh measurement gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference import official_id
from llm_perf_opt.reference.dit import DitWorkload, measure_dit
from llm_perf_opt.reference.golden import dit_record, golden_file_name
from llm_perf_opt.reference.vace import (
    VACE_GOLDEN_WORKLOADS,
    measure_vace,
    vace_golden_file_name,
    vace_record,
)
from llm_perf_opt.reference.wan2_2 import wan2_2_golden_cases
from llm_perf_opt.reference.wan2_2_vae import (
    WAN2_2_VAE_GOLDEN_CASES,
    measure_wan2_2_vae,
    official_wan2_2_vae_id,
    wan2_2_vae_record,
)
from llm_perf_opt.wan2_1.vace import VACE_VARIANTS
from llm_perf_opt.wan2_2.variants import Wan22Variant

pytestmark = pytest.mark.reference

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def _same(fresh: dict[str, Any], stored: dict[str, Any]) -> None:
    for key in ("workload", "inputs", "totals", "ops"):
        assert fresh[key] == stored[key], key
    differing = [k for k in stored["modules"] if fresh["modules"].get(k) != stored["modules"][k]]
    assert not differing, differing[:3]
    assert set(fresh["modules"]) == set(stored["modules"])


SMALL_WAN2_2 = [(v, w) for v, w in wan2_2_golden_cases() if w.frames < 81]


@pytest.mark.parametrize(
    ("variant", "workload"),
    SMALL_WAN2_2,
    ids=[golden_file_name(v.transformer, w).removesuffix(".json") for v, w in SMALL_WAN2_2],
)
def test_fresh_wan2_2_measurement_equals_golden_file(variant: Wan22Variant, workload: DitWorkload) -> None:
    """TI2V-5B and the A14B transformer measured now give their stored records (the non-default sizes)."""
    stored = json.loads((GOLDEN / "wan2_2" / golden_file_name(variant.transformer, workload)).read_text())
    w = workload
    measurement = measure_dit(
        variant.transformer,
        batch=w.batch,
        frames=w.frames,
        height=w.height,
        width=w.width,
        text_len=w.text_len,
    )
    _same(dit_record(variant.transformer, workload, measurement), stored)


SMALL_VACE = [(v, w, r) for v in VACE_VARIANTS.values() for w, r in VACE_GOLDEN_WORKLOADS if w.frames < 81]


@pytest.mark.parametrize(
    ("variant", "workload", "refs"),
    SMALL_VACE,
    ids=[vace_golden_file_name(v, w, r).removesuffix(".json") for v, w, r in SMALL_VACE],
)
def test_fresh_vace_measurement_equals_golden_file(variant: Any, workload: DitWorkload, refs: int) -> None:
    """diffusers' VACE transformer measured now gives the stored records."""
    stored = json.loads((GOLDEN / "vace" / vace_golden_file_name(variant, workload, refs)).read_text())
    _same(vace_record(variant, workload, refs, measure_vace(variant, workload, refs)), stored)


def test_vace_names_map_onto_official_ids() -> None:
    """diffusers' proj_in / proj_out of a VACE block are the official before_proj / after_proj."""
    assert official_id("vace_blocks.0.proj_in") == "diffusion.vace_blocks.0.before_proj"
    assert official_id("vace_blocks.7.proj_out") == "diffusion.vace_blocks.7.after_proj"
    assert official_id("vace_blocks.3.norm2") == "diffusion.vace_blocks.3.norm3"
    assert official_id("blocks.12.attn1.to_q") == "diffusion.blocks.12.self_attn.q"
    with pytest.raises(LlmPerfOptError, match="not in DIFFUSERS_TO_OFFICIAL"):
        official_id("vace_blocks.0.unknown")


def test_negative_reference_images_is_an_error() -> None:
    """A negative reference-image count is refused before any model is built."""
    with pytest.raises(LlmPerfOptError, match="reference_images: must be an integer ≥ 0"):
        measure_vace("vace-1.3b", DitWorkload(batch=1, frames=5, height=256, width=256, text_len=64), -1)


SMALL_VAE = [case for case in WAN2_2_VAE_GOLDEN_CASES if case[2] < 121]


@pytest.mark.parametrize("case", SMALL_VAE, ids=[f"{c[0]}_b{c[1]}_f{c[2]}_{c[3]}x{c[4]}" for c in SMALL_VAE])
def test_fresh_wan2_2_vae_measurement_equals_golden_file(case: tuple[str, int, int, int, int]) -> None:
    """diffusers' Wan2.2 AutoencoderKLWan measured now gives the stored records."""
    use, batch, frames, height, width = case
    stored = json.loads(
        (GOLDEN / "wan2_2_vae" / f"{use}__b{batch}_f{frames}_{height}x{width}.json").read_text()
    )
    measurement = measure_wan2_2_vae(use, batch=batch, frames=frames, height=height, width=width)
    fresh = wan2_2_vae_record(use, batch, frames, height, width, measurement)
    assert fresh["totals"] == stored["totals"]
    assert fresh["modules"] == stored["modules"]


def test_wan2_2_vae_names_map_onto_official_ids() -> None:
    """The residual blocks of a level sit under its downsamples/upsamples, the resample last."""
    assert official_wan2_2_vae_id("encoder.down_blocks.1.resnets.0.conv1") == (
        "vae.encoder.downsamples.1.downsamples.0.residual.2"
    )
    assert official_wan2_2_vae_id("encoder.down_blocks.1.downsampler.time_conv") == (
        "vae.encoder.downsamples.1.downsamples.2.time_conv"
    )
    assert official_wan2_2_vae_id("decoder.up_blocks.0.upsampler.resample.1") == (
        "vae.decoder.upsamples.0.upsamples.3.resample.1"
    )
    with pytest.raises(LlmPerfOptError, match="not in the Wan2"):
        official_wan2_2_vae_id("decoder.up_blocks.0.unknown")


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["ti2v-5b", "t2v-a14b"]),
    batch=st.integers(1, 2),
    frames=st.integers(1, 24),
    rows=st.integers(1, 8),
    columns=st.integers(1, 8),
    text_len=st.integers(1, 512),
)
def test_wan2_2_module_bytes_agree_at_drawn_workloads(
    name: str, batch: int, frames: int, rows: int, columns: int, text_len: int
) -> None:
    """Every id's eager bytes, FLOPs and parameters equal a fresh measurement (per-token timesteps too)."""
    from llm_perf_opt.wan2_2.check import compare_with_record
    from llm_perf_opt.wan2_2.variants import VARIANTS

    transformer = VARIANTS[name].transformer
    # a multiple of the VAE stride times the patch, so that the latent tiles into whole patches
    step = transformer.vae_stride[1] * transformer.patch_size[1]
    workload = DitWorkload(
        batch=batch, frames=frames, height=step * rows, width=step * columns, text_len=text_len
    )
    measurement = measure_dit(
        transformer,
        batch=batch,
        frames=frames,
        height=workload.height,
        width=workload.width,
        text_len=text_len,
    )
    rows_compared = compare_with_record(dit_record(transformer, workload, measurement))
    assert not [row for row in rows_compared if not row.matches]
    assert "module_bytes_read" in {row.metric for row in rows_compared}


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(VACE_VARIANTS)),
    batch=st.integers(1, 2),
    frames=st.integers(1, 16),
    height=st.integers(1, 12).map(lambda k: 16 * k),
    width=st.integers(1, 12).map(lambda k: 16 * k),
    references=st.integers(0, 2),
)
def test_vace_module_bytes_agree_at_drawn_workloads(
    name: str, batch: int, frames: int, height: int, width: int, references: int
) -> None:
    """Every VACE id's eager bytes, the hints added in the root's forward, equal a fresh measurement."""
    from llm_perf_opt.wan2_1.vace import get_vace_variant
    from llm_perf_opt.wan2_1.vace_check import compare_vace_with_record

    variant = get_vace_variant(name)
    workload = DitWorkload(batch=batch, frames=frames, height=height, width=width, text_len=64)
    record = vace_record(variant, workload, references, measure_vace(variant, workload, references))
    rows = compare_vace_with_record(record)
    assert not [row for row in rows if not row.matches]
    assert "module_bytes_read" in {row.metric for row in rows}
