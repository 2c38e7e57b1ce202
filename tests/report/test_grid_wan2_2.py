"""Grids of the Wan2.2 variants: each expert's column equals the exact evaluation (the expert split
compiled for arrays), and TI2V-5B's axes must lie on its 32-pixel grid."""

from __future__ import annotations

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.report.grid import GridAxes, GridRequest, iter_chunks
from llm_perf_opt.symbolic.compiler import compile_tree
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.implementation import OFFICIAL
from llm_perf_opt.wan2_2 import get_variant, pipeline_tree


def _request(variant: str, **axes: list[int]) -> GridRequest:
    values = {
        "batch": [1],
        "frames": [81],
        "height": [720],
        "width": [1280],
        "steps": [40],
        "text_len": [512],
    }
    return GridRequest(
        variant=get_variant(variant),
        implementation=OFFICIAL,
        guidance=True,
        pad_text=True,
        axes=GridAxes.of(**{**values, **axes}),
        columns=(("high_noise_model", "flops"), ("low_noise_model", "flops")),
    )


def test_expert_columns_equal_the_exact_figures_over_steps() -> None:
    """Over 1, 8 and 40 steps each expert's grid FLOPs equal the exact evaluation at that point."""
    request = _request("t2v-a14b", steps=[1, 8, 40])
    exact = compile_tree(pipeline_tree(get_variant("t2v-a14b"), OFFICIAL))
    for points, columns in iter_chunks(request, 16):
        for index, steps in enumerate(points["steps"]):
            workload = Workload(batch=1, frames=81, height=720, width=1280, steps=int(steps), text_len=512)
            figures = exact.evaluate_exact(workload)
            for column, module in enumerate(("high_noise_model", "low_noise_model")):
                assert columns[column][index] == pytest.approx(figures[module]["flops"], rel=1e-12)


def test_a_ti2v_grid_off_its_grid_is_an_error() -> None:
    """A TI2V-5B grid with a height of 720 is one error naming the nearest valid heights."""
    with pytest.raises(LlmPerfOptError, match="nearest valid: 704 or 736"):
        _request("ti2v-5b", height=[704, 720], width=[1280])
