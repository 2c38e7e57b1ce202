"""The roofline time of an op kind, as a SymPy expression in the workload symbols and the
efficiency factors.

Each kind of op a module performs (:data:`~llm_perf_opt.symbolic.module.OpKind`: primitive and
compute dtype) runs as the kernel class its registry entry declares
(:attr:`~llm_perf_opt.symbolic.primitives.Primitive.op_class`), at a precision. Its time is that of
a roofline with efficiency factors ``η`` (symbols of :data:`~.efficiency.FACTOR_SYMBOLS`)::

    matmul, convolution, attention:  max(flops / (peak[precision] · η_class),
                                         bytes / (bandwidth · η_memory_tensor))
    element-wise:                    max(vector_flops / (peak[fp32] · η_vector),
                                         bytes / (bandwidth · η_memory_elementwise))

with ``bytes = bytes_read + bytes_written``. The element-wise score work of fused attention
(scale and softmax, counted in its ``vector_flops``) runs inside the kernel and is part of what
the attention factor measures, so it is not added. Times are in **seconds**.

Precision of an op kind (:func:`compute_precision`): bf16, fp16, fp8, fp4 and tf32 use the tensor
peak of that name. fp32 follows PyTorch's defaults (:class:`PrecisionPolicy`): fp32 matrix products
run on the non-tensor fp32 rate (``torch.backends.cuda.matmul.allow_tf32`` is ``False`` by default),
fp32 convolutions on TF32 tensor cores (``torch.backends.cudnn.allow_tf32`` is ``True`` by default);
fp32 attention runs on the fp32 rate. fp64 work (the official rotary embedding) is element-wise and
is priced at the fp32 non-tensor rate: the table has no fp64 rates and that work is memory-bound.
A ``tensor_precision`` other than bf16 makes every bf16 tensor op run at that peak instead (fp8
GEMMs); bytes stay those of the declarations.

Maxima are :class:`Maximum`, a function SymPy does not try to simplify (its ``Max`` compares every
pair of arguments, which is slow for long sums and pointless with symbolic factors); compiled code
takes the maximum numerically.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import sympy
from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import Accelerator
from llm_perf_opt.hardware.efficiency import ATTENTION_KERNELS, factor_symbol
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.module import OpKind
from llm_perf_opt.symbolic.primitives import PRIMITIVES, OpClass

__all__ = [
    "DEFAULT_POLICY",
    "Maximum",
    "OpClass",
    "PrecisionPolicy",
    "RooflineRule",
    "check_kernel",
    "compute_precision",
    "host_transfer_seconds",
    "kind_seconds",
    "maximum",
    "op_class",
    "roofline_rule",
]


class Maximum(sympy.Function):  # type: ignore[misc]  # sympy is untyped
    """``max(a, b, …)`` left unevaluated: compiled to nested ``numpy.maximum`` calls."""


def maximum(*terms: sympy.Expr) -> sympy.Expr:
    """The maximum of ``terms`` (0 for none, the term itself for one), unevaluated."""
    unique = list(dict.fromkeys(sympy.sympify(t) for t in terms))
    if not unique:
        return sympy.Integer(0)
    if len(unique) == 1:
        return unique[0]
    return Maximum(*unique)


def op_class(primitive: str) -> OpClass:
    """The kernel class of a registered primitive (its registry entry's ``op_class``)."""
    try:
        return PRIMITIVES[primitive].op_class
    except KeyError:
        raise LlmPerfOptError(
            f"primitive: unknown primitive {primitive!r}; registered: {', '.join(PRIMITIVES)}"
        ) from None


_FP32_MODES: Final = ("fp32", "tf32")
_TENSOR_DTYPES: Final = ("bf16", "fp16", "fp8", "fp4", "tf32")


def _fp32_mode(_instance: object, attribute: Any, value: object) -> None:
    if value not in _FP32_MODES:
        raise LlmPerfOptError(f"{attribute.name}: must be one of {', '.join(_FP32_MODES)}, got {value!r}")


@frozen
class PrecisionPolicy:
    """Which peak fp32 matrix products and convolutions run at.

    Attributes:
        fp32_matmul: ``"fp32"`` (PyTorch default: ``torch.backends.cuda.matmul.allow_tf32 = False``)
            or ``"tf32"``.
        fp32_convolution: ``"tf32"`` (PyTorch default: ``torch.backends.cudnn.allow_tf32 = True``)
            or ``"fp32"``.
    """

    fp32_matmul: str = field(default="fp32", validator=_fp32_mode)
    fp32_convolution: str = field(default="tf32", validator=_fp32_mode)


DEFAULT_POLICY: Final = PrecisionPolicy()
"""PyTorch's defaults: fp32 matmuls without TF32, fp32 convolutions with TF32."""


def compute_precision(
    kind_class: OpClass, dtype: str, policy: PrecisionPolicy = DEFAULT_POLICY, tensor_precision: str = "bf16"
) -> str:
    """The peak-rate key (of ``Accelerator.peak_tflops``) an op of ``kind_class`` at ``dtype`` runs at.

    Element-wise work always runs at the fp32 non-tensor rate; bf16 tensor work at
    ``tensor_precision``. Raises for a tensor op without a floating-point dtype.
    """
    if kind_class is OpClass.ELEMENTWISE:
        return "fp32"
    if dtype == "bf16":
        return tensor_precision
    if dtype in _TENSOR_DTYPES:
        return dtype
    if dtype == "fp32":
        if kind_class is OpClass.MATMUL:
            return policy.fp32_matmul
        if kind_class is OpClass.CONVOLUTION:
            return policy.fp32_convolution
        return "fp32"
    if dtype == "fp64":
        return "fp32"
    raise LlmPerfOptError(
        f"dtype: a {kind_class.value} op computes at {dtype!r}; expected one of "
        f"{', '.join((*_TENSOR_DTYPES, 'fp32', 'fp64'))}"
    )


@frozen
class RooflineRule:
    """How one op kind's time is computed.

    Attributes:
        work: the Cost field of its arithmetic: ``flops`` or ``vector_flops``.
        precision: the peak-rate key it runs at.
        compute_factor: the efficiency factor key of its arithmetic.
        memory_factor: the efficiency factor key of its memory traffic.
    """

    work: str
    precision: str
    compute_factor: str
    memory_factor: str


def check_kernel(attention_kernel: str) -> None:
    """Reject an attention kernel without an efficiency factor, listing the known ones."""
    if attention_kernel not in ATTENTION_KERNELS:
        raise LlmPerfOptError(
            f"attention_kernel: unknown kernel {attention_kernel!r}; accepted: {', '.join(ATTENTION_KERNELS)}"
        )


@functools.cache
def roofline_rule(
    kind: OpKind,
    attention_kernel: str,
    policy: PrecisionPolicy = DEFAULT_POLICY,
    tensor_precision: str = "bf16",
) -> RooflineRule:
    """The :class:`RooflineRule` of an op kind; attention uses the factor of ``attention_kernel``."""
    check_kernel(attention_kernel)
    primitive, dtype = kind
    kind_class = op_class(primitive)
    precision = compute_precision(kind_class, dtype, policy, tensor_precision)
    if kind_class is OpClass.ELEMENTWISE:
        return RooflineRule("vector_flops", precision, "vector", "memory_elementwise")
    factor = f"attention.{attention_kernel}" if kind_class is OpClass.ATTENTION else kind_class.value
    return RooflineRule("flops", precision, factor, "memory_tensor")


def kind_seconds(cost: Cost, rule: RooflineRule, accelerator: Accelerator) -> sympy.Expr:
    """Seconds of ``cost`` run as ``rule`` on ``accelerator``, with the factors as symbols.

    When the work is a constant multiple of the traffic (element-wise ops: both ∝ elements), the
    maximum is taken of the per-byte times, ``traffic · max(ratio / compute rate, 1 / memory rate)``:
    the same value, with the maximum of two constants instead of two workload arrays.
    """
    work = sympy.sympify(getattr(cost, rule.work))
    traffic = sympy.sympify(cost.bytes_read + cost.bytes_written)
    compute_rate = sympy.Float(accelerator.peak_flops(rule.precision)) * factor_symbol(rule.compute_factor)
    memory_rate = sympy.Float(accelerator.memory_bandwidth) * factor_symbol(rule.memory_factor)
    if work == 0:
        return traffic / memory_rate
    if traffic == 0:
        return work / compute_rate
    ratio = _constant_ratio(work, traffic)
    if ratio is not None:
        return traffic * Maximum(ratio / compute_rate, 1 / memory_rate)
    return Maximum(work / compute_rate, traffic / memory_rate)


@functools.lru_cache(maxsize=4096)
def _constant_ratio(work: sympy.Expr, traffic: sympy.Expr) -> sympy.Expr | None:
    """``work / traffic`` when it does not depend on the workload, else ``None``."""
    ratio = sympy.cancel(work / traffic)
    return None if ratio.free_symbols else ratio


def host_transfer_seconds(nbytes: sympy.Expr, accelerator: Accelerator) -> sympy.Expr:
    """Seconds to copy ``nbytes`` between host and device over the host link (one direction), at
    the ``host_link`` factor: offload and reload of weights."""
    return sympy.sympify(nbytes) / sympy.Float(accelerator.host_link_bandwidth) / factor_symbol("host_link")
