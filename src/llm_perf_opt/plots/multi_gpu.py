"""How one run scales over GPUs: time and speed-up against the GPU count with the ideal line, and
the share of the run the links carry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from attrs import frozen
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.plots import _model
from llm_perf_opt.plots._common import FigureRun, ModelFigure, figure_run
from llm_perf_opt.plots.defaults import MULTI_GPU_COUNTS

__all__ = ["DEFAULT_GPU_COUNTS", "MultiGpuData", "multi_gpu_data", "multi_gpu_figure"]

DEFAULT_GPU_COUNTS: Final = MULTI_GPU_COUNTS


@frozen(kw_only=True)
class MultiGpuData:
    """The numbers a multi-GPU figure draws.

    Attributes:
        run: the run.
        device: the device's catalog name.
        gpus: the GPU counts.
        times: one :class:`~llm_perf_opt.plots._model.RunTime` per count.
    """

    run: FigureRun
    device: str
    gpus: tuple[int, ...]
    times: tuple[_model.RunTime, ...]

    @property
    def speedups(self) -> tuple[float, ...]:
        """Time on the first count over time on each count."""
        return tuple(self.times[0].total_seconds / t.total_seconds for t in self.times)


def multi_gpu_data(
    variant: str = "t2v-14b",
    profile: str = "wan2-1-official-720p",
    *,
    overrides: Mapping[str, int] | None = None,
    device: str = "h100-sxm",
    gpu_counts: Sequence[int] = DEFAULT_GPU_COUNTS,
    implementation: str = "official",
    attention_kernel: str = "fa2",
) -> MultiGpuData:
    """One run's time on each GPU count, in the official layout of each."""
    counts = tuple(gpu_counts)
    if len(counts) < 2 or any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in counts):
        raise LlmPerfOptError(f"gpus: expected at least two GPU counts ≥ 1, got {list(counts)!r}")
    if list(counts) != sorted(set(counts)):
        raise LlmPerfOptError(f"gpus: GPU counts must increase, got {list(counts)!r}")
    run = figure_run(variant, profile, overrides)
    times = tuple(
        _model.run_time(variant, implementation, device, g, run.workload, attention_kernel) for g in counts
    )
    return MultiGpuData(run=run, device=_model.device_name(device), gpus=counts, times=times)


def multi_gpu_figure(
    variant: str = "t2v-14b",
    profile: str = "wan2-1-official-720p",
    *,
    overrides: Mapping[str, int] | None = None,
    device: str = "h100-sxm",
    gpu_counts: Sequence[int] = DEFAULT_GPU_COUNTS,
    implementation: str = "official",
    attention_kernel: str = "fa2",
) -> Figure:
    """Three panels: time per run, speed-up (with the ideal lines), and the link time's share."""
    data = multi_gpu_data(
        variant,
        profile,
        overrides=overrides,
        device=device,
        gpu_counts=gpu_counts,
        implementation=implementation,
        attention_kernel=attention_kernel,
    )
    gpus = list(data.gpus)
    first = data.times[0].total_seconds
    figure = ModelFigure(figsize=(15, 5.4), layout="constrained")
    time_ax, speed_ax, link_ax = figure.subplots(1, 3)

    time_ax.plot(gpus, [t.total_seconds for t in data.times], "o-", label="model")
    time_ax.plot(gpus, [first * gpus[0] / g for g in gpus], "k--", linewidth=1, label="ideal: T₁·g₁/g")
    time_ax.set_xscale("log", base=2)
    time_ax.set_yscale("log")
    time_ax.set_ylabel("time per run (s)")
    time_ax.set_title("time")

    speed_ax.plot(gpus, list(data.speedups), "o-", label="model")
    speed_ax.plot(gpus, [g / gpus[0] for g in gpus], "k--", linewidth=1, label="ideal: g/g₁")
    speed_ax.set_xscale("log", base=2)
    speed_ax.set_yscale("log", base=2)
    speed_ax.yaxis.set_major_locator(FixedLocator([g / gpus[0] for g in gpus]))
    speed_ax.yaxis.set_major_formatter(ScalarFormatter())
    speed_ax.yaxis.set_minor_formatter(NullFormatter())
    speed_ax.set_ylabel(f"speed-up over {gpus[0]} GPU{'s' if gpus[0] > 1 else ''} (×)")
    speed_ax.set_title("speed-up")

    positions = list(range(len(gpus)))
    gpu_share = [100 * t.gpu_link_seconds / t.total_seconds for t in data.times]
    host_share = [100 * t.host_link_seconds / t.total_seconds for t in data.times]
    link_ax.bar(positions, gpu_share, width=0.6, label="GPU-to-GPU collectives")
    link_ax.bar(positions, host_share, width=0.6, bottom=gpu_share, label="host copies (offload)")
    link_ax.bar_label(
        link_ax.containers[-1],
        labels=[f"{g + h:.1f}%" for g, h in zip(gpu_share, host_share, strict=True)],
        fontsize="small",
    )
    link_ax.set_ylim(0, 1.2 * max(g + h for g, h in zip(gpu_share, host_share, strict=True)))
    link_ax.set_xticks(positions, [str(g) for g in gpus])
    link_ax.set_ylabel("link time before overlap / run time (%)")
    link_ax.set_title("communication share")
    for ax in (time_ax, speed_ax):
        ax.set_xticks(gpus, [str(g) for g in gpus])
        ax.grid(which="both", alpha=0.3)
    for ax in (time_ax, speed_ax, link_ax):
        ax.set_xlabel("GPUs")
        ax.legend(loc="upper left" if ax is link_ax else "best", fontsize="small")
    setups = "\n".join(
        f"{g} GPU{'s' if g > 1 else ''}: {t.setup}" for g, t in zip(gpus, data.times, strict=True)
    )
    figure.suptitle(f"Scaling over GPUs — {data.run.words} on {data.device}, official layouts:\n{setups}")
    return figure
