"""The workload symbols and the dtype table."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic import WORKLOAD_SYMBOLS, B, F, H, L, S, W, Workload
from llm_perf_opt.symbolic.dtypes import BF16, DTYPES, FP4, FP8, FP32, TF32, dtype_named


def test_symbols_have_their_names_and_assumptions() -> None:
    """The six symbols are named after the workload fields, integer and positive (text_len non-negative)."""
    assert [s.name for s in WORKLOAD_SYMBOLS] == ["batch", "frames", "height", "width", "steps", "text_len"]
    assert WORKLOAD_SYMBOLS == (B, F, H, W, S, L)
    for symbol in (B, F, H, W, S):
        assert symbol.is_integer and symbol.is_positive
    assert L.is_integer and L.is_nonnegative and L.is_positive is None


def test_symbols_are_the_same_objects_as_sympy_would_build() -> None:
    """A symbol rebuilt with the same name and assumptions is equal to the shared one."""
    assert sympy.Symbol("frames", integer=True, positive=True) == F


def test_workload_values_follow_the_symbol_order() -> None:
    """Workload.values and subs follow WORKLOAD_SYMBOLS, and arrays are kept as given."""
    frames = np.arange(1, 5)
    workload = Workload(batch=1, frames=frames, height=480, width=832, steps=50, text_len=0)
    assert workload.values()[1] is frames
    assert workload.subs()[L] == 0


def test_dtype_sizes() -> None:
    """Dtype sizes are exact SymPy numbers: fp4 is half a byte, tf32 is stored in 4 bytes."""
    assert (BF16.size_bytes, FP32.size_bytes, TF32.size_bytes, FP8.size_bytes) == (2, 4, 4, 1)
    assert FP4.size_bytes == sympy.Rational(1, 2)
    assert all(dtype_named(name) is dtype for name, dtype in DTYPES.items())


def test_unknown_dtype_names_the_known_ones() -> None:
    """An unknown dtype name raises an error that quotes it and lists the known names."""
    with pytest.raises(LlmPerfOptError, match=r"dtype: unknown dtype 'bfloat17', expected one of fp64, fp32"):
        dtype_named("bfloat17")
