"""Workload limits in one table, exact token geometry, and one text_len rule everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.wan2_1.evaluate import evaluate_text_encoder, resolve_text_workload, resolve_workload
from llm_perf_opt.wan2_1.geometry import latent_frames, video_tokens
from llm_perf_opt.wan2_1.limits import WORKLOAD_LIMITS, check_gpu_count, validate_workload_arrays
from llm_perf_opt.wan2_1.variants import get_variant
from llm_perf_opt.wan2_1.workloads import resolve_profile

T2V = get_variant("t2v-1.3b")


def test_geometry_is_exact_for_huge_integers() -> None:
    """((F−1)//4 + 1)·(H/16)·(W/16) for F = 4·10³⁰ + 1 is the exact integer, not a float."""
    frames = 4 * 10**30 + 1
    # latent frames 10³⁰ + 1; 1024 × 2048 pixels → 64 × 128 patches
    assert latent_frames(frames) == 10**30 + 1
    assert video_tokens(frames, 1024, 2048) == (10**30 + 1) * 64 * 128
    assert int(video_tokens(10**400, 16, 16)) == (10**400 - 1) // 4 + 1


def test_the_rotary_tables_bound_frames_and_sizes() -> None:
    """4093 frames (1024 latent frames) and 16384 pixels run; one more latent frame or patch does not."""
    resolve_workload(T2V, batch=1, frames=4093, height=16384, width=16384)
    with pytest.raises(LlmPerfOptError, match=r"^num_frames: must be an integer in 1…4093"):
        resolve_workload(T2V, batch=1, frames=4097, height=480, width=832)
    with pytest.raises(LlmPerfOptError, match=r"^height: must be an integer in 16…16384, a multiple of 16"):
        resolve_workload(T2V, batch=1, frames=81, height=16400, width=832)
    with pytest.raises(LlmPerfOptError, match=r"^num_frames: .*got 10+…\(61 characters\)"):
        resolve_workload(T2V, batch=1, frames=10**60, height=480, width=832)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch", 1025, r"^batch_size: must be an integer in 1…1024"),
        ("steps", 16001, r"^num_inference_steps: must be an integer in 1…16000"),
        ("steps", 0, r"^num_inference_steps: must be an integer in 1…16000"),
        ("batch", True, r"^batch_size: must be an integer in 1…1024.*got True"),
    ],
)
def test_counts_outside_their_limits_are_errors(field: str, value: object, message: str) -> None:
    """Batch and steps beyond their documented maxima (or not integers) are one error each."""
    workload = {"batch": 1, "frames": 81, "height": 480, "width": 832, "steps": 50, field: value}
    with pytest.raises(LlmPerfOptError, match=message):
        resolve_workload(T2V, **workload)  # type: ignore[arg-type]


@pytest.mark.parametrize("pad_text", [True, False])
def test_text_len_has_one_rule_padded_or_not(pad_text: bool) -> None:
    """text_len 0…512 is accepted and 513 or 5000 rejected, with or without padding, for both models."""
    resolve_workload(T2V, batch=1, frames=81, height=480, width=832, text_len=0, pad_text=pad_text)
    resolve_text_workload(batch=1, text_len=0, pad_text=pad_text)
    for bad in (513, 5000, -1):
        with pytest.raises(LlmPerfOptError, match=r"^text_len: must be an integer in 0…512"):
            resolve_workload(T2V, batch=1, frames=81, height=480, width=832, text_len=bad, pad_text=pad_text)
        with pytest.raises(LlmPerfOptError, match=r"^text_len: must be an integer in 0…512"):
            resolve_text_workload(batch=1, text_len=bad, pad_text=pad_text)


def test_an_empty_unpadded_prompt_costs_nothing_to_encode() -> None:
    """An unpadded prompt of 0 tokens runs no token through the encoder: 0 FLOPs."""
    evaluation = evaluate_text_encoder(text_len=0, pad_text=False)
    assert evaluation.metrics["text_encoder"]["flops"] == 0


def test_overrides_respect_the_maxima() -> None:
    """A profile override past its field's maximum is an error naming overrides.<field>."""
    with pytest.raises(LlmPerfOptError, match=r"^overrides\.num_frames: must be at most 4093"):
        resolve_profile("wan2-1-ci-tiny", T2V, {"num_frames": 10**30})
    profile, _ = resolve_profile("wan2-1-ci-tiny", T2V, {"num_frames": 4093})
    assert profile.num_frames == 4093


def test_gpu_count_limit() -> None:
    """GPU counts 1…1024 pass; 0 and 1025 are errors naming the option."""
    assert check_gpu_count(8) == 8
    for bad in (0, 1025):
        with pytest.raises(LlmPerfOptError, match=r"^--gpus: must be an integer in 1…1024"):
            check_gpu_count(bad, name="--gpus")


def test_every_field_has_a_limit() -> None:
    """The table covers the six workload fields, each with a stated reason."""
    assert set(WORKLOAD_LIMITS) == {"batch", "frames", "height", "width", "steps", "text_len"}
    assert all(limit.why and limit.minimum <= limit.maximum for limit in WORKLOAD_LIMITS.values())


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(sorted(WORKLOAD_LIMITS)),
    values=st.lists(
        st.one_of(
            st.integers(min_value=-40, max_value=20_000),
            st.floats(allow_nan=True, allow_infinity=True, width=64),
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_vectorised_validation_agrees_with_the_scalar_check(field: str, values: list[float]) -> None:
    """An array is rejected exactly when one of its values fails the scalar check, which is named first."""
    limit = WORKLOAD_LIMITS[field]

    def accepted(value: float) -> bool:
        if not math.isfinite(value) or value != int(value):
            return False
        try:
            limit.check(int(value))
        except LlmPerfOptError:
            return False
        return True

    bad = [v for v in values if not accepted(float(v))]
    array = np.asarray(values, dtype=np.float64)
    if not bad:
        validate_workload_arrays({field: array})
        return
    with pytest.raises(
        LlmPerfOptError, match=rf"^{field}: {len(bad)} of {len(values)} values are not"
    ) as caught:
        validate_workload_arrays({field: array})
    first = float(bad[0])
    shown = str(int(first)) if math.isfinite(first) and first == int(first) else repr(first)
    assert str(caught.value).endswith(f"first: {shown}")
