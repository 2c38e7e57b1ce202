"""How good the time model is: predicted against published seconds for every calibration record,
with the ±10 % and ±25 % bands."""

from __future__ import annotations

from typing import Final

import numpy as np
from matplotlib.figure import Figure

from llm_perf_opt.plots import _model
from llm_perf_opt.plots._common import ModelFigure

__all__ = ["BANDS", "calibration_figure"]

BANDS: Final = (0.10, 0.25)
"""Relative error bands drawn around the diagonal."""


def calibration_figure() -> Figure:
    """Log–log predicted against measured seconds; fitted points filled, the others hollow, each
    labelled with its id; the title carries the MAPE of the fitted points."""
    points = _model.calibration_points()
    fitted = [p for p in points if p.fitted]
    mape = 100 * sum(abs(p.predicted_seconds / p.measured_seconds - 1) for p in fitted) / len(fitted)
    within = sum(abs(p.predicted_seconds / p.measured_seconds - 1) <= BANDS[0] for p in fitted)
    figure = ModelFigure(figsize=(9, 8), layout="constrained")
    ax = figure.subplots()
    values = [v for p in points for v in (p.measured_seconds, p.predicted_seconds)]
    span = np.geomspace(min(values) / 1.6, max(values) * 1.6, 100)
    ax.plot(span, span, color="black", linewidth=1, label="prediction = measurement")
    for band, alpha in zip(BANDS, (0.25, 0.12), strict=True):
        ax.fill_between(
            span,
            span * (1 - band),
            span * (1 + band),
            color="tab:green",
            alpha=alpha,
            linewidth=0,
            label=f"±{band:.0%}",
        )
    for group, marker, face in ((True, "o", "tab:blue"), (False, "s", "none")):
        chosen = [p for p in points if p.fitted is group]
        ax.scatter(
            [p.measured_seconds for p in chosen],
            [p.predicted_seconds for p in chosen],
            marker=marker,
            s=45,
            facecolors=face,
            edgecolors="tab:blue",
            zorder=3,
            label="fitted" if group else "not fitted (torch.compile)",
        )
    placed: list[tuple[float, float]] = []
    for point in points:
        x, y = np.log10(point.measured_seconds), np.log10(point.predicted_seconds)
        crowded = any(abs(x - px) < 0.06 and abs(y - py) < 0.06 for px, py in placed)
        placed.append((x, y))
        if not point.fitted:
            offset, align = (-6, 4), "right"
        else:
            offset, align = ((6, 6) if crowded else (6, -6)), "left"
        ax.annotate(
            point.id,
            (point.measured_seconds, point.predicted_seconds),
            xytext=offset,
            textcoords="offset points",
            ha=align,
            fontsize="x-small",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(span[0], span[-1])
    ax.set_ylim(span[0], span[-1])
    ax.set_aspect("equal")
    ax.set_xlabel("published time (s)")
    ax.set_ylabel("predicted time (s)")
    ax.grid(which="both", alpha=0.3)
    ax.legend(loc="upper left")
    figure.suptitle(
        "Time model against published Wan2.1 timings (calibration records C1–C8)\n"
        f"each record's own workload and deployment; MAPE {mape:.1f}% over the {len(fitted)} fitted "
        f"points, {within} within ±{BANDS[0]:.0%}"
    )
    return figure
