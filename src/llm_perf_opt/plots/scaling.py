"""How a run's cost grows: FLOPs and time against frames and against resolution, log–log, with the
fitted exponent and the closed form's leading term in the legend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt
import sympy
from attrs import frozen
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.plots import _model
from llm_perf_opt.plots._common import FigureRun, ModelFigure, figure_run
from llm_perf_opt.symbolic.compiler import compile_tree
from llm_perf_opt.symbolic.formula import formula
from llm_perf_opt.symbolic.symbols import F as FRAMES
from llm_perf_opt.symbolic.symbols import H as HEIGHT
from llm_perf_opt.symbolic.symbols import W as WIDTH
from llm_perf_opt.wan2_1.implementation import get_implementation
from llm_perf_opt.wan2_1.pipeline import pipeline_tree

__all__ = [
    "DEFAULT_FRAMES",
    "DEFAULT_HEIGHTS",
    "ScalingCurve",
    "fitted_exponent",
    "leading_term",
    "scaling_curves",
    "scaling_figure",
]

FloatArray = npt.NDArray[np.float64]

DEFAULT_FRAMES: Final = (9, 17, 33, 49, 81, 129, 193, 257, 321, 481, 641)
"""Frame counts of the frames axis (each 4k + 1), spread evenly on a log axis."""

DEFAULT_HEIGHTS: Final = tuple(144 * k for k in range(2, 11))
"""Heights of the resolution axis at 16:9 (width = 16·height/9, both multiples of 16): 288…1440."""

ASPECT_WIDTH: Final = 16
ASPECT_HEIGHT: Final = 9
PIPELINE_ROOT: Final = "pipeline"


def leading_term(expr: sympy.Expr, symbol: sympy.Symbol) -> sympy.Expr:
    """The highest-degree term of ``expr`` in ``symbol`` once every floor and ceiling is replaced
    by its argument (the large-size limit: ``⌊x/4⌋ ≈ x/4``), coefficients as floats."""
    smooth = expr.replace(
        lambda e: isinstance(e, sympy.floor | sympy.ceiling),
        lambda e: e.args[0],
    )
    polynomial = sympy.Poly(sympy.expand(smooth), symbol)
    degree = polynomial.degree()
    return sympy.Float(polynomial.coeff_monomial(symbol**degree), 4) * symbol**degree


def fitted_exponent(x: Sequence[float] | FloatArray, y: Sequence[float] | FloatArray) -> float:
    """The slope of a least-squares line through ``(log x, log y)``."""
    slope, _ = np.polyfit(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)), 1)
    return float(slope)


@frozen(kw_only=True)
class ScalingCurve:
    """One curve of the scaling figure.

    Attributes:
        axis: ``frames`` or ``height``.
        metric: ``flops`` or ``seconds``.
        x: the swept values.
        y: the metric at each value (whole run).
        exponent: the fitted log–log slope.
        leading: the closed form's leading term in the swept symbol (FLOPs only).
    """

    axis: str
    metric: str
    x: FloatArray
    y: FloatArray
    exponent: float
    leading: sympy.Expr | None


def _check_sweep(name: str, values: Sequence[int], step: int) -> tuple[int, ...]:
    swept = tuple(values)
    if len(swept) < 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in swept):
        raise LlmPerfOptError(f"{name}: expected at least two positive integers, got {list(swept)!r}")
    if any(v % step for v in swept):
        raise LlmPerfOptError(f"{name}: every value must be a multiple of {step}, got {list(swept)!r}")
    return swept


def scaling_curves(
    variant: str = "t2v-14b",
    profile: str = "wan2-1-official-720p",
    *,
    overrides: Mapping[str, int] | None = None,
    device: str = "h100-sxm",
    gpus: int = 1,
    implementation: str = "official",
    attention_kernel: str = "fa2",
    frames: Sequence[int] = DEFAULT_FRAMES,
    heights: Sequence[int] = DEFAULT_HEIGHTS,
) -> tuple[FigureRun, tuple[ScalingCurve, ...]]:
    """FLOPs and seconds of whole runs against frames (at the profile's size) and against height at
    16:9 (at the profile's frames)."""
    run = figure_run(variant, profile, overrides)
    frame_values = _check_sweep("frames", frames, 1)
    if any((f - 1) % 4 for f in frame_values):
        raise LlmPerfOptError(f"frames: every value must be 4k + 1, got {list(frame_values)!r}")
    height_values = _check_sweep("heights", heights, ASPECT_HEIGHT * 16)
    tree = pipeline_tree(run.variant, get_implementation(implementation), True)
    flops_expr = formula(tree, PIPELINE_ROOT, "flops")
    evaluator = compile_tree(tree, (PIPELINE_ROOT,))
    base = run.workload
    fixed = {s: v for s, v in base.subs().items() if s not in (FRAMES, HEIGHT, WIDTH)}
    frame_x = np.asarray(frame_values, dtype=np.int64)
    height_x = np.asarray(height_values, dtype=np.int64)
    sweeps = {
        "frames": (
            frame_x,
            attrs.evolve(base, frames=frame_x),
            flops_expr.subs(fixed).subs({HEIGHT: base.height, WIDTH: base.width}),
            FRAMES,
        ),
        "height": (
            height_x,
            attrs.evolve(base, height=height_x, width=height_x * ASPECT_WIDTH // ASPECT_HEIGHT),
            flops_expr.subs(fixed).subs({FRAMES: base.frames, WIDTH: HEIGHT * ASPECT_WIDTH / ASPECT_HEIGHT}),
            HEIGHT,
        ),
    }
    curves = []
    for axis, (x, workload, expr, symbol) in sweeps.items():
        flops = np.asarray(evaluator.evaluate(workload)[PIPELINE_ROOT, "flops"], dtype=np.float64)
        seconds = _model.total_seconds_grid(variant, implementation, device, gpus, workload, attention_kernel)
        xs = x.astype(np.float64)
        curves.append(
            ScalingCurve(
                axis=axis,
                metric="flops",
                x=xs,
                y=flops,
                exponent=fitted_exponent(xs, flops),
                leading=leading_term(expr, symbol),
            )
        )
        curves.append(
            ScalingCurve(
                axis=axis,
                metric="seconds",
                x=xs,
                y=seconds,
                exponent=fitted_exponent(xs, seconds),
                leading=None,
            )
        )
    return run, tuple(curves)


def _latex_term(term: sympy.Expr, letter: str) -> str:
    coefficient, power = term.as_coeff_Mul()
    mantissa, exponent = f"{float(coefficient):.3e}".split("e")
    (symbol,) = power.free_symbols
    power_text = sympy.latex(power, symbol_names={symbol: letter})
    return f"${mantissa}\\times10^{{{int(exponent)}}}\\,{power_text}$"


def _ticks(values: FloatArray, most: int = 8) -> list[float]:
    """The swept values as tick positions, every other one when there are more than ``most``."""
    step = 1 if len(values) <= most else 2
    return [float(v) for v in values[::step]]


def scaling_figure(
    variant: str = "t2v-14b",
    profile: str = "wan2-1-official-720p",
    *,
    overrides: Mapping[str, int] | None = None,
    device: str = "h100-sxm",
    gpus: int = 1,
    implementation: str = "official",
    attention_kernel: str = "fa2",
    frames: Sequence[int] = DEFAULT_FRAMES,
    heights: Sequence[int] = DEFAULT_HEIGHTS,
) -> Figure:
    """A 2 × 2 grid: FLOPs (top) and time (bottom) against frames (left) and height at 16:9 (right)."""
    run, curves = scaling_curves(
        variant,
        profile,
        overrides=overrides,
        device=device,
        gpus=gpus,
        implementation=implementation,
        attention_kernel=attention_kernel,
        frames=frames,
        heights=heights,
    )
    figure = ModelFigure(figsize=(12, 8.5), layout="constrained")
    axes = figure.subplots(2, 2)
    columns = {"frames": 0, "height": 1}
    rows = {"flops": 0, "seconds": 1}
    x_labels = {
        "frames": f"frames (at {run.profile.width}×{run.profile.height})",
        "height": f"height in pixels (16:9, {run.profile.num_frames} frames)",
    }
    symbols = {"frames": "F", "height": "H"}
    for curve in curves:
        ax = axes[rows[curve.metric], columns[curve.axis]]
        power = f"{symbols[curve.axis]}^{{{curve.exponent:.2f}}}"
        label = f"model, fitted slope {curve.exponent:.2f}: $\\propto {power}$"
        ax.loglog(curve.x, curve.y, "o-", markersize=4, label=label)
        if curve.leading is not None:
            leading = sympy.lambdify(tuple(curve.leading.free_symbols), curve.leading, "numpy")
            ax.loglog(
                curve.x,
                np.broadcast_to(leading(curve.x), curve.x.shape),
                "--",
                color="gray",
                linewidth=1,
                label=f"closed form's leading term {_latex_term(curve.leading, symbols[curve.axis])}",
            )
        ax.xaxis.set_major_locator(FixedLocator(_ticks(curve.x)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(x_labels[curve.axis])
        ax.set_ylabel("FLOPs per run (FLOP)" if curve.metric == "flops" else "time per run (s)")
        ax.grid(which="both", alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    deployment = _model.setup_words(variant, device, gpus, attention_kernel)
    figure.suptitle(f"How the cost grows — {run.words} (swept one axis at a time)\ntime: {deployment}")
    return figure
