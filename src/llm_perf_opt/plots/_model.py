"""The one place the figures call the time model.

Per-module times, device roofs, op classes, multi-GPU runs and the calibration predictions all come
from the deployment layer (``build_deployment`` and the compiled ``run_model``), the hardware
layer's roofline, the calibration table and the report's analysis with a deployment, through the
functions below; the figures see only the small records this module returns. FLOPs and bytes without a
device come from the symbolic layer directly, outside this module.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Final

import numpy as np
import numpy.typing as npt
import sympy
from attrs import frozen

from llm_perf_opt.calibration import calibration_table
from llm_perf_opt.contracts.models import Wan2_1AnalyticRequest
from llm_perf_opt.deployment import Deployment, run_model
from llm_perf_opt.hardware.accelerators import get_accelerator
from llm_perf_opt.hardware.efficiency import factor_symbol
from llm_perf_opt.hardware.roofline import Maximum, kind_seconds, op_class, roofline_rule
from llm_perf_opt.models import build_deployment
from llm_perf_opt.report.analysis import Analysis, RunOptions, analyze
from llm_perf_opt.symbolic.symbols import WORKLOAD_SYMBOLS, Workload
from llm_perf_opt.wan2_1.evaluate import dit_tree
from llm_perf_opt.wan2_1.implementation import get_implementation
from llm_perf_opt.wan2_1.variants import get_variant

__all__ = [
    "CalibrationPoint",
    "OpClassPoint",
    "Roofs",
    "RunTime",
    "analysis_on_device",
    "calibration_points",
    "device_name",
    "op_class_points",
    "roofs",
    "run_time",
    "setup_words",
    "total_seconds_grid",
]

FloatArray = npt.NDArray[np.float64]

GPU_LINK_LOAD_MARKERS: Final = ("all_to_all", "all_gather", "ring_kv", "root_gather")
"""A load whose name holds one of these travels over the GPU-to-GPU link (a collective); every
other load is a host copy (offload, the text encoder's move, the scheduler's latents)."""


def device_name(device: str) -> str:
    """The catalog name of a device given by name or alias (raises for an unknown one)."""
    return get_accelerator(device).name


def deployment(
    variant: str, implementation: str, device: str, gpus: int, attention_kernel: str
) -> Deployment:
    """The official layout of ``variant`` on ``gpus`` × ``device`` (offload on one GPU; FSDP and
    sequence parallelism on several)."""
    return build_deployment(
        variant,
        implementation=implementation,
        accelerator=device,
        gpus=gpus,
        attention_kernel=attention_kernel,
    )


def setup_words(variant: str, device: str, gpus: int, attention_kernel: str) -> str:
    """``<device> × <gpus>: <generate.py flags> (<kernel>)``: the official layout on that many GPUs."""
    setup = deployment(variant, "official", device, gpus, attention_kernel)
    return f"{setup.accelerator.name} × {gpus}: {setup.flags}"


def analysis_on_device(
    request: Wan2_1AnalyticRequest,
    *,
    implementation: str,
    device: str | None,
    gpus: int,
    attention_kernel: str,
) -> Analysis:
    """The report's analysis of ``request``, with every module's time on ``device`` × ``gpus``
    (no times with ``device=None``)."""
    setup = None
    if device is not None:
        setup = deployment(request.model_variant, implementation, device, gpus, attention_kernel)
    return analyze(request, RunOptions(implementation=implementation, deployment=setup))


@frozen(kw_only=True)
class RunTime:
    """One run's seconds on rank 0.

    Attributes:
        setup: the ``generate.py`` flags and the attention kernel, in words.
        total_seconds: the whole run.
        stages: stage → seconds (they add up to the total).
        gpu_link_seconds: the GPU-to-GPU collectives' link time before overlap.
        host_link_seconds: the host copies' link time before overlap.
        peak_memory_bytes: the peak memory per device (rank 0).
        device_memory_bytes: the device's memory capacity.
    """

    setup: str
    total_seconds: float
    stages: Mapping[str, float]
    gpu_link_seconds: float
    host_link_seconds: float
    peak_memory_bytes: float
    device_memory_bytes: float


def run_time(
    variant: str, implementation: str, device: str, gpus: int, workload: Workload, attention_kernel: str
) -> RunTime:
    """The time of one run of ``variant`` at ``workload`` on ``gpus`` devices, in the official
    multi-GPU layout (offload on one GPU; FSDP and Ulysses on several)."""
    setup = deployment(variant, implementation, device, gpus, attention_kernel)
    values = run_model(setup).evaluate_point(workload)
    loads = {name[len("load.") :]: v for name, v in values.items() if name.startswith("load.")}
    gpu_link = sum(v for n, v in loads.items() if any(m in n for m in GPU_LINK_LOAD_MARKERS))
    return RunTime(
        setup=setup.flags,
        total_seconds=values["total"],
        stages={name[len("stage.") :]: v for name, v in values.items() if name.startswith("stage.")},
        gpu_link_seconds=gpu_link,
        host_link_seconds=sum(loads.values()) - gpu_link,
        peak_memory_bytes=values["peak_memory"],
        device_memory_bytes=float(setup.accelerator.memory_bytes),
    )


def total_seconds_grid(
    variant: str, implementation: str, device: str, gpus: int, workload: Workload, attention_kernel: str
) -> FloatArray:
    """Seconds of whole runs over workload arrays (broadcast like numpy)."""
    setup = deployment(variant, implementation, device, gpus, attention_kernel)
    return np.asarray(run_model(setup).evaluate(workload, names=("total",))["total"], dtype=np.float64)


@frozen(kw_only=True)
class Roofs:
    """A device's roofs: peak arithmetic rates and memory bandwidth, nominal and as the model's
    efficiency factors leave them.

    Attributes:
        device: the catalog name.
        display_name: the vendor's name of the part.
        peak_flops: precision key → FLOP/s (dense).
        bandwidth: bytes/s.
    """

    device: str
    display_name: str
    peak_flops: Mapping[str, float]
    bandwidth: float


def roofs(device: str) -> Roofs:
    """The roofs of ``device``."""
    accelerator = get_accelerator(device)
    return Roofs(
        device=accelerator.name,
        display_name=accelerator.display_name,
        peak_flops={p: accelerator.peak_flops(p) for p in accelerator.peak_tflops},
        bandwidth=accelerator.memory_bandwidth,
    )


@frozen(kw_only=True)
class OpClassPoint:
    """The work of one op class at one precision in one transformer forward.

    Attributes:
        op_class: ``matmul``, ``attention``, ``convolution`` or ``elementwise``.
        precision: the peak-rate key it runs at.
        work_flops: its arithmetic (FLOPs; ``vector_flops`` for element-wise ops).
        traffic_bytes: bytes read + written.
        seconds: the model's seconds (with the device's efficiency factors).
    """

    op_class: str
    precision: str
    work_flops: float
    traffic_bytes: float
    seconds: float

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte."""
        return self.work_flops / self.traffic_bytes

    @property
    def achieved_flops(self) -> float:
        """The rate the model predicts, FLOP/s."""
        return self.work_flops / self.seconds


def _numeric_maxima(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with each roofline :class:`Maximum` of numbers taken."""
    return expr.replace(lambda e: isinstance(e, Maximum), lambda e: sympy.Max(*e.args))


def op_class_points(
    variant: str, implementation: str, device: str, workload: Workload, attention_kernel: str
) -> tuple[OpClassPoint, ...]:
    """Every (op class, precision) of one transformer forward of ``variant`` at ``workload`` on
    one ``device``: its work, traffic and modelled time (the roofline of each op kind with the
    device's efficiency factors)."""
    accelerator = get_accelerator(device)
    factors = build_deployment(variant, accelerator=accelerator, attention_kernel=attention_kernel).factors
    values: dict[sympy.Symbol, object] = {
        symbol: sympy.Integer(int(value))
        for symbol, value in zip(WORKLOAD_SYMBOLS, workload.values(), strict=True)
    }
    values.update({factor_symbol(key): sympy.Float(value) for key, value in factors.items()})
    tree = dit_tree(get_variant(variant), get_implementation(implementation))
    memo: dict[tuple[int, object, object], tuple[float, float, float]] = {}
    sums: dict[tuple[str, str], list[float]] = {}
    for node in tree:
        for kind, cost in node.own_breakdown.items():
            rule = roofline_rule(kind, attention_kernel)
            key = (id(cost), node.calls, kind)
            found = memo.get(key)
            if found is None:
                calls = sympy.sympify(node.calls)
                found = memo[key] = (
                    float((calls * getattr(cost, rule.work)).xreplace(values)),
                    float((calls * (cost.bytes_read + cost.bytes_written)).xreplace(values)),
                    float(_numeric_maxima((calls * kind_seconds(cost, rule, accelerator)).xreplace(values))),
                )
            entry = sums.setdefault((op_class(kind[0]).value, rule.precision), [0.0, 0.0, 0.0])
            for index, value in enumerate(found):
                entry[index] += value
    return tuple(
        OpClassPoint(op_class=kind, precision=precision, work_flops=w, traffic_bytes=b, seconds=s)
        for (kind, precision), (w, b, s) in sorted(sums.items())
        if w > 0 and b > 0
    )


@frozen(kw_only=True)
class CalibrationPoint:
    """One published timing with the model's prediction.

    Attributes:
        id: the point or record column (``C4``, ``C1x8``).
        setup: the setup in words.
        measured_seconds: the published time.
        predicted_seconds: the model's time.
        fitted: whether the efficiency factors were fitted to it.
    """

    id: str
    setup: str
    measured_seconds: float
    predicted_seconds: float
    fitted: bool


@functools.cache
def calibration_points() -> tuple[CalibrationPoint, ...]:
    """Every calibration record with its prediction, in the calibration table's order (computed
    once per process: the shipped factors do not change)."""
    return tuple(
        CalibrationPoint(
            id=row.record.id,
            setup=row.setup,
            measured_seconds=row.record.measured_seconds,
            predicted_seconds=row.predicted_seconds,
            fitted=row.record.fitted,
        )
        for row in calibration_table().rows
    )
