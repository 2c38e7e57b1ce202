"""Selective compilation: only the columns asked for are compiled, with the full evaluator's values."""

from __future__ import annotations

import numpy as np
import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.compiler import compile_columns
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.evaluate import dit_evaluator, dit_tree
from llm_perf_opt.wan2_1.implementation import get_implementation
from llm_perf_opt.wan2_1.variants import get_variant

pytest.importorskip("dask")
import dask.array as da

TREE = dit_tree(get_variant("t2v-1.3b"), get_implementation("official"))
FRAMES = np.array([1, 17, 81, 121], dtype=np.float64)[:, None]
SIZES = np.array([256, 480, 720], dtype=np.float64)[None, :]
WORKLOAD = Workload(batch=2, frames=FRAMES, height=SIZES, width=2 * SIZES, steps=1, text_len=512)


def test_one_column_compiles_one_expression_with_the_full_evaluators_values() -> None:
    """Asking for the root's FLOPs compiles one expression, equal to the whole tree's evaluator."""
    evaluator = compile_columns(TREE, (("diffusion", "flops"),))
    assert len(evaluator.expressions) == 1
    full = dit_evaluator(get_variant("t2v-1.3b"), get_implementation("official")).evaluate(WORKLOAD)
    assert np.array_equal(evaluator.evaluate(WORKLOAD)["diffusion", "flops"], full["diffusion", "flops"])


def test_shared_expressions_are_compiled_once() -> None:
    """Thirty blocks' identical attention FLOPs are one expression; constants broadcast to the shape."""
    attention = [(f"diffusion.blocks.{i}.self_attn", "flops") for i in range(30)]
    columns = (*attention, ("diffusion", "params"))
    evaluator = compile_columns(TREE, columns)
    assert len(evaluator.expressions) == 2
    grid = evaluator.evaluate(WORKLOAD)
    assert grid.shape == (4, 3) and grid["diffusion", "params"].shape == (4, 3)
    assert set(grid.metrics("diffusion")) == {"params"}


def test_dask_inputs_give_lazy_columns_equal_to_numpy() -> None:
    """Chunked dask inputs give dask outputs of the same chunks and the numpy values."""
    evaluator = compile_columns(TREE, (("diffusion", "flops"), ("diffusion", "bytes_read")))
    frames = da.from_array(np.arange(1, 2001, dtype=np.float64), chunks=500)[:, None]
    height = da.from_array(np.arange(16, 1616, 16, dtype=np.float64), chunks=50)[None, :]
    lazy = evaluator.evaluate(
        Workload(batch=1, frames=frames, height=height, width=832, steps=1, text_len=512)
    )
    eager = evaluator.evaluate(
        Workload(batch=1, frames=frames.compute(), height=height.compute(), width=832, steps=1, text_len=512)
    )
    assert lazy["diffusion", "flops"].chunks == ((500,) * 4, (50, 50))
    for column in evaluator.columns:
        assert np.array_equal(lazy[column].compute(), eager[column])


def test_unknown_columns_are_errors() -> None:
    """An unknown module, metric or an empty selection is one error naming it."""
    with pytest.raises(LlmPerfOptError, match=r"^module_id: no module 'diffusion\.x'"):
        compile_columns(TREE, (("diffusion.x", "flops"),))
    with pytest.raises(LlmPerfOptError, match=r"^metric: unknown metric 'flop'"):
        compile_columns(TREE, (("diffusion", "flop"),))
    with pytest.raises(LlmPerfOptError, match=r"^columns: at least one"):
        compile_columns(TREE, ())
    with pytest.raises(LlmPerfOptError, match=r"^column: diffusion:params was not evaluated"):
        compile_columns(TREE, (("diffusion", "flops"),)).evaluate(WORKLOAD)["diffusion", "params"]
