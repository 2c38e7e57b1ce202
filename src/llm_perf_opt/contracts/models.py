"""The analytic-modeling contract: one attrs class per schema of the shipped ``openapi.yaml``.

Class names, field names and the required/optional split mirror ``components.schemas`` one to
one (a test compares them). Validation happens here, at the edge: positive integers where the
contract says ≥ 1, enums checked against their allowed values, metrics non-negative and finite,
shares in [0, 1], absolute ``config_path``. Serialization lives in :mod:`.converter`.

Units: ``*_tflops`` are FLOP counts / 1e12 (not a rate), ``*_tb`` bytes / 1e12, ``*_gb`` bytes /
1e9, ``*_ms`` milliseconds, ``share_of_*`` fractions in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

from attrs import Attribute, define, field

from llm_perf_opt.validation import (
    FieldError,
    Validator,
    absolute_path,
    flag,
    instance,
    integer,
    is_int,
    list_of,
    metric,
    one_of,
    optional_integer,
    optional_metric,
    optional_text,
    text,
)

__all__ = [
    "OVERRIDE_MINIMUMS",
    "REPETITIONS",
    "REPORT_STATUSES",
    "STAGES",
    "AnalyticModuleNode",
    "AnalyticModuleSummary",
    "FieldError",
    "ModuleMetricsSnapshot",
    "OperatorCategory",
    "OperatorMetrics",
    "Repetition",
    "ReportStatus",
    "Stage",
    "Wan2_1AnalyticAccepted",
    "Wan2_1AnalyticModel",
    "Wan2_1AnalyticReportSummary",
    "Wan2_1AnalyticRequest",
    "Wan2_1ModelSpec",
    "Wan2_1WorkloadProfile",
]

Stage = Literal["diffusion", "text_encoder", "vae", "other"]
Repetition = Literal["none", "for", "parfor"]
ReportStatus = Literal["queued", "running"]

STAGES: Final[tuple[str, ...]] = get_args(Stage)
REPETITIONS: Final[tuple[str, ...]] = get_args(Repetition)
REPORT_STATUSES: Final[tuple[str, ...]] = get_args(ReportStatus)

OVERRIDE_MINIMUMS: Final[Mapping[str, int]] = {
    "batch_size": 1,
    "num_frames": 1,
    "height": 1,
    "width": 1,
    "num_inference_steps": 1,
    "text_len": 0,
}
"""Workload fields a request may override, with the smallest accepted value of each."""


def _overrides() -> Validator:
    accepted = ", ".join(OVERRIDE_MINIMUMS)

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise FieldError((attribute.name,), f"must be an object or null, got {value!r}")
        for key, number in value.items():
            path = (attribute.name, str(key))
            if key not in OVERRIDE_MINIMUMS:
                raise FieldError(path, f"unknown override; accepted: {accepted}")
            minimum = OVERRIDE_MINIMUMS[key]
            if not is_int(number):
                raise FieldError(path, f"must be an integer ≥ {minimum}, got {number!r}")
            if number < minimum:
                raise FieldError(path, f"must be ≥ {minimum}, got {number!r}")

    return check


def _string_keyed() -> Validator:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise FieldError((attribute.name,), f"must be an object with string keys, got {value!r}")

    return check


@define(kw_only=True)
class Wan2_1AnalyticRequest:
    """Build (or refresh) the analytic model of one variant under one workload profile."""

    model_id: str = field(validator=text())
    """Canonical model id, e.g. ``wan2.1-t2v-14b``."""
    model_variant: str = field(validator=text())
    """Variant, e.g. ``t2v-14b``."""
    workload_profile_id: str = field(validator=text())
    """Workload profile, e.g. ``wan2-1-ci-tiny``."""
    overrides: dict[str, int] | None = field(default=None, validator=_overrides())
    """Ad-hoc workload overrides; keys and minimums in :data:`OVERRIDE_MINIMUMS`."""
    profile_run_id: str | None = field(default=None, validator=optional_text())
    """Id of a measured profiling run, for later comparison."""
    force_rebuild: bool = field(default=False, validator=flag())
    """Recompute even if a matching report exists."""


@define(kw_only=True)
class Wan2_1AnalyticAccepted:
    """Answer to a run request."""

    report_id: str = field(validator=text())
    status: ReportStatus = field(validator=one_of(REPORT_STATUSES))


@define(kw_only=True)
class AnalyticModuleSummary:
    """One row of a summary's top modules."""

    module_id: str = field(validator=text())
    name: str = field(validator=text())
    stage: Stage = field(validator=one_of(STAGES))
    share_of_model_flops: float = field(validator=metric(maximum=1.0))
    total_flops_tflops: float | None = field(default=None, validator=optional_metric())
    """FLOPs / 1e12; omitted from JSON when not given."""
    memory_activations_gb: float | None = field(default=None, validator=optional_metric())
    """Activation bytes / 1e9; omitted from JSON when not given."""


@define(kw_only=True)
class Wan2_1AnalyticReportSummary:
    """What a finished report says in brief."""

    report_id: str = field(validator=text())
    model_variant: str = field(validator=text())
    workload_profile_id: str = field(validator=text())
    predicted_total_time_ms: float = field(validator=metric())
    top_modules: list[AnalyticModuleSummary] = field(factory=list, validator=list_of(AnalyticModuleSummary))
    """Top modules by FLOP share."""
    notes: str = field(default="", validator=text())


@define(kw_only=True)
class Wan2_1ModelSpec:
    """The model a report was built for (contract view of a variant record)."""

    model_id: str = field(validator=text())
    model_variant: str = field(validator=text())
    config_path: str = field(validator=absolute_path())
    """Absolute path of the model metadata source the spec was built from."""
    hidden_size: int = field(validator=integer(1))
    num_layers: int = field(validator=integer(1))
    num_attention_heads: int = field(validator=integer(1))
    head_dim: int = field(validator=integer(1))
    mlp_intermediate_size: int = field(validator=integer(1))
    vae_downsample_factor: int = field(validator=integer(1))
    patch_size: int = field(validator=integer(1))
    latent_channels: int = field(validator=integer(1))
    notes: str = field(default="", validator=text())
    """Free-form disclosure of defaults and known omissions."""


@define(kw_only=True)
class Wan2_1WorkloadProfile:
    """One workload: batch, frames, size, steps and prompt length."""

    profile_id: str = field(validator=text())
    description: str = field(validator=text())
    batch_size: int = field(validator=integer(1))
    num_frames: int = field(validator=integer(1))
    height: int = field(validator=integer(1))
    width: int = field(validator=integer(1))
    num_inference_steps: int = field(validator=integer(1))
    text_len: int = field(validator=integer(0))


@define(kw_only=True)
class AnalyticModuleNode:
    """One module of the analytic tree, with a stable hierarchical id."""

    module_id: str = field(validator=text())
    """Stable, hierarchical, deterministic, e.g. ``diffusion.blocks.12.self_attn.q``."""
    name: str = field(validator=text())
    qualified_class_name: str = field(validator=text())
    stage: Stage = field(validator=one_of(STAGES))
    parent_id: str | None = field(default=None, validator=optional_text())
    children: list[str] = field(validator=list_of(str))
    repetition: Repetition = field(validator=one_of(REPETITIONS))
    repetition_count: int | None = field(default=None, validator=optional_integer(1))
    constructor_params: dict[str, Any] = field(factory=dict, validator=_string_keyed())


@define(kw_only=True)
class OperatorCategory:
    """A class of operators (attention core, projections, norms, ...) and the classes it matches."""

    category_id: str = field(validator=text())
    display_name: str = field(validator=text())
    description: str = field(validator=text())
    match_classes: list[str] = field(validator=list_of(str))


@define(kw_only=True)
class OperatorMetrics:
    """One operator category's share of a module."""

    category_id: str = field(validator=text())
    calls: int = field(validator=integer(0))
    flops_tflops: float = field(validator=metric())
    io_tb: float = field(validator=metric())
    share_of_module_flops: float = field(validator=metric(maximum=1.0))


@define(kw_only=True)
class ModuleMetricsSnapshot:
    """Every metric of one module under one workload, totals over all of its calls."""

    module_id: str = field(validator=text())
    profile_id: str = field(validator=text())
    calls: int = field(validator=integer(0))
    total_time_ms: float = field(validator=metric())
    total_flops_tflops: float = field(validator=metric())
    total_io_tb: float = field(validator=metric())
    memory_weights_gb: float = field(validator=metric())
    memory_activations_gb: float = field(validator=metric())
    memory_kvcache_gb: float = field(validator=metric())
    share_of_model_time: float = field(validator=metric(maximum=1.0))
    operator_breakdown: list[OperatorMetrics] = field(validator=list_of(OperatorMetrics))


@define(kw_only=True)
class Wan2_1AnalyticModel:
    """A whole report: model, workload, module tree, categories and one snapshot per module."""

    report_id: str = field(validator=text())
    model: Wan2_1ModelSpec = field(validator=instance(Wan2_1ModelSpec))
    workload: Wan2_1WorkloadProfile = field(validator=instance(Wan2_1WorkloadProfile))
    modules: list[AnalyticModuleNode] = field(validator=list_of(AnalyticModuleNode))
    operator_categories: list[OperatorCategory] = field(validator=list_of(OperatorCategory))
    module_metrics: list[ModuleMetricsSnapshot] = field(validator=list_of(ModuleMetricsSnapshot))
    profile_run_id: str | None = field(default=None, validator=optional_text())
