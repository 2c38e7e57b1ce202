"""The compiled evaluators: exact integers, float64 grids, caching, generated source."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic import METRICS, Module, Workload, build_tree, compile_tree
from llm_perf_opt.symbolic.dtypes import BF16, FP4
from llm_perf_opt.symbolic.primitives import OpCall, mm
from llm_perf_opt.symbolic.symbols import WORKLOAD_SYMBOLS, F, H

from .toy import toy_tree

workloads = st.builds(
    Workload,
    batch=st.integers(1, 8),
    frames=st.integers(1, 241),
    height=st.integers(1, 2160),
    width=st.integers(1, 3840),
    steps=st.integers(1, 100),
    text_len=st.integers(0, 1024),
)


def _exact(workload: Workload) -> dict[str, dict[str, int]]:
    return compile_tree(toy_tree()).evaluate_exact(workload)


@settings(max_examples=60, deadline=None)
@given(workloads)
def test_parent_is_own_plus_children_for_every_metric(workload: Workload) -> None:
    """Evaluated exactly, each parent equals its own ops (over its calls) plus the sum of its children."""
    tree = toy_tree()
    values = _exact(workload)
    subs = workload.subs()
    for node in tree:
        if not node.children:
            continue
        own = node.own.scaled(node.calls)
        for metric in METRICS:
            own_value = int(getattr(own, metric).subs(subs))
            children = sum(values[child][metric] for child in node.children)
            assert values[node.id][metric] == own_value + children, (node.id, metric)


@settings(max_examples=40, deadline=None)
@given(workloads)
def test_exact_evaluation_equals_subs(workload: Workload) -> None:
    """The exact evaluator gives Python ints equal to substituting the workload into each expression."""
    tree = toy_tree()
    values = _exact(workload)
    subs = workload.subs()
    for module_id in (
        "toy",
        "toy.denoiser",
        "toy.denoiser.blocks",
        "toy.denoiser.blocks.1.attn",
        "toy.decoder",
    ):
        for metric, expr in tree[module_id].aggregate:
            value = values[module_id][metric]
            assert type(value) is int
            assert value == expr.subs(subs), (module_id, metric)


@settings(max_examples=25, deadline=None)
@given(st.lists(workloads, min_size=1, max_size=20))
def test_grid_evaluation_equals_exact(points: list[Workload]) -> None:
    """Evaluating arrays of workloads agrees with the exact ints to 1e-12, finite and ≥ 0 everywhere."""
    evaluator = compile_tree(toy_tree())
    grid = Workload(**{s.name: np.array([w.subs()[s] for w in points]) for s in WORKLOAD_SYMBOLS})
    result = evaluator.evaluate(grid)
    assert result.shape == (len(points),)
    for i, point in enumerate(points):
        exact = evaluator.evaluate_exact(point)
        for module_id, metrics in exact.items():
            for metric, value in metrics.items():
                got = result[module_id, metric]
                assert got.shape == (len(points),)
                assert np.isfinite(got[i]) and got[i] >= 0
                assert got[i] == pytest.approx(value, rel=1e-12, abs=0), (module_id, metric)


@settings(max_examples=30, deadline=None)
@given(workloads, st.integers(1, 100))
def test_params_do_not_scale_with_calls(workload: Workload, steps: int) -> None:
    """Params and weight bytes do not depend on steps (calls); the denoiser's FLOPs are linear in them."""
    one = _exact(evolve(workload, steps=1))
    many = _exact(evolve(workload, steps=steps))
    for module_id in ("toy", "toy.denoiser", "toy.denoiser.blocks.0.mlp"):
        assert many[module_id]["params"] == one[module_id]["params"] > 0
        assert many[module_id]["weight_bytes"] == one[module_id]["weight_bytes"]
    assert many["toy.denoiser"]["flops"] == steps * one["toy.denoiser"]["flops"]


def test_broadcast_shapes_and_constant_metrics() -> None:
    """Arrays of any broadcastable shapes give full-shape results; constants are read-only broadcast views."""
    evaluator = compile_tree(toy_tree())
    workload = Workload(
        batch=np.array([1, 2]).reshape(2, 1, 1),
        frames=np.arange(1, 82, 4).reshape(1, 21, 1),
        height=480,
        width=np.array([832, 1280]).reshape(1, 1, 2),
        steps=50,
        text_len=512,
    )
    result = evaluator.evaluate(workload)
    assert result.shape == (2, 21, 2)
    params = result["toy", "params"]
    assert params.shape == (2, 21, 2) and params.dtype == np.float64
    assert not params.flags.writeable
    assert np.all(
        params
        == compile_tree(toy_tree()).evaluate_exact(
            Workload(batch=1, frames=1, height=1, width=1, steps=1, text_len=0)
        )["toy"]["params"]
    )
    assert set(result.metrics("toy")) == set(METRICS)


def test_workloads_that_do_not_broadcast_are_an_error() -> None:
    """Arrays that do not broadcast together are rejected with their shapes."""
    workload = Workload(batch=np.ones(2), frames=np.ones(3), height=1, width=1, steps=1, text_len=0)
    with pytest.raises(LlmPerfOptError, match="do not broadcast"):
        compile_tree(toy_tree()).evaluate(workload)


def test_repeated_blocks_are_one_expression() -> None:
    """The N blocks of a repetition map to the same evaluator outputs and expressions are unique."""
    evaluator = compile_tree(toy_tree())
    assert evaluator.slots["toy.denoiser.blocks.0.attn"] == evaluator.slots["toy.denoiser.blocks.2.attn"]
    assert len(set(evaluator.expressions)) == len(evaluator.expressions)
    result = evaluator.evaluate(Workload(batch=1, frames=81, height=480, width=832, steps=50, text_len=512))
    assert result["toy.denoiser.blocks.0.mlp", "flops"] is result["toy.denoiser.blocks.1.mlp", "flops"]


def test_compile_is_cached_and_source_inspectable() -> None:
    """compile_tree returns the same evaluator for the same tree, with readable generated source."""
    tree = toy_tree()
    assert compile_tree(tree) is compile_tree(tree)
    source = compile_tree(tree).source
    assert source.startswith(
        "def _lambdifygenerated(batch, frames, height, width, steps, text_len, "
        "attention_density, reused_steps, guided_fraction):"
    )
    assert "numpy.floor((frames - 1)/4)" in source
    assert "Fraction(" not in source
    assert "def " in compile_tree(tree).exact_source


def test_exact_results_are_ints_beyond_float_precision() -> None:
    """Exact evaluation keeps every digit where float64 cannot (values above 2⁵³)."""
    op = mm(F * 10**9 + 1, 3, H * 10**9 + 1, dtype=BF16)
    tree = build_tree(Module(name="m", class_name="M", stage="other", ops=(op,)), "m")
    value = compile_tree(tree).evaluate_exact(
        Workload(batch=1, frames=10**6, height=10**6 + 1, width=1, steps=1, text_len=0)
    )["m"]["flops"]
    assert value == 2 * (10**15 + 1) * 3 * ((10**6 + 1) * 10**9 + 1)
    assert value > 2**53


def test_floor_of_a_non_power_of_two_is_exact_on_grids() -> None:
    """⌊x/3⌋ is exact on float64 grids, where ⌊x·(1/3)⌋ can be off by one."""
    op = OpCall("test", mm(1, 1, 1, dtype=BF16).cost.scaled(sympy.floor((F * H) / 3)))
    evaluator = compile_tree(build_tree(Module(name="m", class_name="M", stage="other", ops=(op,)), "m"))
    frames = np.arange(1, 100_000)
    height = np.full(frames.shape, 3 * 37)
    result = evaluator.evaluate(Workload(batch=1, frames=frames, height=height, width=1, steps=1, text_len=0))
    assert np.array_equal(result["m", "flops"], 2 * ((frames * 111) // 3))


def test_non_integral_result_is_an_error() -> None:
    """A metric that is not a whole number for the workload raises, naming module, metric and workload."""
    op = mm(F, 2, 1, dtype=FP4)  # read ½·(2·frames + 2), write ½·frames bytes
    evaluator = compile_tree(build_tree(Module(name="m", class_name="M", stage="other", ops=(op,)), "fp4"))
    assert evaluator.evaluate_exact(Workload(batch=1, frames=2, height=1, width=1, steps=1, text_len=0))
    with pytest.raises(
        LlmPerfOptError, match=r"^fp4\.bytes_written: not an integer for workload .*frames: 3.*: 3/2"
    ):
        evaluator.evaluate_exact(Workload(batch=1, frames=3, height=1, width=1, steps=1, text_len=0))


def test_exact_evaluation_needs_integers() -> None:
    """Exact evaluation rejects arrays and floats, naming the field."""
    evaluator = compile_tree(toy_tree())
    with pytest.raises(LlmPerfOptError, match=r"workload\.frames: exact evaluation needs an integer"):
        evaluator.evaluate_exact(
            Workload(batch=1, frames=np.arange(3), height=1, width=1, steps=1, text_len=0)
        )


def test_unknown_metric_or_module_in_a_result() -> None:
    """Looking up an unknown metric or module in a grid result names it."""
    result = compile_tree(toy_tree()).evaluate(
        Workload(batch=1, frames=1, height=16, width=16, steps=1, text_len=0)
    )
    with pytest.raises(LlmPerfOptError, match="metric: unknown metric 'flop'"):
        result["toy", "flop"]
    with pytest.raises(LlmPerfOptError, match=r"module_id: no module 'toy\.x'"):
        result["toy.x", "flops"]
