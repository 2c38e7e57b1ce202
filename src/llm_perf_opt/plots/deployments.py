"""Which setup: one run on several devices and GPU counts, its time and its peak memory per GPU
side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from attrs import frozen
from matplotlib.figure import Figure

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.plots import _model
from llm_perf_opt.plots._common import FigureRun, ModelFigure, figure_run
from llm_perf_opt.plots.defaults import DEPLOYMENT_DEVICES, DEPLOYMENT_GPU_COUNTS

__all__ = ["DEFAULT_DEVICES", "DeploymentsData", "deployments_data", "deployments_figure"]

DEFAULT_DEVICES: Final = DEPLOYMENT_DEVICES
DEFAULT_GPU_COUNTS: Final = DEPLOYMENT_GPU_COUNTS
GIGA: Final = 1e9


@frozen(kw_only=True)
class DeploymentsData:
    """The numbers a deployments figure draws.

    Attributes:
        run: the run.
        devices: the devices' catalog names.
        gpus: the GPU counts.
        times: device → one :class:`~llm_perf_opt.plots._model.RunTime` per GPU count.
    """

    run: FigureRun
    devices: tuple[str, ...]
    gpus: tuple[int, ...]
    times: Mapping[str, tuple[_model.RunTime, ...]]


def deployments_data(
    variant: str = "t2v-1.3b",
    profile: str = "wan2-1-official-480p",
    *,
    overrides: Mapping[str, int] | None = None,
    devices: Sequence[str] = DEFAULT_DEVICES,
    gpu_counts: Sequence[int] = DEFAULT_GPU_COUNTS,
    implementation: str = "official",
    attention_kernel: str = "fa2",
) -> DeploymentsData:
    """One run's time and peak memory on every device and GPU count, each in its official layout."""
    if not devices:
        raise LlmPerfOptError("devices: expected at least one device, got none")
    counts = tuple(gpu_counts)
    if not counts or any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in counts):
        raise LlmPerfOptError(f"gpus: expected GPU counts ≥ 1, got {list(counts)!r}")
    run = figure_run(variant, profile, overrides)
    names = tuple(_model.device_name(d) for d in devices)
    if len(set(names)) != len(names):
        raise LlmPerfOptError(f"devices: each device once, got {list(devices)!r}")
    times = {
        name: tuple(
            _model.run_time(variant, implementation, name, g, run.workload, attention_kernel) for g in counts
        )
        for name in names
    }
    return DeploymentsData(run=run, devices=names, gpus=counts, times=times)


def deployments_figure(
    variant: str = "t2v-1.3b",
    profile: str = "wan2-1-official-480p",
    *,
    overrides: Mapping[str, int] | None = None,
    devices: Sequence[str] = DEFAULT_DEVICES,
    gpu_counts: Sequence[int] = DEFAULT_GPU_COUNTS,
    implementation: str = "official",
    attention_kernel: str = "fa2",
) -> Figure:
    """Grouped bars per device, one bar per GPU count: time per run (left, log scale) and peak
    memory per GPU against the device's capacity (right)."""
    data = deployments_data(
        variant,
        profile,
        overrides=overrides,
        devices=devices,
        gpu_counts=gpu_counts,
        implementation=implementation,
        attention_kernel=attention_kernel,
    )
    figure = ModelFigure(figsize=(13, 5.6), layout="constrained")
    time_ax, memory_ax = figure.subplots(1, 2)
    width = 0.8 / len(data.gpus)
    positions = list(range(len(data.devices)))
    for index, gpus in enumerate(data.gpus):
        offset = [p + (index - (len(data.gpus) - 1) / 2) * width for p in positions]
        label = f"{gpus} GPU{'s' if gpus > 1 else ''}"
        seconds = [data.times[d][index].total_seconds for d in data.devices]
        bars = time_ax.bar(offset, seconds, width=width, label=label)
        time_ax.bar_label(bars, fmt="%.0f", fontsize="x-small")
        peaks = [data.times[d][index].peak_memory_bytes / GIGA for d in data.devices]
        memory_ax.bar(offset, peaks, width=width, label=label)
    capacity = [data.times[d][0].device_memory_bytes / GIGA for d in data.devices]
    memory_ax.hlines(
        capacity,
        [p - 0.45 for p in positions],
        [p + 0.45 for p in positions],
        colors="black",
        linewidth=1.5,
        label="device memory",
    )
    time_ax.set_yscale("log")
    time_ax.set_ylabel("time per run (s)")
    time_ax.set_title("time")
    memory_ax.set_ylabel("peak memory per GPU (GB, 10⁹ bytes)")
    memory_ax.set_title("memory")
    for ax in (time_ax, memory_ax):
        ax.set_xticks(positions, list(data.devices))
        ax.set_xlabel("device")
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize="small")
    figure.suptitle(
        f"Which setup — {data.run.words}\n"
        f"each device and GPU count in the official layout ({attention_kernel}): offload on one GPU, "
        "FSDP and sequence parallelism on several"
    )
    return figure
