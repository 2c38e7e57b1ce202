"""Standard workload profiles, in one table, and how a request's overrides apply to them.

The first three ids come from the original design and are part of the contract; the ``official``
profiles are what the Wan2.1 ``generate.py`` runs by default: 81 frames at 832×480 or 1280×720 with
the task's default number of steps (50, or 40 for image-to-video).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs
from attrs import frozen

from llm_perf_opt.contracts.models import OVERRIDE_MINIMUMS, Wan2_1WorkloadProfile
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.wan2_1.limits import WORKLOAD_LIMITS
from llm_perf_opt.wan2_1.variants import WanVariant

__all__ = ["PROFILES", "WorkloadProfile", "default_steps", "get_profile", "resolve_profile"]

I2V_DEFAULT_STEPS: Final = 40
"""``generate.py``: 40 sampling steps when the task name contains "i2v" (I2V-14B only)."""
DEFAULT_STEPS: Final = 50
"""``generate.py``: 50 sampling steps for every other task (T2V, FLF2V)."""


_WORKLOAD_FIELD: Final[Mapping[str, str]] = MappingProxyType(
    {
        "batch_size": "batch",
        "num_frames": "frames",
        "height": "height",
        "width": "width",
        "num_inference_steps": "steps",
        "text_len": "text_len",
    }
)
"""Contract override name → workload field of :data:`~llm_perf_opt.wan2_1.limits.WORKLOAD_LIMITS`."""


def default_steps(variant: WanVariant) -> int:
    """The official default number of sampling steps of a variant's task."""
    return I2V_DEFAULT_STEPS if variant.model_type == "i2v" else DEFAULT_STEPS


@frozen(kw_only=True)
class WorkloadProfile:
    """A named workload; ``num_inference_steps`` ``None`` means the task's default (see above)."""

    profile_id: str
    description: str
    batch_size: int
    num_frames: int
    height: int
    width: int
    num_inference_steps: int | None
    text_len: int


PROFILES: Final[Mapping[str, WorkloadProfile]] = MappingProxyType(
    {
        profile.profile_id: profile
        for profile in (
            WorkloadProfile(
                profile_id="wan2-1-ci-tiny",
                description="smallest smoke workload: 1 step, 4 frames at 256×256, 64-token prompt",
                batch_size=1,
                num_frames=4,
                height=256,
                width=256,
                num_inference_steps=1,
                text_len=64,
            ),
            WorkloadProfile(
                profile_id="wan2-1-512p",
                description="16 frames at 512×512, 50 steps",
                batch_size=1,
                num_frames=16,
                height=512,
                width=512,
                num_inference_steps=50,
                text_len=512,
            ),
            WorkloadProfile(
                profile_id="wan2-1-720p",
                description="16 frames at 720×1280, 50 steps",
                batch_size=1,
                num_frames=16,
                height=720,
                width=1280,
                num_inference_steps=50,
                text_len=512,
            ),
            WorkloadProfile(
                profile_id="wan2-1-official-480p",
                description="official generate.py settings: 81 frames at 832×480, the task's default steps",
                batch_size=1,
                num_frames=81,
                height=480,
                width=832,
                num_inference_steps=None,
                text_len=512,
            ),
            WorkloadProfile(
                profile_id="wan2-1-official-720p",
                description="official generate.py settings: 81 frames at 1280×720, the task's default steps",
                batch_size=1,
                num_frames=81,
                height=720,
                width=1280,
                num_inference_steps=None,
                text_len=512,
            ),
        )
    }
)


def get_profile(profile_id: str) -> WorkloadProfile:
    """The profile called ``profile_id``; an unknown id lists the known ones."""
    try:
        return PROFILES[profile_id]
    except KeyError:
        raise LlmPerfOptError(
            f"workload_profile_id: unknown profile {profile_id!r}; known: {', '.join(PROFILES)}"
        ) from None


def resolve_profile(
    profile_id: str, variant: WanVariant, overrides: Mapping[str, int] | None = None
) -> tuple[Wan2_1WorkloadProfile, list[str]]:
    """The contract view of a profile for a variant, with overrides applied, and notes on both.

    Each override must be a known field with an integer in its accepted range (``text_len`` ≥ 0,
    the others ≥ 1, each at most its maximum in :data:`~llm_perf_opt.wan2_1.limits.WORKLOAD_LIMITS`);
    sizes the pipeline would reject are checked where the workload is evaluated.
    """
    profile = get_profile(profile_id)
    values = attrs.asdict(profile)
    notes = []
    if profile.num_inference_steps is None:
        values["num_inference_steps"] = default_steps(variant)
        notes.append(
            f"num_inference_steps {values['num_inference_steps']}: the official default of "
            f"{variant.model_variant}'s task"
        )
    for key, value in (overrides or {}).items():
        if key not in OVERRIDE_MINIMUMS:
            raise LlmPerfOptError(
                f"overrides.{key}: unknown override; accepted: {', '.join(OVERRIDE_MINIMUMS)}"
            )
        minimum = OVERRIDE_MINIMUMS[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise LlmPerfOptError(f"overrides.{key}: must be an integer ≥ {minimum}, got {value!r}")
        limit = WORKLOAD_LIMITS[_WORKLOAD_FIELD[key]]
        if value > limit.maximum:
            raise LlmPerfOptError(
                f"overrides.{key}: must be at most {limit.maximum} ({limit.why}), got {value}"
            )
        notes.append(f"override {key}={value} (profile value {values[key]})")
        values[key] = value
    return Wan2_1WorkloadProfile(**values), notes
