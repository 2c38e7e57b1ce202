"""Workload profiles for the Wan2.2 variants: Wan2.1's table, plus each variant's README run.

``wan2-2-official`` is the variant's own default run (frames, size and steps of its README command:
81 frames at 1280×720 and 40 steps for A14B, 121 frames at 1280×704 and 50 steps for TI2V-5B); any
Wan2.1 profile also applies, with the variant's default steps where the profile leaves them open.
Overrides apply as for Wan2.1 (:func:`llm_perf_opt.wan2_1.workloads.resolve_profile`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import attrs

from llm_perf_opt.contracts.models import Wan2_1WorkloadProfile
from llm_perf_opt.wan2_1.workloads import get_profile
from llm_perf_opt.wan2_1.workloads import resolve_profile as resolve_wan2_1_profile
from llm_perf_opt.wan2_2.variants import Wan22Variant

__all__ = ["OFFICIAL_PROFILE_ID", "resolve_profile"]

OFFICIAL_PROFILE_ID: Final = "wan2-2-official"
"""The profile id of a Wan2.2 variant's README run."""
_BASE_PROFILE: Final = "wan2-1-official-720p"
"""The Wan2.1 profile the README run starts from (batch 1, a 512-token prompt)."""


def resolve_profile(
    profile_id: str, variant: Wan22Variant, overrides: Mapping[str, int] | None = None
) -> tuple[Wan2_1WorkloadProfile, list[str]]:
    """The contract view of a profile for a Wan2.2 variant, with overrides applied, and notes."""
    given = dict(overrides or {})
    defaults: dict[str, int] = {}
    if profile_id == OFFICIAL_PROFILE_ID:
        width, height = variant.default_width_height
        defaults = {
            "num_frames": variant.frame_num,
            "height": height,
            "width": width,
            "num_inference_steps": variant.sample_steps,
        }
        base = _BASE_PROFILE
    else:
        base = profile_id
        if get_profile(profile_id).num_inference_steps is None:
            defaults = {"num_inference_steps": variant.sample_steps}
    profile, notes = resolve_wan2_1_profile(base, variant.transformer, {**defaults, **given})
    filled = [key for key in defaults if key not in given]
    notes = [note for note in notes if not any(note.startswith(f"override {key}=") for key in filled)]
    notes = [note for note in notes if not note.startswith("num_inference_steps ")]
    if filled:
        values = ", ".join(f"{key} {defaults[key]}" for key in filled)
        notes.insert(0, f"{values}: the official default run of {variant.model_variant}")
    if profile_id == OFFICIAL_PROFILE_ID:
        profile = attrs.evolve(
            profile,
            profile_id=OFFICIAL_PROFILE_ID,
            description=f"the README run of {variant.model_variant}: {variant.frame_num} frames at "
            f"{variant.default_size.replace('*', '×')}, {variant.sample_steps} steps",
        )
    return profile, notes
