"""One registry of primitive cost formulas, keyed by the aten op each one mirrors.

Matrix products, convolutions and attention pair 1:1 with the formulas of
``torch.utils.flop_counter`` (``mm_flop``, ``addmm_flop``, ``bmm_flop``, ``baddbmm_flop``,
``conv_flop``, ``sdpa_flop``) and must equal them exactly for the same shapes. Element-wise
primitives put their work in ``vector_flops``, counted with :data:`VECTOR_FLOPS_PER_ELEMENT`.

Byte convention: each primitive is one kernel that reads every input tensor once at its dtype and
writes every output tensor once at its dtype; views are free and nothing is fused across
primitives. Every output a primitive writes is a new activation (``activation_bytes`` equals
``bytes_written``) unless the op works in place. Weight-bearing composites (:func:`linear`,
:func:`conv2d`, :func:`conv3d`, :func:`with_parameters`) add the parameters a module owns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from types import MappingProxyType
from typing import Any, Final, Generic, ParamSpec, TypeAlias

import sympy
from attrs import evolve, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.dtypes import BOOL, FP32, INT64, DType

__all__ = [
    "PRIMITIVES",
    "ROLE_CATEGORY",
    "VECTOR_FLOPS_PER_ELEMENT",
    "OpCall",
    "OpClass",
    "Primitive",
    "Size",
    "add",
    "add_broadcast",
    "add_scalar_inplace",
    "addmm",
    "arange",
    "baddbmm",
    "bmm",
    "cat",
    "clamp",
    "clamp_min",
    "clone",
    "constant_pad",
    "conv2d",
    "conv3d",
    "conv_output_size",
    "convolution",
    "copy_into",
    "cos",
    "div",
    "embedding",
    "exp",
    "fill",
    "gelu",
    "gelu_tanh",
    "gelu_tanh_eager",
    "layer_norm",
    "linalg_vector_norm",
    "linear",
    "mean",
    "mm",
    "mul",
    "mul_broadcast",
    "parameter_held",
    "pow_scalar",
    "primitive",
    "repeat_interleave",
    "rms_norm",
    "rms_norm_eager",
    "rope",
    "rotary_interleaved",
    "rsqrt",
    "scaled_dot_product_attention",
    "silu",
    "sin",
    "softmax",
    "sub",
    "tanh",
    "to_copy",
    "upsample_nearest_exact2d",
    "with_parameters",
    "zeros_like",
]

# A size: a Python int or a SymPy expression in the workload symbols.
Size: TypeAlias = Any

_P = ParamSpec("_P")


@frozen
class OpCall:
    """One call of a primitive: the registry key it was computed by and what it costs.

    Attributes:
        primitive: the :data:`PRIMITIVES` key (the aten op name, e.g. ``"addmm"``).
        cost: the cost of the call; composites may add the parameters a module owns.
        dtype: name of the dtype the op computes at (its ``dtype`` argument, or ``in_dtype`` for a
            cast), ``""`` when it has none; a time model picks the peak rate by it.
    """

    primitive: str
    cost: Cost
    dtype: str = ""


class OpClass(Enum):
    """What kind of kernel an op runs as: it selects the roofline's peak and efficiency factor."""

    MATMUL = "matmul"
    ATTENTION = "attention"
    CONVOLUTION = "convolution"
    ELEMENTWISE = "elementwise"


ROLE_CATEGORY: Final = None
"""The category of a weighted op (a matrix product, a convolution) follows the role of the module it
runs in (attention projection, feed-forward, embedding), which the model family declares."""


@frozen
class Primitive(Generic[_P]):
    """One registry entry: a cost formula with every property of its op.

    Calling the entry returns the :class:`OpCall` of one call of the op.

    Attributes:
        key: the aten op name it mirrors.
        op_class: the kernel class the time model prices it as.
        category: the report's operator category, or :data:`ROLE_CATEGORY` (``None``) for a weighted
            op whose category is the role of the module it runs in.
        formula: the cost of one call.
    """

    key: str
    op_class: OpClass
    category: str | None
    formula: Callable[_P, Cost]

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> OpCall:
        dtype = kwargs.get("dtype", kwargs.get("in_dtype"))
        return OpCall(self.key, self.formula(*args, **kwargs), dtype.name if isinstance(dtype, DType) else "")


PRIMITIVES: dict[str, Primitive[...]] = {}


def primitive(
    *keys: str, op_class: OpClass = OpClass.ELEMENTWISE, category: str | None = "elementwise"
) -> Callable[[Callable[_P, Cost]], Primitive[_P]]:
    """Register a cost formula under one or more keys; a key registered twice is an error.

    ``op_class`` and ``category`` are the op's kernel class and report category (see
    :class:`Primitive`). The registered entry returns an :class:`OpCall` carrying the key it was
    called by. Aliases (ops that share one formula, like the scaled-dot-product attention variants)
    are extra keys of the same formula, never a second table. The decorator returns the entry of
    the first key.
    """
    if not keys:
        raise LlmPerfOptError("primitive: keys: expected at least one registry key, got none")

    def register(formula: Callable[_P, Cost]) -> Primitive[_P]:
        for key in keys:
            if key in PRIMITIVES:
                raise LlmPerfOptError(
                    f"primitive: key {key!r} is already registered; expected a key not in "
                    f"PRIMITIVES (one formula per op)"
                )
        entries = [Primitive(key, op_class, category, formula) for key in keys]
        for entry in entries:
            PRIMITIVES[entry.key] = entry
        return entries[0]

    return register


def _nbytes(numel: Size, dtype: DType) -> sympy.Expr:
    return sympy.sympify(numel) * dtype.size_bytes


def _prod(sizes: Sequence[Size]) -> sympy.Expr:
    return sympy.Mul(*(sympy.sympify(s) for s in sizes))


def _written(nbytes: sympy.Expr, *, inplace: bool = False) -> dict[str, sympy.Expr]:
    return {"bytes_written": nbytes, "activation_bytes": 0 if inplace else nbytes}


# Element-wise FLOPs per element. Convention: every arithmetic operation on one element counts 1
# (add, sub, mul, div, max, exp, tanh, erf, rsqrt alike); a reduction counts one operation per input
# element; per-row scalar work (one rsqrt or one division per row) is not counted.
VECTOR_FLOPS_PER_ELEMENT: Final[Mapping[str, int]] = MappingProxyType(
    {
        "layer_norm": 5,  # mean: 1 add · centre: 1 sub · square: 1 mul · variance: 1 add · ·rstd: 1 mul
        "rms_norm": 3,  # square: 1 mul · mean of squares: 1 add · ·rrms: 1 mul
        "affine_scale": 1,  # ·weight (norm with elementwise affine)
        "affine_shift": 1,  # +bias (layer norm with elementwise affine)
        "gelu_tanh": 9,  # x³: 2 mul · ·0.044715: 1 · +x: 1 · ·√(2/π): 1 · tanh: 1 · +1: 1 · ·x: 1 · ·½: 1
        "gelu": 5,  # x/√2: 1 · erf: 1 · +1: 1 · ·x: 1 · ·½: 1
        "silu": 4,  # x/(1+exp(-x)): neg 1 · exp 1 · +1: 1 · div 1
        "softmax": 5,  # max: 1 · sub: 1 · exp: 1 · sum: 1 · ·1/sum: 1
        "attention_score": 6,  # per q·k score in fused attention: scale: 1 mul · softmax: 5
        "rope": 3,  # x·cos + rotate_half(x)·sin: 2 mul · 1 add (a complex product, per real element)
        "mul": 1,  # x·y
        "add": 1,  # x+y
    }
)


# ─── matrix products ────────────────────────────────────────────────────────────────────────────


@primitive("mm", op_class=OpClass.MATMUL, category=ROLE_CATEGORY)
def mm(m: Size, k: Size, n: Size, *, dtype: DType, mat2_dtype: DType | None = None) -> Cost:
    """``aten.mm``: ``[m, k] @ [k, n]``, 2·m·k·n FLOPs (``mm_flop``).

    Reads both operands, writes the ``[m, n]`` product at ``dtype``; ``mat2_dtype`` (default
    ``dtype``) is the second operand's type, e.g. a weight's.
    """
    mat2_dtype = mat2_dtype or dtype
    # a:[m, k] @ b:[k, n] → out:[m, n]
    return Cost(
        flops=2 * sympy.sympify(m) * k * n,
        bytes_read=_nbytes(m * k, dtype) + _nbytes(k * n, mat2_dtype),
        **_written(_nbytes(m * n, dtype)),
    )


@primitive("addmm", op_class=OpClass.MATMUL, category=ROLE_CATEGORY)
def addmm(
    m: Size,
    k: Size,
    n: Size,
    *,
    dtype: DType,
    mat2_dtype: DType | None = None,
    bias_dtype: DType | None = None,
) -> Cost:
    """``aten.addmm``: ``bias[n] + [m, k] @ [k, n]``, counted as its ``mm`` (``addmm_flop``).

    NB: the bias addition is not counted in FLOPs, as in FlopCounterMode; the bias is read once
    at ``bias_dtype`` (default ``mat2_dtype``).
    """
    mat2_dtype = mat2_dtype or dtype
    bias_dtype = bias_dtype or mat2_dtype
    return mm(m, k, n, dtype=dtype, mat2_dtype=mat2_dtype).cost + Cost(bytes_read=_nbytes(n, bias_dtype))


@primitive("bmm", op_class=OpClass.MATMUL, category="attention_core")
def bmm(b: Size, m: Size, k: Size, n: Size, *, dtype: DType) -> Cost:
    """``aten.bmm``: ``b`` independent ``[m, k] @ [k, n]`` products, 2·b·m·k·n FLOPs (``bmm_flop``)."""
    # a:[b, m, k] @ c:[b, k, n] → out:[b, m, n]
    return Cost(
        flops=2 * sympy.sympify(b) * m * k * n,
        bytes_read=_nbytes(b * m * k, dtype) + _nbytes(b * k * n, dtype),
        **_written(_nbytes(b * m * n, dtype)),
    )


@primitive("baddbmm", op_class=OpClass.MATMUL, category="attention_core")
def baddbmm(b: Size, m: Size, k: Size, n: Size, *, dtype: DType, bias_numel: Size | None = None) -> Cost:
    """``aten.baddbmm``: ``self + bmm``, counted as its ``bmm`` (``baddbmm_flop``; the add is not counted).

    ``bias_numel`` is the number of elements of ``self`` as stored (default ``b·m·n``).
    """
    bias_numel = b * m * n if bias_numel is None else bias_numel
    return bmm(b, m, k, n, dtype=dtype).cost + Cost(bytes_read=_nbytes(bias_numel, dtype))


# ─── convolution ────────────────────────────────────────────────────────────────────────────────


def conv_output_size(
    size: Size, kernel: Size, *, stride: Size = 1, padding: Size = 0, dilation: Size = 1
) -> Size:
    """Output length of a convolution along one dimension, as ``torch.nn.Conv*d`` documents it.

    ``⌊(size + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1``; exact for ints and symbols.
    """
    numerator = sympy.sympify(size) + 2 * padding - dilation * (sympy.sympify(kernel) - 1) - 1
    return sympy.floor(numerator / stride) + 1


@primitive("convolution", op_class=OpClass.CONVOLUTION, category=ROLE_CATEGORY)
def convolution(
    batch: Size,
    c_in: Size,
    c_out: Size,
    *,
    kernel: Sequence[Size],
    out_spatial: Sequence[Size],
    in_spatial: Sequence[Size],
    groups: Size = 1,
    bias: bool = False,
    dtype: DType,
    weight_dtype: DType | None = None,
) -> Cost:
    """``aten.convolution`` (not transposed), any spatial rank: ``conv_flop``'s count.

    FLOPs: 2·batch·(c_in/groups)·c_out·∏kernel·∏out_spatial — every output position with the
    full kernel, padding included. NB: bias not counted in FLOPs, as in FlopCounterMode.
    Reads the input (``in_spatial`` as passed to the op, i.e. after any explicit padding), the weight
    and the bias; writes the output.
    """
    if not len(kernel) == len(out_spatial) == len(in_spatial):
        raise LlmPerfOptError(
            f"convolution: kernel, out_spatial, in_spatial: expected the same rank, got "
            f"{len(kernel)}, {len(out_spatial)}, {len(in_spatial)}"
        )
    weight_dtype = weight_dtype or dtype
    # weight:[c_out, c_in/groups, *kernel]
    weight_numel = sympy.sympify(c_out) * c_in / groups * _prod(kernel)
    # x:[batch, c_in, *in_spatial] ⋆ weight → out:[batch, c_out, *out_spatial]
    return Cost(
        flops=2 * sympy.sympify(batch) * weight_numel * _prod(out_spatial),
        bytes_read=_nbytes(batch * c_in * _prod(in_spatial), dtype)
        + _nbytes(weight_numel, weight_dtype)
        + (_nbytes(c_out, weight_dtype) if bias else 0),
        **_written(_nbytes(batch * c_out * _prod(out_spatial), dtype)),
    )


# ─── attention ──────────────────────────────────────────────────────────────────────────────────


@primitive(
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
    op_class=OpClass.ATTENTION,
    category="attention_core",
)
def scaled_dot_product_attention(
    batch: Size,
    heads: Size,
    q_len: Size,
    kv_len: Size,
    head_dim: Size,
    *,
    dtype: DType,
    kv_heads: Size | None = None,
    mask_numel: Size = 0,
    logsumexp: bool = True,
) -> Cost:
    """Fused scaled-dot-product attention: ``sdpa_flop``'s 4·B·H·Sq·Sk·D, non-causal.

    NB: masks and causality are not counted, as in FlopCounterMode. Bytes are a fused (flash-like)
    kernel's: read q, k, v at ``dtype``; write the output at ``dtype`` and an fp32 logsumexp of
    B·H·Sq elements; the Sq×Sk scores never reach memory. Their scale and softmax are
    ``vector_flops``. ``kv_heads`` (default ``heads``) is the number of key/value heads.
    ``mask_numel``: elements of an additive mask at ``dtype`` the kernel reads (as stored);
    ``logsumexp`` false for the memory-efficient kernel without gradients, which writes none.
    """
    kv_heads = heads if kv_heads is None else kv_heads
    q_numel = sympy.sympify(batch) * heads * q_len * head_dim
    kv_numel = sympy.sympify(batch) * kv_heads * kv_len * head_dim
    # q:[b·h, s_q, d] @ kᵀ:[b·h, d, s_k] → scores:[b·h, s_q, s_k]
    score_flops = bmm(sympy.sympify(batch) * heads, q_len, head_dim, kv_len, dtype=dtype).cost.flops
    # scores:[b·h, s_q, s_k] @ v:[b·h, s_k, d] → out:[b·h, s_q, d]
    value_flops = bmm(sympy.sympify(batch) * heads, q_len, kv_len, head_dim, dtype=dtype).cost.flops
    # scores:[b, h, s_q, s_k] are scaled and soft-maxed on chip
    score_count = sympy.sympify(batch) * heads * q_len * kv_len
    # logsumexp:[b, h, s_q] in fp32
    lse = _nbytes(sympy.sympify(batch) * heads * q_len, FP32) if logsumexp else 0
    written = _nbytes(q_numel, dtype) + lse
    return Cost(
        flops=score_flops + value_flops,
        vector_flops=VECTOR_FLOPS_PER_ELEMENT["attention_score"] * score_count,
        bytes_read=_nbytes(q_numel, dtype) + 2 * _nbytes(kv_numel, dtype) + _nbytes(mask_numel, dtype),
        **_written(written),
    )


# ─── element-wise ───────────────────────────────────────────────────────────────────────────────


@primitive("native_layer_norm", category="normalization")
def layer_norm(
    rows: Size, dim: Size, *, dtype: DType, affine: bool = True, weight_dtype: DType | None = None
) -> Cost:
    """Layer norm of ``rows`` vectors of length ``dim`` (``aten.native_layer_norm``).

    Reads x and, when ``affine``, the weight and bias (``weight_dtype``, default ``dtype``); writes y
    and, as the aten op does, the fp32 mean and rstd per row.
    """
    weight_dtype = weight_dtype or dtype
    numel = sympy.sympify(rows) * dim
    per_element = VECTOR_FLOPS_PER_ELEMENT["layer_norm"]
    if affine:
        per_element += VECTOR_FLOPS_PER_ELEMENT["affine_scale"] + VECTOR_FLOPS_PER_ELEMENT["affine_shift"]
    # x:[rows, dim] → y:[rows, dim], mean:[rows], rstd:[rows]
    return Cost(
        vector_flops=per_element * numel,
        bytes_read=_nbytes(numel, dtype) + (_nbytes(2 * sympy.sympify(dim), weight_dtype) if affine else 0),
        **_written(_nbytes(numel, dtype) + _nbytes(2 * sympy.sympify(rows), FP32)),
    )


@primitive("_fused_rms_norm", category="normalization")
def rms_norm(
    rows: Size, dim: Size, *, dtype: DType, affine: bool = True, weight_dtype: DType | None = None
) -> Cost:
    """RMS norm of ``rows`` vectors of length ``dim`` as one fused kernel (``aten._fused_rms_norm``).

    Reads x and, when ``affine``, the weight; writes y and the fp32 rstd per row.
    """
    weight_dtype = weight_dtype or dtype
    numel = sympy.sympify(rows) * dim
    per_element = VECTOR_FLOPS_PER_ELEMENT["rms_norm"]
    if affine:
        per_element += VECTOR_FLOPS_PER_ELEMENT["affine_scale"]
    # x:[rows, dim] → y:[rows, dim], rstd:[rows]
    return Cost(
        vector_flops=per_element * numel,
        bytes_read=_nbytes(numel, dtype) + (_nbytes(dim, weight_dtype) if affine else 0),
        **_written(_nbytes(numel, dtype) + _nbytes(rows, FP32)),
    )


def _unary(rule: str, numel: Size, dtype: DType, out_dtype: DType | None) -> Cost:
    return Cost(
        vector_flops=VECTOR_FLOPS_PER_ELEMENT[rule] * sympy.sympify(numel),
        bytes_read=_nbytes(numel, dtype),
        **_written(_nbytes(numel, out_dtype or dtype)),
    )


@primitive("gelu_tanh", category="activation")
def gelu_tanh(numel: Size, *, dtype: DType, out_dtype: DType | None = None) -> Cost:
    """GELU, tanh approximation (``aten.gelu`` with ``approximate="tanh"``) over ``numel`` elements."""
    return _unary("gelu_tanh", numel, dtype, out_dtype)


@primitive("gelu", category="activation")
def gelu(numel: Size, *, dtype: DType, out_dtype: DType | None = None) -> Cost:
    """GELU, exact erf form (``aten.gelu``) over ``numel`` elements."""
    return _unary("gelu", numel, dtype, out_dtype)


@primitive("silu", category="activation")
def silu(numel: Size, *, dtype: DType, out_dtype: DType | None = None) -> Cost:
    """SiLU, ``x·sigmoid(x)`` (``aten.silu``) over ``numel`` elements."""
    return _unary("silu", numel, dtype, out_dtype)


@primitive("_softmax", category="attention_core")
def softmax(numel: Size, *, dtype: DType, out_dtype: DType | None = None) -> Cost:
    """Softmax (``aten._softmax``) over ``numel`` elements, along any dimension."""
    return _unary("softmax", numel, dtype, out_dtype)


@primitive("rope", category="rotary_embedding")
def rope(
    numel: Size,
    *,
    dtype: DType,
    table_numel: Size,
    table_dtype: DType | None = None,
    out_dtype: DType | None = None,
) -> Cost:
    """Rotary position embedding of ``numel`` elements as one kernel (no single aten op).

    Reads x and the cos and sin tables (``table_numel`` elements each as stored, before broadcasting
    over batch and heads, at ``table_dtype``, default ``dtype``); writes the rotated x.
    """
    table_dtype = table_dtype or dtype
    # x:[b, tokens, heads, d] · cos,sin:[tokens, d] (broadcast)
    return _unary("rope", numel, dtype, out_dtype) + Cost(bytes_read=2 * _nbytes(table_numel, table_dtype))


def _binary(
    rule: str,
    numel: Size,
    dtype: DType,
    other_numel: Size | None,
    other_dtype: DType | None,
    out_dtype: DType | None,
    inplace: bool,
) -> Cost:
    other_numel = numel if other_numel is None else other_numel
    return Cost(
        vector_flops=VECTOR_FLOPS_PER_ELEMENT[rule] * sympy.sympify(numel),
        bytes_read=_nbytes(numel, dtype) + _nbytes(other_numel, other_dtype or dtype),
        **_written(_nbytes(numel, out_dtype or dtype), inplace=inplace),
    )


@primitive("mul", category="elementwise")
def mul(
    numel: Size,
    *,
    dtype: DType,
    other_numel: Size | None = None,
    other_dtype: DType | None = None,
    out_dtype: DType | None = None,
    inplace: bool = False,
) -> Cost:
    """Element-wise product (``aten.mul``; modulation scales, gates) with ``numel`` output elements.

    The other operand has ``other_numel`` elements as stored (default ``numel``; fewer when it is
    broadcast, e.g. a per-channel scale). In place, the output overwrites x and is no new activation.
    """
    return _binary("mul", numel, dtype, other_numel, other_dtype, out_dtype, inplace)


@primitive("add", category="elementwise")
def add(
    numel: Size,
    *,
    dtype: DType,
    other_numel: Size | None = None,
    other_dtype: DType | None = None,
    out_dtype: DType | None = None,
    inplace: bool = False,
) -> Cost:
    """Element-wise sum (``aten.add``; residuals, modulation shifts) with ``numel`` output elements.

    Operands as for :func:`mul`.
    """
    return _binary("add", numel, dtype, other_numel, other_dtype, out_dtype, inplace)


@primitive("_to_copy", category="cast_copy")
def to_copy(numel: Size, *, in_dtype: DType, out_dtype: DType) -> Cost:
    """A dtype cast (``aten._to_copy``): reads at ``in_dtype``, writes at ``out_dtype``, no FLOPs."""
    return Cost(bytes_read=_nbytes(numel, in_dtype), **_written(_nbytes(numel, out_dtype)))


@primitive("embedding", category="embedding")
def embedding(rows: Size, dim: Size, *, dtype: DType, index_dtype: DType = INT64) -> Cost:
    """A table lookup (``aten.embedding``): reads ``rows`` indices and the ``rows`` gathered vectors.

    Only the gathered rows of the table are read, not the whole table; writes ``[rows, dim]``.
    """
    numel = sympy.sympify(rows) * dim
    return Cost(
        bytes_read=_nbytes(rows, index_dtype) + _nbytes(numel, dtype),
        **_written(_nbytes(numel, dtype)),
    )


# ─── weight-bearing composites ──────────────────────────────────────────────────────────────────


def with_parameters(call: OpCall, count: Size, *, dtype: DType) -> OpCall:
    """``call`` with ``count`` parameters of ``dtype`` added: the weights a module owns, counted once."""
    return evolve(call, cost=call.cost + Cost(params=count, weight_bytes=_nbytes(count, dtype)))


def linear(
    rows: Size,
    in_features: Size,
    out_features: Size,
    *,
    bias: bool,
    act_dtype: DType,
    weight_dtype: DType,
) -> OpCall:
    """``torch.nn.Linear`` on ``rows`` vectors: ``addmm`` (``mm`` without bias) plus its parameters.

    Bytes: reads x (``act_dtype``), W and b (``weight_dtype``); writes y (``act_dtype``). Parameters:
    ``in·out`` (+ ``out`` with bias).
    """
    # x:[rows, in] @ Wᵀ:[in, out] (+ b:[out]) → y:[rows, out]
    if bias:
        call = addmm(rows, in_features, out_features, dtype=act_dtype, mat2_dtype=weight_dtype)
    else:
        call = mm(rows, in_features, out_features, dtype=act_dtype, mat2_dtype=weight_dtype)
    count = sympy.sympify(in_features) * out_features + (out_features if bias else 0)
    return with_parameters(call, count, dtype=weight_dtype)


def _conv_layer(
    rank: int,
    batch: Size,
    c_in: Size,
    c_out: Size,
    kernel: Sequence[Size],
    out_spatial: Sequence[Size],
    in_spatial: Sequence[Size],
    groups: Size,
    bias: bool,
    act_dtype: DType,
    weight_dtype: DType,
) -> OpCall:
    if len(kernel) != rank:
        raise LlmPerfOptError(f"conv{rank}d: kernel: expected {rank} sizes, got {len(kernel)} ({kernel!r})")
    call = convolution(
        batch,
        c_in,
        c_out,
        kernel=kernel,
        out_spatial=out_spatial,
        in_spatial=in_spatial,
        groups=groups,
        bias=bias,
        dtype=act_dtype,
        weight_dtype=weight_dtype,
    )
    count = sympy.sympify(c_out) * c_in / groups * math.prod(sympy.sympify(k) for k in kernel)
    return with_parameters(call, count + (c_out if bias else 0), dtype=weight_dtype)


def conv2d(
    batch: Size,
    c_in: Size,
    c_out: Size,
    *,
    kernel: Sequence[Size],
    out_spatial: Sequence[Size],
    in_spatial: Sequence[Size],
    groups: Size = 1,
    bias: bool = True,
    act_dtype: DType,
    weight_dtype: DType,
) -> OpCall:
    """``torch.nn.Conv2d``: the :func:`convolution` call plus its parameters.

    Parameters: ``c_out·c_in/groups·kh·kw`` (+ ``c_out`` with bias).
    """
    return _conv_layer(
        2, batch, c_in, c_out, kernel, out_spatial, in_spatial, groups, bias, act_dtype, weight_dtype
    )


def conv3d(
    batch: Size,
    c_in: Size,
    c_out: Size,
    *,
    kernel: Sequence[Size],
    out_spatial: Sequence[Size],
    in_spatial: Sequence[Size],
    groups: Size = 1,
    bias: bool = True,
    act_dtype: DType,
    weight_dtype: DType,
) -> OpCall:
    """``torch.nn.Conv3d``: the :func:`convolution` call plus its parameters.

    Parameters: ``c_out·c_in/groups·kt·kh·kw`` (+ ``c_out`` with bias).
    """
    return _conv_layer(
        3, batch, c_in, c_out, kernel, out_spatial, in_spatial, groups, bias, act_dtype, weight_dtype
    )


# ─── eager element-wise ops and the composites they make up ─────────────────────────────────────
#
# One primitive per aten op that eager PyTorch runs between the matrix products, so a module's bytes
# are the sum over the real kernels. Element-wise FLOPs follow VECTOR_FLOPS_PER_ELEMENT's convention
# (one per arithmetic operation per output element; a reduction one per input element); ops that only
# move data (cat, clone, copy_, arange) count none.

_EAGER_VECTOR_FLOPS: Final = 1
"""Element-wise FLOPs per element of each one-operation eager op below (sub, div, pow, rsqrt, exp, sin,
cos, and the reduction of ``mean`` per input element)."""


def _eager_unary(numel: Size, dtype: DType, out_dtype: DType | None, *, flops: bool = True) -> Cost:
    return Cost(
        vector_flops=_EAGER_VECTOR_FLOPS * sympy.sympify(numel) if flops else sympy.Integer(0),
        bytes_read=_nbytes(numel, dtype),
        **_written(_nbytes(numel, out_dtype or dtype)),
    )


@primitive("sub")
def sub(
    numel: Size,
    *,
    dtype: DType,
    other_numel: Size | None = None,
    other_dtype: DType | None = None,
    out_dtype: DType | None = None,
) -> Cost:
    """Element-wise difference (``aten.sub``) with ``numel`` output elements; operands as for :func:`mul`."""
    other_numel = numel if other_numel is None else other_numel
    return Cost(
        vector_flops=_EAGER_VECTOR_FLOPS * sympy.sympify(numel),
        bytes_read=_nbytes(numel, dtype) + _nbytes(other_numel, other_dtype or dtype),
        **_written(_nbytes(numel, out_dtype or dtype)),
    )


@primitive("div")
def div(numel: Size, *, dtype: DType, other_numel: Size = 0, other_dtype: DType | None = None) -> Cost:
    """Element-wise quotient (``aten.div``); ``other_numel`` 0 for a Python-number divisor."""
    return Cost(
        vector_flops=_EAGER_VECTOR_FLOPS * sympy.sympify(numel),
        bytes_read=_nbytes(numel, dtype) + _nbytes(other_numel, other_dtype or dtype),
        **_written(_nbytes(numel, dtype)),
    )


@primitive("pow")
def pow_scalar(numel: Size, *, dtype: DType) -> Cost:
    """``x ** exponent`` for a Python-number exponent (``aten.pow.Tensor_Scalar``)."""
    return _eager_unary(numel, dtype, None)


@primitive("rsqrt")
def rsqrt(numel: Size, *, dtype: DType, inplace: bool = False) -> Cost:
    """``1/√x`` (``aten.rsqrt``)."""
    cost = _eager_unary(numel, dtype, None)
    return evolve(cost, activation_bytes=0) if inplace else cost


@primitive("exp")
def exp(numel: Size, *, dtype: DType) -> Cost:
    """``eˣ`` (``aten.exp``)."""
    return _eager_unary(numel, dtype, None)


@primitive("sin")
def sin(numel: Size, *, dtype: DType) -> Cost:
    """``sin x`` (``aten.sin``)."""
    return _eager_unary(numel, dtype, None)


@primitive("cos")
def cos(numel: Size, *, dtype: DType) -> Cost:
    """``cos x`` (``aten.cos``)."""
    return _eager_unary(numel, dtype, None)


@primitive("mean")
def mean(rows: Size, dim: Size, *, dtype: DType) -> Cost:
    """Mean over the last ``dim`` elements of ``rows`` vectors (``aten.mean.dim``): one value per row."""
    numel = sympy.sympify(rows) * dim
    return Cost(
        vector_flops=_EAGER_VECTOR_FLOPS * numel,
        bytes_read=_nbytes(numel, dtype),
        **_written(_nbytes(rows, dtype)),
    )


@primitive("add_scalar_")
def add_scalar_inplace(numel: Size, *, dtype: DType) -> Cost:
    """``x += c`` for a Python number ``c`` (``aten.add_.Scalar``): reads and overwrites x in place."""
    nbytes = _nbytes(numel, dtype)
    return Cost(
        vector_flops=_EAGER_VECTOR_FLOPS * sympy.sympify(numel),
        bytes_read=nbytes,
        **_written(nbytes, inplace=True),
    )


@primitive("arange")
def arange(numel: Size, *, dtype: DType) -> Cost:
    """``torch.arange`` of ``numel`` values (``aten.arange``): nothing read, the values written."""
    return Cost(**_written(_nbytes(numel, dtype)))


@primitive("new_ones")
def new_ones(numel: Size, *, dtype: DType) -> Cost:
    """A tensor of ``numel`` ones (``aten.new_ones``, ``torch.ones``): nothing read, the values written."""
    return Cost(**_written(_nbytes(numel, dtype)))


@primitive("cat", category="cast_copy")
def cat(numels: Sequence[Size], *, dtype: DType, stored_numels: Sequence[Size] | None = None) -> Cost:
    """Concatenation (``aten.cat``) of tensors of ``numels`` elements into one of their sum.

    Each input is read at the elements it stores (``stored_numels``, default ``numels``; fewer for an
    expanded view, which a kernel reads from the same addresses again).
    """
    stored = numels if stored_numels is None else stored_numels
    return Cost(bytes_read=_nbytes(_sum(stored), dtype), **_written(_nbytes(_sum(numels), dtype)))


def _sum(sizes: Sequence[Size]) -> sympy.Expr:
    return sympy.Add(*(sympy.sympify(s) for s in sizes))


@primitive("clone", category="cast_copy")
def clone(numel: Size, *, dtype: DType) -> Cost:
    """A layout copy (``aten.clone``: ``.contiguous()``, a reshape of a permuted tensor)."""
    return Cost(bytes_read=_nbytes(numel, dtype), **_written(_nbytes(numel, dtype)))


@primitive("copy_", category="cast_copy")
def copy_into(numel: Size, *, in_dtype: DType, out_dtype: DType) -> Cost:
    """``dst.copy_(src)`` / ``dst[...] = src`` (``aten.copy_``): reads src, overwrites ``numel`` of dst.

    The destination is not read; it was allocated before (``empty_like``, no traffic), so the write is
    that allocation's activation.
    """
    return Cost(bytes_read=_nbytes(numel, in_dtype), **_written(_nbytes(numel, out_dtype)))


def rms_norm_eager(rows: Size, dim: Size, *, dtype: DType = FP32, eps_inplace: bool = True) -> list[OpCall]:
    """The arithmetic of an RMS norm as eager PyTorch runs it, at ``dtype``, without casts or weight.

    ``x.pow(2).mean(-1, keepdim=True)``, ``+ eps`` (in place, or a new tensor with ``eps_inplace``
    false), ``rsqrt``, ``x · rstd``: three kernels over the ``rows × dim`` elements and two over the
    ``rows`` statistics. Callers add the casts and the weight multiply where their code has them.
    """
    numel = sympy.sympify(rows) * dim
    return [
        pow_scalar(numel, dtype=dtype),
        mean(rows, dim, dtype=dtype),
        add_scalar_inplace(rows, dtype=dtype) if eps_inplace else add(rows, dtype=dtype, other_numel=0),
        rsqrt(rows, dtype=dtype),
        # x:[rows, dim] · rstd:[rows, 1]
        mul(numel, dtype=dtype, other_numel=rows),
    ]


def rotary_interleaved(numel: Size, *, dtype: DType, table_numel: Size, table_dtype: DType) -> list[OpCall]:
    """Rotation of ``numel`` elements stored as interleaved pairs (x1, x2), written back at ``dtype``.

    ``out[..., 0::2] = x1·cos − x2·sin`` and ``out[..., 1::2] = x1·sin + x2·cos`` into an
    ``empty_like`` buffer: per half, two products against a ``table_numel`` table (broadcast over
    batch and heads), one sum or difference in the promoted dtype, and one strided ``copy_`` back.
    """
    half = sympy.sympify(numel) / 2
    wide = table_dtype if table_dtype.size_bytes >= dtype.size_bytes else dtype
    ops: list[OpCall] = []
    for combine in (sub, add):
        # x1, x2:[b, tokens, heads, d/2] (stride 2) · cos, sin:[1, tokens, 1, d/2]
        ops += [
            mul(half, dtype=dtype, other_numel=table_numel, other_dtype=table_dtype, out_dtype=wide),
            mul(half, dtype=dtype, other_numel=table_numel, other_dtype=table_dtype, out_dtype=wide),
            combine(half, dtype=wide),
            copy_into(half, in_dtype=wide, out_dtype=dtype),
        ]
    return ops


def _broadcast_binary(
    rule: str,
    numel: Size,
    self_numel: Size,
    self_dtype: DType,
    other_numel: Size,
    other_dtype: DType,
    out_dtype: DType,
) -> Cost:
    return Cost(
        vector_flops=VECTOR_FLOPS_PER_ELEMENT[rule] * sympy.sympify(numel),
        bytes_read=_nbytes(self_numel, self_dtype) + _nbytes(other_numel, other_dtype),
        **_written(_nbytes(numel, out_dtype)),
    )


@primitive("mul_broadcast")
def mul_broadcast(
    numel: Size,
    *,
    self_numel: Size,
    self_dtype: DType,
    other_numel: Size,
    other_dtype: DType,
    out_dtype: DType,
) -> Cost:
    """``aten.mul`` where both operands broadcast to the ``numel`` output elements (an outer product).

    Each operand is read at the elements it stores, at its own dtype; the output is at ``out_dtype``.
    """
    return _broadcast_binary("mul", numel, self_numel, self_dtype, other_numel, other_dtype, out_dtype)


@primitive("sub_broadcast")
def sub_broadcast(
    numel: Size,
    *,
    self_numel: Size,
    self_dtype: DType,
    other_numel: Size,
    other_dtype: DType,
    out_dtype: DType,
) -> Cost:
    """``aten.sub`` where both operands broadcast to the ``numel`` output elements; see mul_broadcast."""
    return _broadcast_binary("add", numel, self_numel, self_dtype, other_numel, other_dtype, out_dtype)


@primitive("add_broadcast")
def add_broadcast(
    numel: Size,
    *,
    self_numel: Size,
    self_dtype: DType,
    other_numel: Size,
    other_dtype: DType,
    out_dtype: DType,
) -> Cost:
    """``aten.add`` where both operands broadcast to the ``numel`` output elements ; see mul_broadcast."""
    return _broadcast_binary("add", numel, self_numel, self_dtype, other_numel, other_dtype, out_dtype)


@primitive("parameter")
def parameter_held(*, dtype: DType) -> Cost:
    """No op: the place a module's parameters are counted when an op of its parent reads them.

    diffusers applies the head's ``scale_shift_table`` in the transformer's own forward; the table is
    still the official ``head.modulation``. Pass it through :func:`with_parameters`.
    """
    del dtype
    return Cost()


@primitive("gt", "lt")
def compare(numel: Size, *, dtype: DType) -> Cost:
    """``x > c`` / ``x < c`` against a Python number (``aten.gt``, ``aten.lt``): a bool per element."""
    return _eager_unary(numel, dtype, BOOL)


@primitive("abs")
def absolute(numel: Size, *, dtype: DType) -> Cost:
    """``|x|`` (``aten.abs``)."""
    return _eager_unary(numel, dtype, None)


@primitive("log")
def log(numel: Size, *, dtype: DType) -> Cost:
    """``ln x`` (``aten.log``)."""
    return _eager_unary(numel, dtype, None)


@primitive("minimum")
def minimum(numel: Size, *, dtype: DType) -> Cost:
    """``torch.min(a, b)`` of two tensors (``aten.minimum``): reads both, writes one."""
    return Cost(
        vector_flops=_EAGER_VECTOR_FLOPS * sympy.sympify(numel),
        bytes_read=2 * _nbytes(numel, dtype),
        **_written(_nbytes(numel, dtype)),
    )


@primitive("where")
def where(numel: Size, *, dtype: DType) -> Cost:
    """``torch.where(cond, a, b)`` (``aten.where``): reads the bool condition, a and b; writes one."""
    return Cost(
        vector_flops=_EAGER_VECTOR_FLOPS * sympy.sympify(numel),
        bytes_read=_nbytes(numel, BOOL) + 2 * _nbytes(numel, dtype),
        **_written(_nbytes(numel, dtype)),
    )


@primitive("full_like")
def full_like(numel: Size, *, dtype: DType) -> Cost:
    """A tensor of one value shaped like another (``aten.full_like``): nothing read, the values written."""
    return Cost(**_written(_nbytes(numel, dtype)))


@primitive("fill_", category="cast_copy")
def fill(numel: Size, *, dtype: DType) -> Cost:
    """``t.fill_(value)`` (``aten.fill_``) of ``numel`` elements: nothing read, every element written."""
    return Cost(**_written(_nbytes(numel, dtype)))


def constant_pad(numel: Size, padded_numel: Size, *, dtype: DType, fills: bool = True) -> list[OpCall]:
    """``F.pad`` with a constant (``aten.constant_pad_nd``) of a ``numel``-element input to
    ``padded_numel`` elements, as the kernels it runs (``constant_pad_nd`` in
    ``aten/src/ATen/native/PadNd.cpp``, a composite on every device): with a positive pad
    (``fills``), ``fill_`` of the padded output, then ``copy_`` of the input into its interior (the
    interior written twice); with every pad 0, a ``clone`` (``padded_numel`` equals ``numel``). Two
    ops, not one, so that a memory peak read off the ops sees the tensors the pad really holds."""
    if not fills:
        return [clone(numel, dtype=dtype)]
    return [fill(padded_numel, dtype=dtype), copy_into(numel, in_dtype=dtype, out_dtype=dtype)]


@primitive("tanh")
def tanh(numel: Size, *, dtype: DType) -> Cost:
    """``tanh x`` (``aten.tanh``)."""
    return _eager_unary(numel, dtype, None)


def gelu_tanh_eager(numel: Size, *, dtype: DType) -> list[OpCall]:
    """The tanh GELU written out in Python, ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``.

    Eager PyTorch runs it left to right as eight kernels over ``numel`` elements at ``dtype``: the
    products with a Python number read one tensor, ``x + …`` and the final product read two.
    """
    return [
        mul(numel, dtype=dtype, other_numel=0),  # 0.5·x
        pow_scalar(numel, dtype=dtype),  # x³
        mul(numel, dtype=dtype, other_numel=0),  # 0.044715·x³
        add(numel, dtype=dtype),  # x + …
        mul(numel, dtype=dtype, other_numel=0),  # √(2/π)·(…)
        tanh(numel, dtype=dtype),
        add(numel, dtype=dtype, other_numel=0),  # 1 + tanh(…)
        mul(numel, dtype=dtype),  # 0.5·x · (…)
    ]


@primitive("linalg_vector_norm", category="normalization")
def linalg_vector_norm(rows: Size, dim: Size, *, dtype: DType) -> Cost:
    """The 2-norm of ``rows`` vectors of ``dim`` elements (``aten.linalg_vector_norm``, what
    ``F.normalize`` and ``Tensor.norm`` run): reads them, writes one value per row.

    Two FLOPs per input element (square, sum), as the ``rms_norm`` primitive counts its square and sum.
    """
    numel = sympy.sympify(rows) * dim
    return Cost(
        vector_flops=2 * _EAGER_VECTOR_FLOPS * numel,
        bytes_read=_nbytes(numel, dtype),
        **_written(_nbytes(rows, dtype)),
    )


@primitive("clamp_min")
def clamp_min(numel: Size, *, dtype: DType) -> Cost:
    """``x.clamp_min(c)`` for a Python number ``c`` (``aten.clamp_min``): reads x, writes a new tensor."""
    return _eager_unary(numel, dtype, None)


@primitive("clamp")
def clamp(numel: Size, *, dtype: DType) -> Cost:
    """``x.clamp(lo, hi)`` for Python numbers (``aten.clamp``; ``clamp_`` in place writes the same bytes)."""
    return _eager_unary(numel, dtype, None)


@primitive("zeros_like", category="cast_copy")
def zeros_like(numel: Size, *, dtype: DType) -> Cost:
    """``torch.zeros_like(x)`` (``aten.zeros_like``): nothing read, ``numel`` zeros written."""
    return Cost(**_written(_nbytes(numel, dtype)))


@primitive("upsample_nearest_exact2d", category="cast_copy")
def upsample_nearest_exact2d(numel: Size, out_numel: Size, *, dtype: DType) -> Cost:
    """Nearest-exact 2-D upsampling (``aten._upsample_nearest_exact2d``): reads the ``numel`` input
    elements once, writes the ``out_numel`` output elements; no arithmetic."""
    return Cost(bytes_read=_nbytes(numel, dtype), **_written(_nbytes(out_numel, dtype)))


@primitive("repeat_interleave", category="cast_copy")
def repeat_interleave(numel: Size, repeats: Size, *, dtype: DType) -> Cost:
    """``x.repeat_interleave(repeats, dim)`` for an integer ``repeats``: PyTorch's composite expands x
    (a view) and clones it (``aten.clone``), reading the ``numel`` stored elements once and writing
    ``numel·repeats``."""
    return Cost(bytes_read=_nbytes(numel, dtype), **_written(_nbytes(sympy.sympify(numel) * repeats, dtype)))
