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
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import numpy as np

from llm_perf_opt.contracts import from_json, to_json
from llm_perf_opt.contracts.models import OVERRIDE_MINIMUMS, Wan2_1AnalyticRequest
from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.sizing import check_on_grid
from llm_perf_opt.deployment.value import OFFLOADS, Deployment
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import ACCELERATORS, get_accelerator
from llm_perf_opt.hardware.efficiency import ATTENTION_KERNELS
from llm_perf_opt.models import build_deployment, find_variant
from llm_perf_opt.report.analysis import RunOptions, report_id_for, request_workload, variant_tree
from llm_perf_opt.report.files import run
from llm_perf_opt.symbolic.cost import METRICS
from llm_perf_opt.symbolic.formula import formula, to_latex
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.geometry import PADDED_TEXT_LEN, check_frame_count
from llm_perf_opt.wan2_1.implementation import IMPLEMENTATIONS, get_implementation
from llm_perf_opt.wan2_1.vace import VACE_VARIANTS, VaceVariant
from llm_perf_opt.wan2_1.variants import VARIANTS
from llm_perf_opt.wan2_1.workloads import PROFILES
from llm_perf_opt.wan2_2.variants import VARIANTS as WAN2_2_VARIANTS
from llm_perf_opt.wan2_2.variants import Wan22Variant

__all__ = [
    "GPU_COUNTS",
    "OVERRIDE_MAXIMUMS",
    "REPORT_ID_PATTERN",
    "RUN_OPTION_NAMES",
    "ComputedReport",
    "ServiceOptions",
    "UnknownModuleError",
    "catalogue",
    "check_request",
    "compute_report",
    "curve",
    "module_formula",
    "options_from_json",
    "options_json",
    "report_id",
    "report_options",
    "run_options",
]

REPORT_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,150}__[0-9a-f]{12}")
"""A report id as :func:`~llm_perf_opt.report.analysis.report_id_for` makes it, matched whole
(with ``fullmatch``) before any file is touched: one folder name of a fixed alphabet."""

OVERRIDE_MAXIMUMS: Final[Mapping[str, int]] = {
    "batch_size": 16,
    "num_frames": 1025,
    "height": 4096,
    "width": 4096,
    "num_inference_steps": 1000,
    "text_len": 512,
}
"""The largest override the service accepts per field: a bound on the work one request asks for."""

GPU_COUNTS: Final[tuple[int, ...]] = (1, 2, 4, 8)
"""The device counts a request may ask the time model for: those of the official recipes (and
each a new compilation of the time model, so a bound on the work one request asks for)."""


@attrs.frozen(kw_only=True)
class ServiceOptions:
    """How a run is evaluated, as a request gives it (query parameters) and the store keeps it
    (plain values); :func:`report_options` turns it into the report's run options and deployment.

    Attributes:
        implementation: implementation profile the bytes follow (``official`` or ``diffusers``).
        guidance: classifier-free guidance on.
        pad_text: pad the prompt to 512 tokens.
        device: accelerator the times are predicted on (``None``: no times).
        gpus: devices in the run.
        attention_kernel: fused attention kernel (``sdpa``, ``fa2``, ``fa3``).
        offload: where weights wait (``none``, ``model``, ``group``; ``None``: the official default).
        t5_cpu: the text encoder runs on the host CPU.
        convert_model_dtype: Wan2.2's transformers held in bf16 (``--convert_model_dtype``).
    """

    implementation: str = "official"
    guidance: bool = True
    pad_text: bool = True
    device: str | None = None
    gpus: int = 1
    attention_kernel: str = "fa2"
    offload: str | None = None
    t5_cpu: bool = False
    convert_model_dtype: bool = False


RUN_OPTION_NAMES: Final[tuple[str, ...]] = tuple(a.name for a in attrs.fields(ServiceOptions))
"""The query parameters of a run request: the fields of :class:`ServiceOptions`."""

_BOOLEANS: Final[Mapping[str, bool]] = {"true": True, "false": False}


def _boolean(name: str, text: str) -> bool:
    try:
        return _BOOLEANS[text]
    except KeyError:
        raise LlmPerfOptError(f"{name}: must be true or false, got {text!r}") from None


def run_options(query: Mapping[str, str]) -> ServiceOptions:
    """The run options from query parameters (each a field of :class:`ServiceOptions`), checked.

    ``device`` names an accelerator; ``offload`` is one of ``none``, ``model``, ``group`` or absent
    (the official default); the booleans are ``true`` or ``false``.
    """
    unknown = sorted(set(query) - set(RUN_OPTION_NAMES))
    if unknown:
        raise LlmPerfOptError(
            f"{unknown[0]}: unknown query parameter; accepted: {', '.join(RUN_OPTION_NAMES)}"
        )
    values: dict[str, Any] = {}
    for name, text in query.items():
        if name in ("guidance", "pad_text", "t5_cpu", "convert_model_dtype"):
            values[name] = _boolean(name, text)
        elif name == "offload":
            if text not in OFFLOADS:
                raise LlmPerfOptError(f"offload: unknown offload {text!r}; accepted: {', '.join(OFFLOADS)}")
            values[name] = text
        elif name == "gpus":
            if text not in {str(count) for count in GPU_COUNTS}:
                raise LlmPerfOptError(f"gpus: must be one of {', '.join(map(str, GPU_COUNTS))}, got {text!r}")
            values[name] = int(text)
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
            values[name] = _device(text)
    return ServiceOptions(**values)


def _deployment(model_variant: str, options: ServiceOptions) -> Deployment | None:
    """The deployment the options describe (``None`` without a device), built and checked by the
    model family's builder."""
    if options.device is None:
        return None
    return build_deployment(
        model_variant,
        implementation=options.implementation,
        accelerator=options.device,
        gpus=options.gpus,
        offload=options.offload,
        t5_cpu=options.t5_cpu,
        attention_kernel=options.attention_kernel,
        guidance=options.guidance,
        **({"convert_model_dtype": True} if options.convert_model_dtype else {}),
    )


def report_options(model_variant: str, options: ServiceOptions) -> RunOptions:
    """The report's run options (with its deployment) for ``options``: the one place where the
    service's options meet the report and deployment layers."""
    return RunOptions(
        implementation=options.implementation,
        guidance=options.guidance,
        pad_text=options.pad_text,
        deployment=_deployment(model_variant, options),
    )


def _device(text: str) -> str:
    try:
        return get_accelerator(text).name
    except LlmPerfOptError:
        raise LlmPerfOptError(
            f"device: unknown device {text!r}; accepted: {', '.join(ACCELERATORS)}"
        ) from None


def _check_overrides(request: Wan2_1AnalyticRequest) -> None:
    for name, value in (request.overrides or {}).items():
        maximum = OVERRIDE_MAXIMUMS.get(name)
        if maximum is not None and value > maximum:
            raise LlmPerfOptError(
                f"overrides.{name}: must be from {OVERRIDE_MINIMUMS[name]} to {maximum} "
                f"on this server, got {value}"
            )


def check_request(request: Wan2_1AnalyticRequest, options: ServiceOptions) -> None:
    """Everything the report would reject, checked without computing it: the variant and its
    model id, the profile and overrides, the workload's sizes, and the device setup."""
    _check_overrides(request)
    variant = find_variant(request.model_variant)
    if request.model_id.strip().lower() != variant.model_id:
        raise LlmPerfOptError(
            f"model_id: {request.model_id!r} does not match model_variant {variant.model_variant!r} "
            f"(its model_id is {variant.model_id!r})"
        )
    get_implementation(options.implementation)
    request_workload(request, variant, options.pad_text)
    report_options(variant.model_variant, options)


def report_id(request: Wan2_1AnalyticRequest, options: ServiceOptions) -> str:
    """The report's id: the library's content hash of the request and options."""
    return report_id_for(request, report_options(request.model_variant, options))


def options_json(options: ServiceOptions) -> str:
    """The run options as JSON, for the store."""
    return json.dumps(attrs.asdict(options), sort_keys=True)


def options_from_json(text: str) -> ServiceOptions:
    """Run options back from the store's JSON."""
    return ServiceOptions(**json.loads(text))


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
    options = report_options(request.model_variant, options_from_json(options_text))
    result = run(request, reports_dir, options)
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


def _multiple_of(value: float, grid: int) -> int:
    return max(grid, round(value / grid) * grid)


def curve(
    options: ServiceOptions, model_variant: str, *, frames: int, height: int, width: int, steps: int
) -> dict[str, Any]:
    """Predicted seconds and peak memory per device at one video, over :data:`CURVE_FRAMES` and
    over :data:`CURVE_HEIGHTS` (at the width/height ratio of the given size), for the explorer.

    One evaluation of the deployment's compiled run model over all points, with the sizing
    queries' convention: one video (batch 1), the prompt padded to 512 tokens.
    """
    variant = find_variant(model_variant)
    deployment = _deployment(variant.model_variant, options)
    if deployment is None:
        raise LlmPerfOptError("device: the curve needs a device; accepted: " + ", ".join(ACCELERATORS))
    effective = check_frame_count(frames, field="num_frames")
    check_on_grid(deployment, height, width)
    grid = deployment.family.size_multiple
    ratio = width / height
    sizes = [(effective, height, width)]
    sizes += [(count, height, width) for count in CURVE_FRAMES]
    sizes += [
        (effective, _multiple_of(rows, grid), _multiple_of(rows * ratio, grid)) for rows in CURVE_HEIGHTS
    ]
    workload = Workload(
        batch=1,
        frames=np.array([size[0] for size in sizes]),
        height=np.array([size[1] for size in sizes]),
        width=np.array([size[2] for size in sizes]),
        steps=steps,
        text_len=PADDED_TEXT_LEN,
    )
    values = run_model(deployment).evaluate(workload, names=("total", "peak_memory"))
    seconds, peak = values["total"], values["peak_memory"]
    points = [
        {
            "frames": size[0],
            "height": size[1],
            "width": size[2],
            "seconds": float(seconds[index]),
            "peak_memory_gb": float(peak[index]) / 1e9,
        }
        for index, size in enumerate(sizes)
    ]
    return {
        "model_variant": variant.model_variant,
        "device": get_accelerator(options.device or "").name,
        "at": points[0],
        "over_frames": points[1 : 1 + len(CURVE_FRAMES)],
        "over_height": points[1 + len(CURVE_FRAMES) :],
    }


class UnknownModuleError(LlmPerfOptError):
    """A formula was asked of a module the pipeline does not have."""


@functools.lru_cache(maxsize=256)
def module_formula(
    model_variant: str, implementation: str, guidance: bool, module_id: str, metric: str
) -> dict[str, str]:
    """One module's metric as LaTeX and as text, from the library's formula view."""
    if metric not in METRICS:
        raise LlmPerfOptError(f"metric: unknown metric {metric!r}; accepted: {', '.join(METRICS)}")
    variant = find_variant(model_variant)
    tree, _ = variant_tree(variant, get_implementation(implementation), guidance)
    if module_id not in {node.id for node in tree}:
        raise UnknownModuleError(f"module_id: no module {module_id!r} in {variant.model_variant}'s pipeline")
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
    others: list[VaceVariant | Wan22Variant] = [*VACE_VARIANTS.values(), *WAN2_2_VARIANTS.values()]
    return {
        "variants": [
            {"model_variant": v.model_variant, "model_id": v.model_id, "model_type": v.model_type}
            for v in VARIANTS.values()
        ]
        + [
            {"model_variant": v.model_variant, "model_id": v.model_id, "model_type": v.transformer.model_type}
            for v in others
        ],
        "profiles": [attrs.asdict(profile) for profile in PROFILES.values()],
        "devices": sorted(ACCELERATORS),
        "implementations": list(IMPLEMENTATIONS),
        "attention_kernels": list(ATTENTION_KERNELS),
        "offloads": list(OFFLOADS),
        "metrics": list(METRICS),
        "curve_frames": list(CURVE_FRAMES),
        "curve_heights": list(CURVE_HEIGHTS),
        "override_minimums": dict(OVERRIDE_MINIMUMS),
        "override_maximums": dict(OVERRIDE_MAXIMUMS),
        "gpu_counts": list(GPU_COUNTS),
    }
