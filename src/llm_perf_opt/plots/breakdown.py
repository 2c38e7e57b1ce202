"""Where one run's work goes: each component's share of FLOPs, bytes and time as stacked bars, and
the top modules side by side."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from attrs import frozen
from matplotlib import colormaps
from matplotlib.figure import Figure

from llm_perf_opt.plots import _model
from llm_perf_opt.plots._common import FigureRun, ModelFigure, figure_run
from llm_perf_opt.plots.defaults import TOP_MODULES
from llm_perf_opt.report.analysis import Analysis
from llm_perf_opt.report.summary import format_si, summary_rows

__all__ = ["BreakdownData", "breakdown_data", "breakdown_figure"]


SEGMENT_LABEL_SHARE: Final = 3.0
"""Stacked segments at least this share (%) carry their share as a label."""

METRIC_LABELS: Final[Mapping[str, str]] = {"flops": "FLOPs", "bytes": "bytes moved", "seconds": "time"}
METRIC_UNITS: Final[Mapping[str, str]] = {"flops": "FLOP", "bytes": "B", "seconds": "s"}


@frozen(kw_only=True)
class BreakdownData:
    """The numbers a breakdown figure draws.

    Attributes:
        run: the run.
        setup: the device and its setup in words, ``None`` without a device.
        components: component id (the pipeline's children, and its own ops) → metric → value
            (``flops``, ``bytes``, and ``seconds`` with a device).
        totals: metric → the run's total.
        modules: the top summary rows: row id → metric → value.
    """

    run: FigureRun
    setup: str | None
    components: Mapping[str, Mapping[str, float]]
    totals: Mapping[str, float]
    modules: Mapping[str, Mapping[str, float]]


def _seconds_of(analysis: Analysis) -> dict[str, float]:
    return {m.module_id: m.total_time_ms / 1000 for m in analysis.model.module_metrics}


def _matching(pattern: str, seconds: Mapping[str, float]) -> float:
    """Seconds of a summary row: one module, or every block's part for a ``*`` row."""
    if "*" not in pattern:
        return seconds[pattern]
    regex = re.compile(re.escape(pattern).replace(r"\*", r"[^.]+") + r"\Z")
    return sum(value for module_id, value in seconds.items() if regex.match(module_id))


def breakdown_data(
    variant: str = "t2v-14b",
    profile: str = "wan2-1-official-720p",
    *,
    overrides: Mapping[str, int] | None = None,
    device: str | None = None,
    gpus: int = 1,
    implementation: str = "official",
    attention_kernel: str = "fa2",
    top: int = TOP_MODULES,
) -> BreakdownData:
    """The exact FLOPs and bytes of every component and top module of one run, and with a device
    their predicted seconds."""
    run = figure_run(variant, profile, overrides)
    analysis = _model.analysis_on_device(
        run.request,
        implementation=implementation,
        device=device,
        gpus=gpus,
        attention_kernel=attention_kernel,
    )
    seconds = _seconds_of(analysis) if device is not None else None
    root = analysis.model.modules[0]
    figures = analysis.figures

    def values(module_id: str, flops: float, moved: float) -> dict[str, float]:
        row = {"flops": flops, "bytes": moved}
        if seconds is not None:
            row["seconds"] = _matching(module_id, seconds)
        return row

    components = {}
    for child_id in root.children:  # the stages, and the root's own ops (guidance) as ``.ops``
        metrics = figures[child_id].metrics
        components[child_id] = values(
            child_id, metrics["flops"], metrics["bytes_read"] + metrics["bytes_written"]
        )
    total = figures[root.module_id].metrics
    totals = {"flops": float(total["flops"]), "bytes": float(total["bytes_read"] + total["bytes_written"])}
    if seconds is not None:
        totals["seconds"] = seconds[root.module_id]
    rows = sorted(summary_rows(analysis), key=lambda r: -r.flops)[:top]
    modules = {row.module_id: values(row.module_id, row.flops, row.io_bytes) for row in rows}
    setup = None
    if device is not None:
        setup = _model.setup_words(variant, device, gpus, attention_kernel)
    return BreakdownData(run=run, setup=setup, components=components, totals=totals, modules=modules)


def breakdown_figure(
    variant: str = "t2v-14b",
    profile: str = "wan2-1-official-720p",
    *,
    overrides: Mapping[str, int] | None = None,
    device: str | None = None,
    gpus: int = 1,
    implementation: str = "official",
    attention_kernel: str = "fa2",
    top: int = TOP_MODULES,
) -> Figure:
    """Left: each component's share of the run's FLOPs, bytes and (with a device) time, stacked;
    right: the top modules' shares of the same metrics."""
    data = breakdown_data(
        variant,
        profile,
        overrides=overrides,
        device=device,
        gpus=gpus,
        implementation=implementation,
        attention_kernel=attention_kernel,
        top=top,
    )
    metrics = list(data.totals)
    figure = ModelFigure(figsize=(13, 5.6), layout="constrained")
    stacked, modules = figure.subplots(1, 2, width_ratios=(1, 1.6))
    bottoms = [0.0] * len(metrics)
    labels = [f"{METRIC_LABELS[m]}\n{format_si(data.totals[m], METRIC_UNITS[m])}" for m in metrics]
    palette = colormaps["Set2"]
    for index, (component, row) in enumerate(data.components.items()):
        shares = [100 * row[m] / data.totals[m] if data.totals[m] else 0.0 for m in metrics]
        bars = stacked.bar(
            labels,
            shares,
            bottom=bottoms,
            label=component,
            width=0.6,
            color=palette(index),
            edgecolor="white",
            linewidth=0.5,
        )
        stacked.bar_label(
            bars,
            labels=[f"{s:.1f}%" if s >= SEGMENT_LABEL_SHARE else "" for s in shares],
            label_type="center",
            fontsize="small",
        )
        bottoms = [b + s for b, s in zip(bottoms, shares, strict=True)]
    stacked.set_ylabel("share of the run (%)")
    stacked.set_ylim(0, 100)
    stacked.set_title("by component")
    stacked.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=3, fontsize="small")

    names = list(data.modules)
    width = 0.8 / len(metrics)
    for index, metric in enumerate(metrics):
        positions = [i + (index - (len(metrics) - 1) / 2) * width for i in range(len(names))]
        shares = [100 * data.modules[n][metric] / data.totals[metric] for n in names]
        modules.barh(positions, shares, height=width, label=METRIC_LABELS[metric])
    modules.set_yticks(range(len(names)), names, fontsize="small")
    modules.invert_yaxis()
    modules.set_xlabel("share of the run (%)")
    modules.set_title(f"top {len(names)} modules by FLOPs")
    modules.legend(loc="lower right")
    modules.grid(axis="x", alpha=0.3)
    deployment = data.setup or "no device (FLOPs and bytes only)"
    figure.suptitle(f"Where the work goes — {data.run.words}\n{deployment}")
    return figure
