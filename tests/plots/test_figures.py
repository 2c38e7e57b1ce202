"""Each figure kind draws the library's own numbers: bar heights, line data and point positions
read back from the Axes equal the formulas and the time model evaluated independently."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sympy
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from llm_perf_opt.calibration import calibration_table
from llm_perf_opt.deployment import run_model
from llm_perf_opt.hardware.accelerators import get_accelerator
from llm_perf_opt.models import build_deployment
from llm_perf_opt.plots import (
    _model,
    breakdown_figure,
    calibration_figure,
    deployments_figure,
    multi_gpu_figure,
    roofline_figure,
    save_figure,
    scaling_figure,
)
from llm_perf_opt.plots._model import op_class_points
from llm_perf_opt.plots.scaling import fitted_exponent, leading_term, scaling_curves
from llm_perf_opt.symbolic.compiler import compile_tree
from llm_perf_opt.symbolic.symbols import F, Workload
from llm_perf_opt.wan2_1.evaluate import dit_tree, evaluate_dit
from llm_perf_opt.wan2_1.implementation import OFFICIAL
from llm_perf_opt.wan2_1.pipeline import pipeline_tree
from llm_perf_opt.wan2_1.variants import get_variant

VARIANT = "t2v-1.3b"
PROFILE = "wan2-1-official-480p"
WORKLOAD = Workload(batch=1, frames=81, height=480, width=832, steps=50, text_len=512)
FORWARDS = 2 * WORKLOAD.steps  # classifier-free guidance: two transformer forwards per step


def _run(device: str = "h100", gpus: int = 1, **options: object) -> dict[str, float]:
    """Every output of the compiled whole-run model of the test variant at the test workload."""
    return run_model(build_deployment(VARIANT, accelerator=device, gpus=gpus, **options)).evaluate_point(
        WORKLOAD
    )


def _bars(ax: object) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]  # type: ignore[attr-defined]


def _pipeline_exact() -> dict[str, dict[str, int]]:
    tree = pipeline_tree(get_variant(VARIANT), OFFICIAL, True)
    return compile_tree(tree, ("pipeline", "diffusion")).evaluate_exact(WORKLOAD)


def _written(figure: Figure, tmp_path: object, name: str) -> None:
    """The figure writes a non-empty PNG and SVG."""
    for suffix in ("png", "svg"):
        path = save_figure(figure, tmp_path / f"{name}.{suffix}")  # type: ignore[operator]
        assert path.stat().st_size > 1000


@pytest.fixture(scope="module")
def breakdown() -> Figure:
    return breakdown_figure(VARIANT, PROFILE, device="h100", gpus=1, top=5)


def test_breakdown_stacks_equal_the_formulas_and_the_time_model(breakdown: Figure, tmp_path: object) -> None:
    """The stacked shares are each component's FLOPs, bytes and seconds over the run's, from the
    transformer's own evaluation and the whole-run time model."""
    _written(breakdown, tmp_path, "breakdown")
    stacked, modules = breakdown.axes
    exact = _pipeline_exact()
    forward = evaluate_dit(VARIANT, frames=81, height=480, width=832).metrics
    total_flops = exact["pipeline"]["flops"]
    assert exact["diffusion"]["flops"] == FORWARDS * forward["diffusion"]["flops"]
    legend = [t.get_text() for t in stacked.get_legend().get_texts()]
    diffusion = stacked.containers[legend.index("diffusion")]
    flops_bar, bytes_bar, time_bar = diffusion.patches
    assert flops_bar.get_height() == pytest.approx(100 * exact["diffusion"]["flops"] / total_flops, rel=1e-12)
    moved = exact["pipeline"]["bytes_read"] + exact["pipeline"]["bytes_written"]
    diffusion_moved = exact["diffusion"]["bytes_read"] + exact["diffusion"]["bytes_written"]
    assert bytes_bar.get_height() == pytest.approx(100 * diffusion_moved / moved, rel=1e-12)
    run = _run()
    assert time_bar.get_height() == pytest.approx(100 * run["module.diffusion"] / run["total"], rel=1e-9)
    # every stack reaches 100 %
    for index in range(3):
        assert sum(c.patches[index].get_height() for c in stacked.containers) == pytest.approx(100)
    # the top module: all 30 blocks' self-attention, from one forward's per-block figures
    self_attn = sum(
        value["flops"]
        for key, value in forward.items()
        if re.fullmatch(r"diffusion\.blocks\.\d+\.self_attn", key)
    )
    labels = [t.get_text() for t in modules.get_yticklabels()]
    assert labels[0] == "diffusion.blocks.*.self_attn"
    flops_row = modules.containers[0].patches[0]
    assert flops_row.get_width() == pytest.approx(100 * FORWARDS * self_attn / total_flops, rel=1e-12)
    attention_seconds = sum(
        value for key, value in run.items() if re.fullmatch(r"module\.diffusion\.blocks\.\d+\.self_attn", key)
    )
    time_row = modules.containers[2].patches[0]
    assert time_row.get_width() == pytest.approx(100 * attention_seconds / run["total"], rel=1e-9)
    assert "h100-sxm × 1" in breakdown._suptitle.get_text()
    assert "81 frames at 832×480, 50 steps" in breakdown._suptitle.get_text()


def test_breakdown_without_a_device_has_no_time_bars() -> None:
    """Without a device the figure shows FLOPs and bytes only, and says so."""
    figure = breakdown_figure(VARIANT, "wan2-1-ci-tiny", top=3)
    stacked = figure.axes[0]
    assert [t.get_text().split("\n")[0] for t in stacked.get_xticklabels()] == ["FLOPs", "bytes moved"]
    assert "no device" in figure._suptitle.get_text()


def test_leading_term_drops_floors_and_keeps_the_top_power() -> None:
    """3·⌊F/4⌋² + F leads with 3/16·F² once the floor is smoothed."""
    term = leading_term(3 * sympy.floor(F / 4) ** 2 + F, F)
    assert float(term.coeff(F, 2)) == pytest.approx(0.1875)
    assert term.as_poly(F).degree() == 2 and len(term.as_poly(F).terms()) == 1
    assert fitted_exponent([1, 10, 100], [3, 300, 30000]) == pytest.approx(2.0)


def test_scaling_lines_equal_exact_flops_and_the_time_model(tmp_path: object) -> None:
    """Each line's points are whole-run FLOPs (exact formulas) and seconds (time model); the legend's
    leading term is the large-F limit of the FLOPs."""
    frames = (17, 81, 161)
    heights = (288, 576)
    figure = scaling_figure(VARIANT, PROFILE, device="h100", gpus=1, frames=frames, heights=heights)
    _written(figure, tmp_path, "scaling")
    flops_frames, flops_height, time_frames, time_height = figure.axes
    tree = pipeline_tree(get_variant(VARIANT), OFFICIAL, True)
    evaluator = compile_tree(tree, ("pipeline",))
    timing = run_model(build_deployment(VARIANT, accelerator="h100", gpus=1))
    line = flops_frames.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), frames)
    for f, y in zip(frames, line.get_ydata(), strict=True):
        point = Workload(batch=1, frames=f, height=480, width=832, steps=50, text_len=512)
        assert y == evaluator.evaluate_exact(point)["pipeline"]["flops"]
    for f, y in zip(frames, time_frames.get_lines()[0].get_ydata(), strict=True):
        point = Workload(batch=1, frames=f, height=480, width=832, steps=50, text_len=512)
        assert y == pytest.approx(timing.evaluate_point(point)["total"], rel=1e-12)
    for h, y in zip(heights, flops_height.get_lines()[0].get_ydata(), strict=True):
        point = Workload(batch=1, frames=81, height=h, width=h * 16 // 9, steps=50, text_len=512)
        assert y == evaluator.evaluate_exact(point)["pipeline"]["flops"]
    for h, y in zip(heights, time_height.get_lines()[0].get_ydata(), strict=True):
        point = Workload(batch=1, frames=81, height=h, width=h * 16 // 9, steps=50, text_len=512)
        assert y == pytest.approx(timing.evaluate_point(point)["total"], rel=1e-12)
    _, curves = scaling_curves(VARIANT, PROFILE, device="h100", frames=frames, heights=heights)
    leading = next(c.leading for c in curves if c.axis == "frames" and c.metric == "flops")
    far = 4 * 10**6 + 1
    huge = Workload(batch=1, frames=far, height=480, width=832, steps=50, text_len=512)
    limit = evaluator.evaluate_exact(huge)["pipeline"]["flops"] / far**2
    assert float(leading.coeff(F, 2)) == pytest.approx(limit, rel=1e-4)
    assert "F^2" in flops_frames.get_legend().get_texts()[1].get_text().replace("{", "").replace("}", "")
    slope = fitted_exponent(np.array(frames, dtype=float), line.get_ydata())
    assert f"fitted slope {slope:.2f}" in flops_frames.get_legend().get_texts()[0].get_text()


def test_roofline_points_add_up_to_the_forward(tmp_path: object) -> None:
    """The op-class points hold all of one forward's FLOPs, bytes and modelled seconds, and sit on
    the figure at their intensity and predicted rate under the device's roofs."""
    figure = roofline_figure(VARIANT, PROFILE, device="h100")
    _written(figure, tmp_path, "roofline")
    points = op_class_points(VARIANT, "official", "h100", WORKLOAD, "fa2")
    forward = evaluate_dit(VARIANT, frames=81, height=480, width=832).metrics["diffusion"]
    tensor = [p for p in points if p.op_class != "elementwise"]
    assert sum(p.work_flops for p in tensor) == pytest.approx(forward["flops"], rel=1e-12)
    tree = dit_tree(get_variant(VARIANT), OFFICIAL)
    # the scale-and-softmax work inside fused attention is priced by the attention kernel
    fused = sum(
        int(sympy.sympify(node.calls * cost.vector_flops).subs(WORKLOAD.subs()))
        for node in tree
        for (primitive, _), cost in node.own_breakdown.items()
        if primitive.startswith("_scaled_dot_product_")
    )
    elementwise = [p for p in points if p.op_class == "elementwise"]
    assert fused > 0
    assert sum(p.work_flops for p in elementwise) == pytest.approx(forward["vector_flops"] - fused, rel=1e-12)
    moved = forward["bytes_read"] + forward["bytes_written"]
    assert sum(p.traffic_bytes for p in points) == pytest.approx(moved, rel=1e-12)
    # one GPU without offload: the transformer's time is its forwards' roofline time and nothing else
    seconds = _run(offload="none")["module.diffusion"] / FORWARDS
    assert sum(p.seconds for p in points) == pytest.approx(seconds, rel=1e-9)
    ax = figure.axes[0]
    markers = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(markers) == len(points)
    for line, point in zip(markers, points, strict=True):
        assert line.get_xdata()[0] == pytest.approx(point.intensity)
        assert line.get_ydata()[0] == pytest.approx(point.achieved_flops / 1e12)
    bandwidth = ax.get_lines()[0]
    ratio = bandwidth.get_ydata() / bandwidth.get_xdata()
    np.testing.assert_allclose(ratio, get_accelerator("h100").memory_bandwidth / 1e12)
    matmul = next(p for p in points if p.op_class == "matmul" and p.precision == "bf16")
    assert matmul.achieved_flops <= get_accelerator("h100").peak_flops("bf16")


def test_multi_gpu_lines_equal_the_run_time_per_count(tmp_path: object) -> None:
    """Time and speed-up per GPU count are the whole-run model's; the link bars are its loads."""
    counts = (1, 2, 4)
    figure = multi_gpu_figure(VARIANT, PROFILE, device="h100", gpu_counts=counts)
    _written(figure, tmp_path, "multi_gpu")
    time_ax, speed_ax, link_ax = figure.axes
    values = [_run(gpus=g) for g in counts]
    totals = [v["total"] for v in values]
    np.testing.assert_allclose(time_ax.get_lines()[0].get_ydata(), totals, rtol=1e-12)
    np.testing.assert_allclose(
        speed_ax.get_lines()[0].get_ydata(), [totals[0] / t for t in totals], rtol=1e-12
    )
    np.testing.assert_allclose(speed_ax.get_lines()[1].get_ydata(), counts)
    gpu_bars, host_bars = link_ax.containers[0].patches, link_ax.containers[1].patches
    for value, gpu_bar, host_bar in zip(values, gpu_bars, host_bars, strict=True):
        loads = sum(v for name, v in value.items() if name.startswith("load."))
        assert gpu_bar.get_height() + host_bar.get_height() == pytest.approx(100 * loads / value["total"])
    assert gpu_bars[0].get_height() == 0  # one GPU: no collectives
    assert gpu_bars[2].get_height() > gpu_bars[1].get_height() > 0


def test_deployments_bars_equal_time_and_memory_per_setup(tmp_path: object) -> None:
    """Each device's bars are the whole-run model's seconds and peak memory per GPU for each GPU
    count, and the capacity line is the device's memory."""
    devices, counts = ("h100-sxm", "rtx4090"), (1, 2)
    figure = deployments_figure(VARIANT, PROFILE, devices=devices, gpu_counts=counts)
    _written(figure, tmp_path, "deployments")
    time_ax, memory_ax = figure.axes
    for index, gpus in enumerate(counts):
        for device, time_bar, memory_bar in zip(
            devices, time_ax.containers[index].patches, memory_ax.containers[index].patches, strict=True
        ):
            run = _run(device, gpus)
            assert time_bar.get_height() == pytest.approx(run["total"], rel=1e-12)
            assert memory_bar.get_height() == pytest.approx(run["peak_memory"] / 1e9, rel=1e-12)
    (capacity,) = memory_ax.collections
    tops = [segment[0][1] for segment in capacity.get_segments()]
    assert tops == pytest.approx([get_accelerator(d).memory_bytes / 1e9 for d in devices])


def test_calibration_points_are_the_calibration_table(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every row of the calibration table is one point at (measured, predicted), and the
    title's MAPE is the table's."""
    table = calibration_table()
    monkeypatch.setattr(_model, "calibration_table", lambda: table)  # computed once for both sides
    _model.calibration_points.cache_clear()
    figure = calibration_figure()
    _written(figure, tmp_path, "calibration")
    rows = table.rows
    ax = figure.axes[0]
    drawn = np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])
    expected = np.array([(r.record.measured_seconds, r.predicted_seconds) for r in rows])
    assert sorted(map(tuple, drawn)) == sorted(map(tuple, expected))
    assert f"MAPE {table.mape:.1f}%" in figure._suptitle.get_text()
    assert {t.get_text() for t in ax.texts} == {r.record.id for r in rows}
