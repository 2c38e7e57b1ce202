"""The one place the figures call the time model.

Per-module times, device roofs, op classes, multi-GPU runs and the calibration predictions all come
from ``llm_perf_opt.hardware`` (and the report's analysis with a device) through the functions
below; the figures see only the small records this module returns. FLOPs and bytes without a
device come from the symbolic layer directly, outside this module.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Final

import numpy as np
import numpy.typing as npt
from attrs import frozen

from llm_perf_opt.contracts.models import Wan2_1AnalyticRequest
from llm_perf_opt.hardware import (
    calibration_table,
    get_accelerator,
    op_class,
    pipeline_time,
    run_memory,
)
from llm_perf_opt.hardware.efficiency import EFFICIENCIES
from llm_perf_opt.hardware.roofline import roofline_rule, roofline_terms
from llm_perf_opt.hardware.run import run_config
from llm_perf_opt.report.analysis import Analysis, RunOptions, analyze
from llm_perf_opt.symbolic.symbols import Workload
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


def setup_words(variant: str, device: str, gpus: int, attention_kernel: str) -> str:
    """``<device> × <gpus>: <generate.py flags> (<kernel>)``: the official layout on that many GPUs."""
    accelerator = get_accelerator(device)
    config = run_config(
        get_variant(variant).num_heads, accelerator, gpus=gpus, attention_kernel=attention_kernel
    )
    return f"{accelerator.name} × {gpus}: {config.flags}"


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
    options = RunOptions(
        implementation=implementation, device=device, gpus=gpus, attention_kernel=attention_kernel
    )
    return analyze(request, options)


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
    timing = pipeline_time(variant, implementation, device, gpus=gpus, attention_kernel=attention_kernel)
    values = timing.evaluate_point(workload)
    memory = run_memory(get_variant(variant), get_implementation(implementation), timing.config)
    loads = {name: values[name] for name in timing.loads}
    gpu_link = sum(v for n, v in loads.items() if any(m in n for m in GPU_LINK_LOAD_MARKERS))
    return RunTime(
        setup=timing.config.flags,
        total_seconds=values["total"],
        stages={stage: values[stage] for stage in timing.stages},
        gpu_link_seconds=gpu_link,
        host_link_seconds=sum(loads.values()) - gpu_link,
        peak_memory_bytes=memory.evaluate_point(workload)["peak"],
        device_memory_bytes=float(timing.accelerator.memory_bytes),
    )


def total_seconds_grid(
    variant: str, implementation: str, device: str, gpus: int, workload: Workload, attention_kernel: str
) -> FloatArray:
    """Seconds of whole runs over workload arrays (broadcast like numpy)."""
    timing = pipeline_time(variant, implementation, device, gpus=gpus, attention_kernel=attention_kernel)
    return np.broadcast_to(
        timing.evaluate(workload)["total"], np.broadcast_shapes(*(np.shape(v) for v in workload.values()))
    ).astype(np.float64)


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


def op_class_points(
    variant: str, implementation: str, device: str, workload: Workload, attention_kernel: str
) -> tuple[OpClassPoint, ...]:
    """Every (op class, precision) of one transformer forward of ``variant`` at ``workload`` on
    one ``device``: its work, traffic and modelled time."""
    accelerator = get_accelerator(device)
    efficiency = EFFICIENCIES.for_device(accelerator)
    tree = dit_tree(get_variant(variant), get_implementation(implementation))
    sums: dict[tuple[str, str], list[float]] = {}
    for term in roofline_terms(tree, accelerator, workload, attention_kernel=attention_kernel):
        rule = roofline_rule(term.kind, attention_kernel)
        key = (op_class(term.kind[0]).value, rule.precision)
        entry = sums.setdefault(key, [0.0, 0.0, 0.0])
        entry[0] += term.count * term.compute_seconds * accelerator.peak_flops(rule.precision)
        entry[1] += term.count * term.memory_seconds * accelerator.memory_bandwidth
        entry[2] += term.count * max(
            term.compute_seconds / efficiency.factor(term.compute_factor),
            term.memory_seconds / efficiency.factor(term.memory_factor),
        )
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
    """Every calibration point that has a prediction, in the calibration table's order (computed
    once per process: the shipped factors do not change)."""
    return tuple(
        CalibrationPoint(
            id=row.id,
            setup=row.setup,
            measured_seconds=row.measured_seconds,
            predicted_seconds=row.predicted_seconds,
            fitted=row.fitted,
        )
        for row in calibration_table().rows
        if row.predicted_seconds is not None
    )
