"""Workload profiles: the contract's ids and values, task default steps, validated overrides."""

from __future__ import annotations

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.wan2_1.variants import get_variant
from llm_perf_opt.wan2_1.workloads import PROFILES, resolve_profile


def test_standard_profiles_are_exactly_as_specified() -> None:
    """The three contract profiles hold the original design's values; two official profiles follow."""
    table = {
        p.profile_id: (p.batch_size, p.num_inference_steps, p.num_frames, p.height, p.width, p.text_len)
        for p in PROFILES.values()
    }
    assert table == {
        "wan2-1-ci-tiny": (1, 1, 4, 256, 256, 64),
        "wan2-1-512p": (1, 50, 16, 512, 512, 512),
        "wan2-1-720p": (1, 50, 16, 720, 1280, 512),
        "wan2-1-official-480p": (1, None, 81, 480, 832, 512),
        "wan2-1-official-720p": (1, None, 81, 720, 1280, 512),
    }


@pytest.mark.parametrize(("variant", "steps"), [("t2v-14b", 50), ("i2v-14b-720p", 40), ("flf2v-14b", 50)])
def test_official_profiles_take_the_task_default_steps(variant: str, steps: int) -> None:
    """generate.py runs 40 steps for I2V and 50 for the other tasks."""
    profile, notes = resolve_profile("wan2-1-official-720p", get_variant(variant))
    assert profile.num_inference_steps == steps
    assert any("official default" in note for note in notes)


def test_overrides_apply_and_are_recorded() -> None:
    """An override replaces the profile value and leaves a note with both values."""
    profile, notes = resolve_profile(
        "wan2-1-720p", get_variant("t2v-14b"), {"num_frames": 81, "batch_size": 2}
    )
    assert (profile.num_frames, profile.batch_size) == (81, 2)
    assert "override num_frames=81 (profile value 16)" in notes


@pytest.mark.parametrize(
    ("profile_id", "overrides", "message"),
    [
        (
            "wan2-1-1080p",
            None,
            "workload_profile_id: unknown profile 'wan2-1-1080p'; known: wan2-1-ci-tiny, ",
        ),
        ("wan2-1-720p", {"num_frames": 0}, "overrides.num_frames: must be an integer ≥ 1, got 0"),
        ("wan2-1-720p", {"text_len": -3}, "overrides.text_len: must be an integer ≥ 0, got -3"),
        ("wan2-1-720p", {"fps": 16}, "overrides.fps: unknown override; accepted: batch_size, num_frames"),
        ("wan2-1-720p", {"height": "720"}, "overrides.height: must be an integer ≥ 1, got '720'"),
    ],
)
def test_bad_profiles_and_overrides(
    profile_id: str, overrides: dict[str, object] | None, message: str
) -> None:
    """Unknown ids and out-of-range or unknown overrides are one clear error naming the field."""
    with pytest.raises(LlmPerfOptError) as caught:
        resolve_profile(profile_id, get_variant("t2v-14b"), overrides)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message)
