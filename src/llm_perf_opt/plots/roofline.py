"""A device's roofline: its compute roofs and its bandwidth roof, with each op class of one
transformer forward placed at its arithmetic intensity and the rate the model predicts for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
from matplotlib.figure import Figure

from llm_perf_opt.plots import _model
from llm_perf_opt.plots._common import ModelFigure, figure_run

__all__ = ["roofline_figure"]

INTENSITY_RANGE: Final = (0.05, 1e5)
"""FLOP per byte spanned by the x axis."""

TERA: Final = 1e12


def roofline_figure(
    variant: str = "t2v-14b",
    profile: str = "wan2-1-official-720p",
    *,
    overrides: Mapping[str, int] | None = None,
    device: str = "h100-sxm",
    implementation: str = "official",
    attention_kernel: str = "fa2",
) -> Figure:
    """Log–log FLOP/s against FLOP/byte: the bandwidth roof, the compute roof of every precision the
    forward runs at, and one point per (op class, precision) at the model's predicted rate."""
    run = figure_run(variant, profile, overrides)
    points = _model.op_class_points(variant, implementation, device, run.workload, attention_kernel)
    device_roofs = _model.roofs(device)
    figure = ModelFigure(figsize=(10, 6.5), layout="constrained")
    ax = figure.subplots()
    intensity = np.geomspace(*INTENSITY_RANGE, 400)
    ax.loglog(
        intensity,
        intensity * device_roofs.bandwidth / TERA,
        color="black",
        linewidth=1,
        label=f"memory bandwidth {device_roofs.bandwidth / 1e12:.2f} TB/s",
    )
    for precision in sorted({p.precision for p in points}, key=lambda p: -device_roofs.peak_flops[p]):
        peak = device_roofs.peak_flops[precision]
        ridge = peak / device_roofs.bandwidth
        ax.loglog(
            intensity,
            np.minimum(intensity * device_roofs.bandwidth, peak) / TERA,
            linestyle="--",
            linewidth=1.2,
            label=f"{precision} peak {peak / TERA:.1f} TFLOP/s (ridge {ridge:.0f} FLOP/B)",
        )
    total = sum(p.seconds for p in points)
    for point in points:
        ax.loglog(
            point.intensity,
            point.achieved_flops / TERA,
            "o",
            markersize=9,
            label=(
                f"{point.op_class} ({point.precision}): {point.intensity:.1f} FLOP/B, "
                f"{point.achieved_flops / TERA:.1f} TFLOP/s, {100 * point.seconds / total:.1f}% of time"
            ),
        )
    ax.set_xlabel("arithmetic intensity (FLOP per byte moved)")
    ax.set_ylabel("rate (TFLOP/s)")
    ax.set_xlim(*INTENSITY_RANGE)
    lowest = min(min(p.achieved_flops for p in points), INTENSITY_RANGE[0] * device_roofs.bandwidth)
    ax.set_ylim(lowest / TERA / 2, 3 * max(device_roofs.peak_flops.values()) / TERA)
    ax.grid(which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    figure.suptitle(
        f"Roofline of one transformer forward — {run.words}\n"
        f"{device_roofs.display_name}, {attention_kernel}, {implementation} profile; "
        "points at the model's predicted rate"
    )
    return figure
