"""Element types and their sizes in bytes, the only place a byte width is written down.

Byte formulas take a :class:`DType` parameter and multiply by its ``size_bytes``; they never
write ``2`` for bf16. Sizes are SymPy numbers so that FP4's half byte stays exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import sympy
from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError

__all__ = [
    "BF16",
    "BOOL",
    "DTYPES",
    "FP4",
    "FP8",
    "FP16",
    "FP32",
    "FP64",
    "INT32",
    "INT64",
    "TF32",
    "DType",
    "dtype_named",
]


def _as_rational(value: object) -> sympy.Rational:
    return sympy.Rational(value)


@frozen
class DType:
    """An element type.

    Attributes:
        name: short name, as accepted by :func:`dtype_named` (``"bf16"``).
        size_bytes: bytes per element, a SymPy Integer or Rational (FP4 is ``1/2``).
    """

    name: str
    size_bytes: sympy.Rational = field(converter=_as_rational)


FP64 = DType("fp64", 8)
FP32 = DType("fp32", 4)
# TF32 is a matmul mode on FP32 storage: 4 bytes per element in memory.
TF32 = DType("tf32", 4)
BF16 = DType("bf16", 2)
FP16 = DType("fp16", 2)
# FP8 is E4M3 (torch.float8_e4m3fn), the inference format.
FP8 = DType("fp8", 1)
# FP4 is E2M1, packed two elements per byte.
FP4 = DType("fp4", sympy.Rational(1, 2))
# Integer types for indices (token ids fed to an embedding).
INT64 = DType("int64", 8)
INT32 = DType("int32", 4)
# Booleans (comparison results, masks): one byte per element.
BOOL = DType("bool", 1)

DTYPES: Mapping[str, DType] = MappingProxyType(
    {d.name: d for d in (FP64, FP32, TF32, BF16, FP16, FP8, FP4, INT64, INT32, BOOL)}
)


def dtype_named(name: str) -> DType:
    """The :class:`DType` called ``name`` (e.g. ``"bf16"``); raises for an unknown name."""
    try:
        return DTYPES[name]
    except KeyError:
        known = ", ".join(DTYPES)
        raise LlmPerfOptError(f"dtype: unknown dtype {name!r}, expected one of {known}") from None
