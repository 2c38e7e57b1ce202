"""What the service asks of the library, in one place: the run options, the check, the report, the
curve, the formula and the catalogue.

Every call into the report and time layers goes through this module, so that a change of their
API is one change here. :func:`compute_report` is the one function that builds a report: it calls
:func:`llm_perf_opt.report.files.run`, which writes the same atomic report folder the command line
writes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs

from llm_perf_opt.contracts import from_json, to_json
from llm_perf_opt.contracts.models import OVERRIDE_MINIMUMS, Wan2_1AnalyticRequest
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import ACCELERATORS, get_accelerator
from llm_perf_opt.hardware.efficiency import ATTENTION_KERNELS
from llm_perf_opt.hardware.run import run_config
from llm_perf_opt.hardware.sizing import estimate_run
from llm_perf_opt.report.analysis import RunOptions, report_id_for
from llm_perf_opt.report.files import run
from llm_perf_opt.symbolic.cost import METRICS
from llm_perf_opt.symbolic.formula import formula, to_latex
from llm_perf_opt.wan2_1.evaluate import resolve_workload
from llm_perf_opt.wan2_1.implementation import IMPLEMENTATIONS, get_implementation
from llm_perf_opt.wan2_1.pipeline import pipeline_tree
from llm_perf_opt.wan2_1.variants import VARIANTS, get_variant
from llm_perf_opt.wan2_1.workloads import PROFILES, resolve_profile

__all__ = [
    "MAX_GPUS",
    "OVERRIDE_MAXIMUMS",
    "RUN_OPTION_NAMES",
    "ComputedReport",
    "catalogue",
    "check_request",
    "compute_report",
    "curve",
    "module_formula",
    "options_from_json",
    "options_json",
    "report_id",
    "run_options",
]

OVERRIDE_MAXIMUMS: Final[Mapping[str, int]] = {
    "batch_size": 16,
    "num_frames": 1025,
    "height": 4096,
    "width": 4096,
    "num_inference_steps": 1000,
    "text_len": 512,
}
"""The largest override the service accepts per field: a bound on the work one request asks for."""

MAX_GPUS: Final = 64
"""The most devices a request may ask the time model for."""

RUN_OPTION_NAMES: Final[tuple[str, ...]] = tuple(a.name for a in attrs.fields(RunOptions))
"""The query parameters of a run request: the fields of the run options."""

_BOOLEANS: Final[Mapping[str, bool]] = {"true": True, "false": False}


def _boolean(name: str, text: str) -> bool:
    try:
        return _BOOLEANS[text]
    except KeyError:
        raise LlmPerfOptError(f"{name}: must be true or false, got {text!r}") from None


def _integer(name: str, text: str, low: int, high: int) -> int:
    if not text.isascii() or not text.isdigit():
        raise LlmPerfOptError(f"{name}: must be an integer from {low} to {high}, got {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise LlmPerfOptError(f"{name}: must be an integer from {low} to {high}, got {value}")
    return value


def run_options(query: Mapping[str, str]) -> RunOptions:
    """The run options from query parameters (each a field of :class:`RunOptions`), checked.

    ``device`` names an accelerator; ``offload`` is ``true``, ``false`` or absent (the official
    default); the other booleans are ``true`` or ``false``.
    """
    unknown = sorted(set(query) - set(RUN_OPTION_NAMES))
    if unknown:
        raise LlmPerfOptError(
            f"{unknown[0]}: unknown query parameter; accepted: {', '.join(RUN_OPTION_NAMES)}"
        )
    values: dict[str, Any] = {}
    for name, text in query.items():
        if name in ("guidance", "pad_text", "t5_cpu", "offload"):
            values[name] = _boolean(name, text)
        elif name == "gpus":
            values[name] = _integer(name, text, 1, MAX_GPUS)
        elif name == "implementation":
            if text not in IMPLEMENTATIONS:
                raise LlmPerfOptError(
                    f"implementation: unknown profile {text!r}; accepted: {', '.join(IMPLEMENTATIONS)}"
                )
            values[name] = text
        elif name == "attention_kernel":
            if text not in ATTENTION_KERNELS:
                raise LlmPerfOptError(
                    f"attention_kernel: unknown kernel {text!r}; accepted: {', '.join(ATTENTION_KERNELS)}"
                )
            values[name] = text
        else:
            values[name] = get_accelerator(text).name
    return RunOptions(**values)


def _check_overrides(request: Wan2_1AnalyticRequest) -> None:
    for name, value in (request.overrides or {}).items():
        maximum = OVERRIDE_MAXIMUMS.get(name)
        if maximum is not None and value > maximum:
            raise LlmPerfOptError(
                f"overrides.{name}: must be from {OVERRIDE_MINIMUMS[name]} to {maximum} "
                f"on this server, got {value}"
            )


def check_request(request: Wan2_1AnalyticRequest, options: RunOptions) -> None:
    """Everything the report would reject, checked without computing it: the variant and its
    model id, the profile and overrides, the workload's sizes, and the device setup."""
    _check_overrides(request)
    variant = get_variant(request.model_variant)
    if request.model_id.strip().lower() != variant.model_id:
        raise LlmPerfOptError(
            f"model_id: {request.model_id!r} does not match model_variant {variant.model_variant!r} "
            f"(its model_id is {variant.model_id!r})"
        )
    get_implementation(options.implementation)
    profile, _ = resolve_profile(request.workload_profile_id, variant, request.overrides)
    resolve_workload(
        variant,
        batch=profile.batch_size,
        frames=profile.num_frames,
        height=profile.height,
        width=profile.width,
        steps=profile.num_inference_steps,
        text_len=profile.text_len,
        pad_text=options.pad_text,
    )
    if options.device is not None:
        run_config(
            variant.num_heads,
            get_accelerator(options.device),
            gpus=options.gpus,
            offload=options.offload,
            t5_cpu=options.t5_cpu,
            attention_kernel=options.attention_kernel,
            guidance=options.guidance,
        )


def report_id(request: Wan2_1AnalyticRequest, options: RunOptions) -> str:
    """The report's id: the library's content hash of the request and options."""
    return report_id_for(request, options)


def options_json(options: RunOptions) -> str:
    """The run options as JSON, for the store."""
    return json.dumps(attrs.asdict(options), sort_keys=True)


def options_from_json(text: str) -> RunOptions:
    """Run options back from the store's JSON."""
    return RunOptions(**json.loads(text))


@attrs.frozen(kw_only=True)
class ComputedReport:
    """What the index keeps of a finished report."""

    model_variant: str
    workload_profile_id: str
    predicted_total_time_ms: float


def compute_report(reports_dir: Path, request_json: str, options_text: str) -> ComputedReport:
    """Build (or rebuild) one report folder under ``reports_dir``, as ``llm-perf-opt report`` does.

    Runs in a worker process: its arguments and result are plain values.
    """
    request = from_json(request_json, Wan2_1AnalyticRequest)
    result = run(request, reports_dir, options_from_json(options_text))
    return ComputedReport(
        model_variant=result.summary.model_variant,
        workload_profile_id=result.summary.workload_profile_id,
        predicted_total_time_ms=result.summary.predicted_total_time_ms,
    )


def request_json(request: Wan2_1AnalyticRequest) -> str:
    """The request as the contract's compact JSON, for the store."""
    return to_json(request, indent=None)


CURVE_FRAMES: Final[tuple[int, ...]] = (5, 17, 33, 49, 65, 81, 97, 121, 161)
"""Frame counts of the explorer's time curve (each ``4k + 1``)."""
CURVE_HEIGHTS: Final[tuple[int, ...]] = (240, 320, 480, 576, 720, 960, 1088)
"""Heights of the explorer's resolution curve (the width follows the chosen aspect ratio)."""


def _multiple_of_16(value: float) -> int:
    return max(16, round(value / 16) * 16)


def curve(
    options: RunOptions, model_variant: str, *, frames: int, height: int, width: int, steps: int
) -> dict[str, Any]:
    """Predicted seconds and peak memory per device over frame counts and over heights (at the
    width/height ratio of the given size), from the time model, for the explorer's curves."""
    if options.device is None:
        raise LlmPerfOptError("device: the curve needs a device; accepted: " + ", ".join(ACCELERATORS))
    variant = get_variant(model_variant)
    setup: dict[str, Any] = {
        "gpus": options.gpus,
        "steps": steps,
        "implementation": options.implementation,
        "offload": options.offload,
        "t5_cpu": options.t5_cpu,
        "attention_kernel": options.attention_kernel,
        "guidance": options.guidance,
    }

    def point(point_frames: int, point_height: int, point_width: int) -> dict[str, Any]:
        figures = estimate_run(
            variant,
            options.device or "",
            frames=point_frames,
            height=point_height,
            width=point_width,
            **setup,
        )
        return {
            "frames": figures.frames,
            "height": figures.height,
            "width": figures.width,
            "seconds": figures.seconds,
            "peak_memory_gb": figures.peak_memory_gb,
        }

    ratio = width / height
    return {
        "model_variant": variant.model_variant,
        "device": options.device,
        "at": point(frames, height, width),
        "over_frames": [point(count, height, width) for count in CURVE_FRAMES],
        "over_height": [point(frames, rows, _multiple_of_16(rows * ratio)) for rows in CURVE_HEIGHTS],
    }


@functools.lru_cache(maxsize=256)
def module_formula(
    model_variant: str, implementation: str, guidance: bool, module_id: str, metric: str
) -> dict[str, str]:
    """One module's metric as LaTeX and as text, from the library's formula view."""
    if metric not in METRICS:
        raise LlmPerfOptError(f"metric: unknown metric {metric!r}; accepted: {', '.join(METRICS)}")
    variant = get_variant(model_variant)
    tree = pipeline_tree(variant, get_implementation(implementation), guidance)
    if module_id not in {node.id for node in tree}:
        raise LlmPerfOptError(f"module_id: no module {module_id!r} in {variant.model_variant}'s pipeline")
    expression = formula(tree, module_id, metric)
    return {
        "model_variant": variant.model_variant,
        "module_id": module_id,
        "metric": metric,
        "latex": to_latex(expression),
        "text": str(expression),
    }


def catalogue() -> dict[str, Any]:
    """What a client may choose: variants, profiles, devices, implementations, kernels, limits."""
    return {
        "variants": [
            {"model_variant": v.model_variant, "model_id": v.model_id, "model_type": v.model_type}
            for v in VARIANTS.values()
        ],
        "profiles": [attrs.asdict(profile) for profile in PROFILES.values()],
        "devices": sorted(ACCELERATORS),
        "implementations": list(IMPLEMENTATIONS),
        "attention_kernels": list(ATTENTION_KERNELS),
        "metrics": list(METRICS),
        "override_minimums": dict(OVERRIDE_MINIMUMS),
        "override_maximums": dict(OVERRIDE_MAXIMUMS),
        "max_gpus": MAX_GPUS,
    }
