"""The evaluate_*_grid functions: only the columns asked for, vectorised validation with an opt-out."""

from __future__ import annotations

import numpy as np
import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.wan2_1.evaluate import (
    evaluate_dit_grid,
    evaluate_image_encoder_grid,
    evaluate_text_encoder_grid,
    evaluate_vae_grid,
)

pytest.importorskip("dask")
import dask.array as da

FRAMES = np.array([1, 17, 81])[:, None]
SIZES = np.array([480, 720])[None, :]


def test_selected_columns_equal_the_full_grid() -> None:
    """modules/metrics give the same numbers as the full evaluation, for every component."""
    cases = [
        (evaluate_dit_grid, ("t2v-1.3b",), {"frames": FRAMES, "height": SIZES, "width": 832}, "diffusion"),
        (evaluate_vae_grid, (), {"frames": FRAMES, "height": SIZES, "width": 832}, "vae"),
        (
            evaluate_text_encoder_grid,
            (),
            {"batch": np.array([1, 4]), "text_len": np.array([0, 77, 512])[:, None]},
            "text_encoder",
        ),
        (evaluate_image_encoder_grid, ("i2v-14b-480p",), {"batch": np.array([1, 3])}, "image_encoder"),
    ]
    for function, args, values, root in cases:
        full = function(*args, **values)  # type: ignore[operator]
        selected = function(*args, modules=[root], metrics=["flops", "params"], **values)  # type: ignore[operator]
        assert selected.columns == ((root, "flops"), (root, "params"))
        for metric in ("flops", "params"):
            assert np.array_equal(selected[root, metric], full[root, metric])


def test_bad_grid_values_name_the_field_the_first_value_and_the_count() -> None:
    """NaN frames and a height of 17 are errors; validate=False evaluates them as given."""
    with pytest.raises(
        LlmPerfOptError, match=r"^frames: 1 of 3 values are not an integer in 1…4093; first: nan"
    ):
        evaluate_dit_grid("t2v-1.3b", frames=np.array([81, np.nan, 17]), height=480, width=832)
    with pytest.raises(
        LlmPerfOptError, match=r"^height: 1 of 2 values are not .*a multiple of 16; first: 17"
    ):
        evaluate_dit_grid("t2v-1.3b", frames=81, height=np.array([480, 17]), width=832)
    unchecked = evaluate_dit_grid(
        "t2v-1.3b", frames=81, height=np.array([480, 17]), width=832, validate=False
    )
    assert unchecked["diffusion", "flops"].shape == (2,)
    with pytest.raises(LlmPerfOptError, match=r"^validate: must be True or False"):
        evaluate_dit_grid("t2v-1.3b", frames=81, height=480, width=832, validate="no")


def test_dask_values_need_modules_and_stay_lazy() -> None:
    """Dask arrays without modules are an error; with modules the result is lazy and equal to numpy."""
    frames = da.from_array(np.arange(1, 401), chunks=100)
    with pytest.raises(LlmPerfOptError, match=r"^modules: name the modules to evaluate lazily"):
        evaluate_dit_grid("t2v-1.3b", frames=frames, height=480, width=832)
    lazy = evaluate_dit_grid("t2v-1.3b", frames=frames, height=480, width=832, modules=["diffusion"])
    eager = evaluate_dit_grid("t2v-1.3b", frames=np.arange(1, 401), height=480, width=832)
    assert hasattr(lazy["diffusion", "flops"], "dask")
    assert np.array_equal(lazy["diffusion", "flops"].compute(), eager["diffusion", "flops"])
