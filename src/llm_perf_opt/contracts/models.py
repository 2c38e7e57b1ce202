"""The analytic-modeling contract: one attrs class per schema of the shipped ``openapi.yaml``.

Class names, field names and the required/optional split mirror ``components.schemas`` one to
one (a test compares them). Validation happens here, at the edge: positive integers where the
contract says ≥ 1, enums checked against their allowed values, metrics non-negative and finite,
shares in [0, 1], absolute ``config_path``. Serialization lives in :mod:`.converter`.

Units: ``*_tflops`` are FLOP counts / 1e12 (not a rate), ``*_tb`` bytes / 1e12, ``*_gb`` bytes /
1e9, ``*_ms`` milliseconds, ``share_of_*`` fractions in [0, 1].
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, get_args

from attrs import Attribute, define, field

from llm_perf_opt.errors import LlmPerfOptError

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


class FieldError(LlmPerfOptError):
    """A field holds a value the contract does not accept.

    ``path`` is the field's location inside the object being checked (``("overrides",
    "num_frames")``); the converter prefixes the location of that object inside a larger document.
    """

    def __init__(self, path: tuple[str, ...], reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{'.'.join(path)}: {reason}")


Validator = Callable[[Any, "Attribute[Any]", Any], None]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text() -> Validator:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, str):
            raise FieldError((attribute.name,), f"must be a string, got {value!r}")

    return check


def _optional_text() -> Validator:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise FieldError((attribute.name,), f"must be a string or null, got {value!r}")

    return check


def _flag() -> Validator:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, bool):
            raise FieldError((attribute.name,), f"must be true or false, got {value!r}")

    return check


def _integer(minimum: int) -> Validator:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not _is_int(value):
            raise FieldError((attribute.name,), f"must be an integer ≥ {minimum}, got {value!r}")
        if value < minimum:
            raise FieldError((attribute.name,), f"must be ≥ {minimum}, got {value!r}")

    return check


def _optional_integer(minimum: int) -> Validator:
    required = _integer(minimum)

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        if value is not None:
            required(instance, attribute, value)

    return check


def _metric(maximum: float | None = None) -> Validator:
    """A finite number ≥ 0 (and ≤ ``maximum`` when given): never NaN, never infinite."""
    accepted = "a finite number ≥ 0" + ("" if maximum is None else f" and ≤ {maximum:g}")

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if (
            not _is_number(value)
            or not math.isfinite(value)
            or value < 0
            or (maximum is not None and value > maximum)
        ):
            raise FieldError((attribute.name,), f"must be {accepted}, got {value!r}")

    return check


def _optional_metric() -> Validator:
    required = _metric()

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        if value is not None:
            required(instance, attribute, value)

    return check


def _one_of(allowed: tuple[str, ...]) -> Validator:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if value not in allowed:
            raise FieldError((attribute.name,), f"must be one of {', '.join(allowed)}; got {value!r}")

    return check


def _list_of(item_type: type) -> Validator:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, list):
            raise FieldError((attribute.name,), f"must be a list, got {value!r}")
        for index, item in enumerate(value):
            if not isinstance(item, item_type) or isinstance(item, bool):
                raise FieldError(
                    (attribute.name, str(index)), f"must be a {item_type.__name__}, got {item!r}"
                )

    return check


def _instance(cls: type) -> Validator:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, cls):
            raise FieldError((attribute.name,), f"must be a {cls.__name__}, got {value!r}")

    return check


def _absolute_path() -> Validator:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not value.startswith("/") or not os.path.isabs(value):
            raise FieldError((attribute.name,), f"must be an absolute path, got {value!r}")

    return check


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
            if not _is_int(number):
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

    model_id: str = field(validator=_text())
    """Canonical model id, e.g. ``wan2.1-t2v-14b``."""
    model_variant: str = field(validator=_text())
    """Variant, e.g. ``t2v-14b``."""
    workload_profile_id: str = field(validator=_text())
    """Workload profile, e.g. ``wan2-1-ci-tiny``."""
    overrides: dict[str, int] | None = field(default=None, validator=_overrides())
    """Ad-hoc workload overrides; keys and minimums in :data:`OVERRIDE_MINIMUMS`."""
    profile_run_id: str | None = field(default=None, validator=_optional_text())
    """Id of a measured profiling run, for later comparison."""
    force_rebuild: bool = field(default=False, validator=_flag())
    """Recompute even if a matching report exists."""


@define(kw_only=True)
class Wan2_1AnalyticAccepted:
    """Answer to a run request."""

    report_id: str = field(validator=_text())
    status: ReportStatus = field(validator=_one_of(REPORT_STATUSES))


@define(kw_only=True)
class AnalyticModuleSummary:
    """One row of a summary's top modules."""

    module_id: str = field(validator=_text())
    name: str = field(validator=_text())
    stage: Stage = field(validator=_one_of(STAGES))
    share_of_model_flops: float = field(validator=_metric(maximum=1.0))
    total_flops_tflops: float | None = field(default=None, validator=_optional_metric())
    """FLOPs / 1e12; omitted from JSON when not given."""
    memory_activations_gb: float | None = field(default=None, validator=_optional_metric())
    """Activation bytes / 1e9; omitted from JSON when not given."""


@define(kw_only=True)
class Wan2_1AnalyticReportSummary:
    """What a finished report says in brief."""

    report_id: str = field(validator=_text())
    model_variant: str = field(validator=_text())
    workload_profile_id: str = field(validator=_text())
    predicted_total_time_ms: float = field(validator=_metric())
    top_modules: list[AnalyticModuleSummary] = field(factory=list, validator=_list_of(AnalyticModuleSummary))
    """Top modules by FLOP share."""
    notes: str = field(default="", validator=_text())


@define(kw_only=True)
class Wan2_1ModelSpec:
    """The model a report was built for (contract view of a variant record)."""

    model_id: str = field(validator=_text())
    model_variant: str = field(validator=_text())
    config_path: str = field(validator=_absolute_path())
    """Absolute path of the model metadata source the spec was built from."""
    hidden_size: int = field(validator=_integer(1))
    num_layers: int = field(validator=_integer(1))
    num_attention_heads: int = field(validator=_integer(1))
    head_dim: int = field(validator=_integer(1))
    mlp_intermediate_size: int = field(validator=_integer(1))
    vae_downsample_factor: int = field(validator=_integer(1))
    patch_size: int = field(validator=_integer(1))
    latent_channels: int = field(validator=_integer(1))
    notes: str = field(default="", validator=_text())
    """Free-form disclosure of defaults and known omissions."""


@define(kw_only=True)
class Wan2_1WorkloadProfile:
    """One workload: batch, frames, size, steps and prompt length."""

    profile_id: str = field(validator=_text())
    description: str = field(validator=_text())
    batch_size: int = field(validator=_integer(1))
    num_frames: int = field(validator=_integer(1))
    height: int = field(validator=_integer(1))
    width: int = field(validator=_integer(1))
    num_inference_steps: int = field(validator=_integer(1))
    text_len: int = field(validator=_integer(0))


@define(kw_only=True)
class AnalyticModuleNode:
    """One module of the analytic tree, with a stable hierarchical id."""

    module_id: str = field(validator=_text())
    """Stable, hierarchical, deterministic, e.g. ``diffusion.blocks.12.self_attn.q``."""
    name: str = field(validator=_text())
    qualified_class_name: str = field(validator=_text())
    stage: Stage = field(validator=_one_of(STAGES))
    parent_id: str | None = field(default=None, validator=_optional_text())
    children: list[str] = field(validator=_list_of(str))
    repetition: Repetition = field(validator=_one_of(REPETITIONS))
    repetition_count: int | None = field(default=None, validator=_optional_integer(1))
    constructor_params: dict[str, Any] = field(factory=dict, validator=_string_keyed())


@define(kw_only=True)
class OperatorCategory:
    """A class of operators (attention core, projections, norms, ...) and the classes it matches."""

    category_id: str = field(validator=_text())
    display_name: str = field(validator=_text())
    description: str = field(validator=_text())
    match_classes: list[str] = field(validator=_list_of(str))


@define(kw_only=True)
class OperatorMetrics:
    """One operator category's share of a module."""

    category_id: str = field(validator=_text())
    calls: int = field(validator=_integer(0))
    flops_tflops: float = field(validator=_metric())
    io_tb: float = field(validator=_metric())
    share_of_module_flops: float = field(validator=_metric(maximum=1.0))


@define(kw_only=True)
class ModuleMetricsSnapshot:
    """Every metric of one module under one workload, totals over all of its calls."""

    module_id: str = field(validator=_text())
    profile_id: str = field(validator=_text())
    calls: int = field(validator=_integer(0))
    total_time_ms: float = field(validator=_metric())
    total_flops_tflops: float = field(validator=_metric())
    total_io_tb: float = field(validator=_metric())
    memory_weights_gb: float = field(validator=_metric())
    memory_activations_gb: float = field(validator=_metric())
    memory_kvcache_gb: float = field(validator=_metric())
    share_of_model_time: float = field(validator=_metric(maximum=1.0))
    operator_breakdown: list[OperatorMetrics] = field(validator=_list_of(OperatorMetrics))


@define(kw_only=True)
class Wan2_1AnalyticModel:
    """A whole report: model, workload, module tree, categories and one snapshot per module."""

    report_id: str = field(validator=_text())
    model: Wan2_1ModelSpec = field(validator=_instance(Wan2_1ModelSpec))
    workload: Wan2_1WorkloadProfile = field(validator=_instance(Wan2_1WorkloadProfile))
    modules: list[AnalyticModuleNode] = field(validator=_list_of(AnalyticModuleNode))
    operator_categories: list[OperatorCategory] = field(validator=_list_of(OperatorCategory))
    module_metrics: list[ModuleMetricsSnapshot] = field(validator=_list_of(ModuleMetricsSnapshot))
    profile_run_id: str | None = field(default=None, validator=_optional_text())
