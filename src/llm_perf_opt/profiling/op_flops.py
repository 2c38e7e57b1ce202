"""FLOPs of one recorded op from the shapes a profiler trace records, and the op class of an op name.

A trace made with ``record_shapes=True`` keeps, for every ``cpu_op`` event, its ``Input Dims`` and
``Concrete Inputs``. The FLOP formulas follow ``torch.utils.flop_counter`` (a multiply-add is 2 FLOPs,
bias not counted, attention ``4·B·H·Sq·Sk·D``), one small function per aten op in one registry, so the
FLOPs of a trace can be set against the analytic model's module by module. Composite ops
(``aten::linear``, ``aten::matmul``, ``aten::conv3d``, ``aten::scaled_dot_product_attention``) are not
in the registry: the trace records the registered op they dispatch to beneath them, and a registered op
beneath another registered op (``aten::_convolution`` under ``aten::convolution``) is not counted twice.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence
from typing import Final

from llm_perf_opt.errors import LlmPerfOptError

__all__ = ["OP_CLASSES", "SHAPE_FLOPS", "kernel_op_class", "op_class_of", "shape_flops"]

Dims = Sequence[Sequence[int]]
"""``Input Dims`` of one event: one shape per argument (``[]`` for a scalar or ``None``)."""
Concrete = Sequence[str]
"""``Concrete Inputs`` of one event: the text of each scalar argument (``''`` for a tensor)."""

SHAPE_FLOPS: dict[str, Callable[[Dims, Concrete], int]] = {}
"""aten op name (``aten::addmm``) → FLOPs from its recorded input shapes and scalar arguments."""


def _register(*names: str) -> Callable[[Callable[[Dims, Concrete], int]], Callable[[Dims, Concrete], int]]:
    def add(formula: Callable[[Dims, Concrete], int]) -> Callable[[Dims, Concrete], int]:
        for name in names:
            if name in SHAPE_FLOPS:
                raise LlmPerfOptError(f"SHAPE_FLOPS: duplicate formula for {name!r}")
            SHAPE_FLOPS[name] = formula
        return formula

    return add


@_register("aten::mm")
def _mm(dims: Dims, _: Concrete) -> int:
    # a:[m, k] @ b:[k, n]
    (m, k), (_k, n) = dims[0], dims[1]
    return 2 * m * k * n


@_register("aten::addmm")
def _addmm(dims: Dims, concrete: Concrete) -> int:
    # bias + a:[m, k] @ b:[k, n]; NB: bias not counted
    return _mm(dims[1:3], concrete)


@_register("aten::bmm")
def _bmm(dims: Dims, _: Concrete) -> int:
    # a:[b, m, k] @ b:[b, k, n]
    (b, m, k), (_b, _k, n) = dims[0], dims[1]
    return 2 * b * m * k * n


@_register("aten::baddbmm")
def _baddbmm(dims: Dims, concrete: Concrete) -> int:
    # c + a:[b, m, k] @ b:[b, k, n]; NB: the added term not counted
    return _bmm(dims[1:3], concrete)


def _int_list(text: str, what: str) -> list[int]:
    """``'[1, 2, 2]'`` → ``[1, 2, 2]``; a bare ``'1'`` → ``[1]``."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise LlmPerfOptError(f"Concrete Inputs: {what} must be a list of integers, got {text!r}") from None
    values = value if isinstance(value, list | tuple) else [value]
    if not all(isinstance(v, int) for v in values):
        raise LlmPerfOptError(f"Concrete Inputs: {what} must be a list of integers, got {text!r}")
    return list(values)


@_register("aten::convolution", "aten::_convolution")
def _convolution(dims: Dims, concrete: Concrete) -> int:
    # x:[b, c_in, *spatial] ⋆ w:[c_out, c_in/groups, *kernel] → [b, c_out, *out]; NB: bias not counted
    # args: input, weight, bias, stride, padding, dilation, transposed, output_padding, groups
    x, w = dims[0], dims[1]
    kernel = w[2:]
    count = len(kernel)
    stride, padding, dilation = (
        _int_list(concrete[i], name) for i, name in ((3, "stride"), (4, "padding"), (5, "dilation"))
    )
    stride, padding, dilation = (v * count if len(v) == 1 else v for v in (stride, padding, dilation))
    if concrete[6].strip().lower() == "true":
        # transposed: every input position meets the whole kernel
        spatial = list(x[2:])
    else:
        spatial = [
            (size + 2 * pad - dil * (k - 1) - 1) // step + 1
            for size, k, step, pad, dil in zip(x[2:], kernel, stride, padding, dilation, strict=True)
        ]
    return 2 * x[0] * math.prod(w) * math.prod(spatial)


@_register(
    "aten::_scaled_dot_product_flash_attention",
    "aten::_scaled_dot_product_flash_attention_for_cpu",
    "aten::_scaled_dot_product_efficient_attention",
    "aten::_scaled_dot_product_cudnn_attention",
)
def _sdpa(dims: Dims, _: Concrete) -> int:
    # q:[b, h, s_q, d] @ kᵀ:[b, h, d, s_k], then p:[b, h, s_q, s_k] @ v:[b, h, s_k, d_v]
    (b, h, s_q, d), (_b, _h, s_k, _d), v = dims[0], dims[1], dims[2]
    return 2 * b * h * s_q * s_k * d + 2 * b * h * s_q * s_k * v[-1]


def shape_flops(name: str, dims: object, concrete: object) -> int | None:
    """FLOPs of one op from its recorded shapes; ``None`` for an op without a formula.

    Raises :class:`LlmPerfOptError` when an op with a formula has shapes that do not fit it.
    """
    formula = SHAPE_FLOPS.get(name)
    if formula is None:
        return None
    if not isinstance(dims, list) or not isinstance(concrete, list | type(None)):
        raise LlmPerfOptError(f"Input Dims: {name} must record a list of shapes, got {dims!r}")
    try:
        return int(formula(dims, concrete or []))
    except (ValueError, TypeError, IndexError) as error:
        raise LlmPerfOptError(
            f"Input Dims: {name} shapes {dims!r} do not fit its FLOP formula ({error})"
        ) from None


OP_CLASSES: Final = ("matmul", "attention", "convolution", "elementwise")
"""Op classes of measured time, as the time model's efficiency factors name them."""

_MATMUL_OPS: Final = frozenset(
    {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::linear", "aten::matmul", "aten::einsum"}
)
_CONVOLUTION_OPS: Final = frozenset(
    {
        "aten::convolution",
        "aten::_convolution",
        "aten::conv1d",
        "aten::conv2d",
        "aten::conv3d",
        "aten::conv_transpose2d",
        "aten::conv_transpose3d",
    }
)


def op_class_of(name: str) -> str:
    """The op class of an outermost operator (``aten::linear`` → ``matmul``); all else element-wise."""
    if name in _MATMUL_OPS:
        return "matmul"
    if name in _CONVOLUTION_OPS:
        return "convolution"
    if "scaled_dot_product" in name or "flash_attn" in name:
        return "attention"
    return "elementwise"


_KERNEL_HINTS: Final = (
    ("attention", ("flash", "fmha", "attention", "attn")),
    ("convolution", ("conv", "implicit_gemm", "winograd", "dgrad", "wgrad")),
    ("matmul", ("gemm", "xmma", "cutlass", "matmul", "cublas", "sm90_", "sm80_")),
)
"""Substrings of CUDA kernel names per op class, first match wins (a trace without operators)."""


def kernel_op_class(kernel_name: str) -> str:
    """The op class of a device kernel known by its name only (an Nsight Systems export): a heuristic
    on the name (``flash_fwd_kernel`` → attention, ``sm90_xmma_gemm_…`` → matmul); all else element-wise."""
    lowered = kernel_name.lower()
    for op_class, hints in _KERNEL_HINTS:
        if any(hint in lowered for hint in hints):
            return op_class
    return "elementwise"
