"""Small pieces every Wan2.1 declaration uses: dtype casts and type promotion."""

from __future__ import annotations

import sympy

from llm_perf_opt.symbolic.dtypes import DType
from llm_perf_opt.symbolic.primitives import OpCall, to_copy

__all__ = ["cast", "promoted"]


def cast(numel: sympy.Expr, source: DType, target: DType) -> list[OpCall]:
    """A dtype cast of ``numel`` elements when the two dtypes differ, else nothing."""
    return [] if source == target else [to_copy(numel, in_dtype=source, out_dtype=target)]


def promoted(a: DType, b: DType) -> DType:
    """The dtype of a binary op's result under type promotion (for the float types used here)."""
    return a if a.size_bytes >= b.size_bytes else b
