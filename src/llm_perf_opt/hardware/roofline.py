"""The roofline time of every module, as SymPy expressions in the workload symbols.

Each kind of op a module performs (:data:`~llm_perf_opt.symbolic.module.OpKind`: primitive and
compute dtype) is mapped to an op class and a precision. Its time is that of a roofline with
efficiency factors::

    matmul, convolution, attention:  max(flops / (peak[precision] · η_class),
                                         bytes / (bandwidth · η_memory_tensor))
    element-wise:                    max(vector_flops / (peak[fp32] · η_vector),
                                         bytes / (bandwidth · η_memory_elementwise))

with ``bytes = bytes_read + bytes_written``. The element-wise score work of fused attention
(scale and softmax, counted in its ``vector_flops``) runs inside the kernel and is part of what
the attention factor measures, so it is not added. A module's time is
``calls · Σ own kinds + Σ children``: a parent's time is exactly its own plus its children's.
Times are in **seconds**, per call of the root (one transformer forward for the DiT tree), like
the costs' ``aggregate``.

Precision of an op kind (:func:`compute_precision`): bf16, fp16, fp8, fp4 and tf32 use the tensor
peak of that name. fp32 follows PyTorch's defaults (:class:`PrecisionPolicy`): fp32 matrix products
run on the non-tensor fp32 rate (``torch.backends.cuda.matmul.allow_tf32`` is ``False`` by default),
fp32 convolutions on TF32 tensor cores (``torch.backends.cudnn.allow_tf32`` is ``True`` by default);
fp32 attention runs on the fp32 rate. fp64 work (the official rotary embedding) is element-wise and
is priced at the fp32 non-tensor rate: the table has no fp64 rates and that work is memory-bound.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Hashable, Mapping
from enum import Enum
from types import MappingProxyType
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import sympy
from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import Accelerator
from llm_perf_opt.hardware.efficiency import ATTENTION_KERNELS, EFFICIENCIES, Efficiency, EfficiencyTable
from llm_perf_opt.symbolic.compiler import GridPrinter, floor_divisions
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree, OpKind
from llm_perf_opt.symbolic.primitives import PRIMITIVES
from llm_perf_opt.symbolic.symbols import WORKLOAD_SYMBOLS, Workload

__all__ = [
    "DEFAULT_POLICY",
    "CostAdjustment",
    "OpClass",
    "PrecisionPolicy",
    "RooflineRule",
    "RooflineTerm",
    "TimeModel",
    "compile_seconds",
    "compute_precision",
    "host_transfer_seconds",
    "op_class",
    "own_terms",
    "roofline_rule",
    "roofline_terms",
    "terms_seconds",
    "time_model",
]

FloatArray = npt.NDArray[np.float64]


class OpClass(Enum):
    """What kind of kernel an op is, for its efficiency factor."""

    MATMUL = "matmul"
    ATTENTION = "attention"
    CONVOLUTION = "convolution"
    ELEMENTWISE = "elementwise"


MATMUL_PRIMITIVES: Final = frozenset({"mm", "addmm", "bmm", "baddbmm"})
CONVOLUTION_PRIMITIVES: Final = frozenset({"convolution"})
ATTENTION_PREFIX: Final = "_scaled_dot_product_"
"""Every fused-attention primitive key starts with this (the aten op names)."""


def op_class(primitive: str) -> OpClass:
    """The op class of a registered primitive: every one that is not a matrix product, a
    convolution or fused attention is element-wise (casts, norms, activations, rotary embedding,
    products, sums, embedding lookups). An unregistered key is an error."""
    if primitive in MATMUL_PRIMITIVES:
        return OpClass.MATMUL
    if primitive in CONVOLUTION_PRIMITIVES:
        return OpClass.CONVOLUTION
    if primitive.startswith(ATTENTION_PREFIX):
        return OpClass.ATTENTION
    if primitive in PRIMITIVES:
        return OpClass.ELEMENTWISE
    raise LlmPerfOptError(f"primitive: unknown primitive {primitive!r}; registered: {', '.join(PRIMITIVES)}")


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


def compute_precision(kind_class: OpClass, dtype: str, policy: PrecisionPolicy = DEFAULT_POLICY) -> str:
    """The peak-rate key (of ``Accelerator.peak_tflops``) an op of ``kind_class`` at ``dtype`` runs at.

    Element-wise work always runs at the fp32 non-tensor rate. Raises for a tensor op without a
    floating-point dtype.
    """
    if kind_class is OpClass.ELEMENTWISE:
        return "fp32"
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


def _check_kernel(attention_kernel: str) -> None:
    if attention_kernel not in ATTENTION_KERNELS:
        raise LlmPerfOptError(
            f"attention_kernel: unknown kernel {attention_kernel!r}; accepted: {', '.join(ATTENTION_KERNELS)}"
        )


def roofline_rule(
    kind: OpKind, attention_kernel: str, policy: PrecisionPolicy = DEFAULT_POLICY
) -> RooflineRule:
    """The :class:`RooflineRule` of an op kind; attention uses the factor of ``attention_kernel``."""
    _check_kernel(attention_kernel)
    primitive, dtype = kind
    kind_class = op_class(primitive)
    precision = compute_precision(kind_class, dtype, policy)
    if kind_class is OpClass.ELEMENTWISE:
        return RooflineRule("vector_flops", precision, "vector", "memory_elementwise")
    factor = f"attention.{attention_kernel}" if kind_class is OpClass.ATTENTION else kind_class.value
    return RooflineRule("flops", precision, factor, "memory_tensor")


def _kind_seconds(
    cost: Cost, rule: RooflineRule, accelerator: Accelerator, efficiency: Efficiency
) -> sympy.Expr:
    compute_rate = accelerator.peak_flops(rule.precision) * efficiency.factor(rule.compute_factor)
    memory_rate = accelerator.memory_bandwidth * efficiency.factor(rule.memory_factor)
    work = getattr(cost, rule.work)
    traffic = cost.bytes_read + cost.bytes_written
    return sympy.Max(work / sympy.Float(compute_rate), traffic / sympy.Float(memory_rate))


class CostAdjustment(Protocol):
    """A rewrite of each op kind's cost before its roofline (e.g. the per-rank share of a
    sequence-parallel run, :mod:`.parallel`). ``key`` groups nodes the rewrite treats alike."""

    def key(self, node: ModuleNode) -> Hashable:
        """Nodes with equal keys (and equal declarations) get the same rewrite."""
        ...

    def __call__(self, node: ModuleNode, kind: OpKind, cost: Cost) -> Cost:
        """The cost of ``kind`` in one call of ``node`` as the time model should see it."""
        ...


def _structure_keys(tree: ModuleTree, adjust: CostAdjustment | None) -> dict[str, Hashable]:
    """A key per node that is equal for nodes whose time expressions are equal.

    Built bottom-up: (own ops object, calls, adjustment key, children's keys). The N blocks of a
    repeated block share their own-op objects (the builder memoises them), so they share a key and
    their time expression is built once.
    """
    keys: dict[str, Hashable] = {}
    for node in reversed(list(tree)):
        keys[node.id] = (
            id(node.own_breakdown),
            node.calls,
            None if adjust is None else adjust.key(node),
            tuple(keys[child] for child in node.children),
        )
    return keys


def _time_expressions(
    tree: ModuleTree,
    accelerator: Accelerator,
    efficiency: Efficiency,
    attention_kernel: str,
    policy: PrecisionPolicy,
    adjust: CostAdjustment | None,
) -> tuple[dict[str, sympy.Expr], dict[str, sympy.Expr]]:
    keys = _structure_keys(tree, adjust)
    own_of_key: dict[Hashable, sympy.Expr] = {}
    total_of_key: dict[Hashable, sympy.Expr] = {}
    own: dict[str, sympy.Expr] = {}
    total: dict[str, sympy.Expr] = {}
    for node in reversed(list(tree)):
        key = keys[node.id]
        if key not in total_of_key:
            parts = []
            for kind, cost in node.own_breakdown.items():
                seen = cost if adjust is None else adjust(node, kind, cost)
                rule = roofline_rule(kind, attention_kernel, policy)
                parts.append(_kind_seconds(seen, rule, accelerator, efficiency))
            own_of_key[key] = node.calls * sympy.Add(*parts)
            total_of_key[key] = sympy.Add(own_of_key[key], *(total[child] for child in node.children))
        own[node.id] = own_of_key[key]
        total[node.id] = total_of_key[key]
    ordered = [node.id for node in tree]
    return {i: total[i] for i in ordered}, {i: own[i] for i in ordered}


class _Maximum(sympy.Function):  # type: ignore[misc]  # sympy is untyped
    """``Max`` without SymPy's argument simplification (pairwise comparisons of its arguments,
    quadratic and slow for long sums): rebuilding it while compiling costs nothing."""


def _plain_maxima(expr: sympy.Expr, memo: dict[sympy.Expr, sympy.Expr]) -> sympy.Expr:
    """``expr`` with every ``Max`` as a :class:`_Maximum`, bottom-up, never re-evaluating a ``Max``."""
    found = memo.get(expr)
    if found is not None:
        return found
    if expr.is_Atom:
        result = expr
    else:
        args = [_plain_maxima(arg, memo) for arg in expr.args]
        if isinstance(expr, sympy.Max):
            result = _Maximum(*args)
        elif all(new is old for new, old in zip(args, expr.args, strict=True)):
            result = expr
        else:
            result = expr.func(*args)
    memo[expr] = result
    return result


class _TimePrinter(GridPrinter):
    """The grid printer of the cost compiler (exact floor divisions), with a maximum as nested
    ``numpy.maximum`` calls."""

    def _print__Maximum(self, expr: sympy.Expr) -> str:
        maximum = self._module_format("numpy.maximum")
        printed = [self._print(arg) for arg in expr.args]
        nested: str = functools.reduce(lambda left, right: f"{maximum}({left}, {right})", printed)
        return nested


@functools.lru_cache(maxsize=64)
def compile_seconds(expressions: tuple[sympy.Expr, ...]) -> Callable[..., list[Any]]:
    """One numpy function of the six workload arrays returning every expression (lambdify with
    common-subexpression elimination, floors divided exactly), cached on the expressions."""
    memo: dict[sympy.Expr, sympy.Expr] = {}
    return sympy.lambdify(  # type: ignore[no-any-return]
        WORKLOAD_SYMBOLS,
        [floor_divisions(_plain_maxima(expr, memo)) for expr in expressions],
        modules="numpy",
        printer=_TimePrinter,
        cse=True,
    )


@frozen(kw_only=True, eq=False)
class TimeModel:
    """The roofline time of every module of a tree on one device, as expressions and compiled.

    Attributes:
        tree: the module tree.
        accelerator: the device.
        efficiency: the factors used (the device's, see :meth:`EfficiencyTable.for_device`).
        attention_kernel: the fused-attention kernel assumed (``sdpa``, ``fa2``, ``fa3``).
        policy: the fp32 precision policy.
        seconds: module id → its time in seconds per call of the root, all its calls (the module's
            own ops over its calls plus its children's times).
        own_seconds: module id → the time of its own ops over all its calls.
    """

    tree: ModuleTree
    accelerator: Accelerator
    efficiency: Efficiency
    attention_kernel: str
    policy: PrecisionPolicy
    seconds: Mapping[str, sympy.Expr]
    own_seconds: Mapping[str, sympy.Expr]

    def expression(self, module_id: str) -> sympy.Expr:
        """The time of one module in seconds, as an expression in the workload symbols."""
        try:
            return self.seconds[module_id]
        except KeyError:
            raise LlmPerfOptError(
                f"module_id: no module {module_id!r} in the tree rooted at {self.tree.root_id!r}"
            ) from None

    @property
    def root_seconds(self) -> sympy.Expr:
        """The root's time: one call of the root, in seconds."""
        return self.seconds[self.tree.root_id]

    def _compiled(self) -> tuple[Callable[..., list[Any]], dict[str, int], int]:
        unique: dict[sympy.Expr, int] = {}
        slots = {node_id: unique.setdefault(expr, len(unique)) for node_id, expr in self.seconds.items()}
        return compile_seconds(tuple(unique)), slots, len(unique)

    @property
    def source(self) -> str:
        """The generated numpy source of the compiled time expressions."""
        return inspect.getsource(self._compiled()[0])

    def evaluate(self, workload: Workload) -> dict[str, FloatArray]:
        """Seconds of every module over workload arrays of any broadcastable shapes (float64)."""
        function, slots, _ = self._compiled()
        inputs = [np.asarray(value, dtype=np.float64) for value in workload.values()]
        try:
            shape = np.broadcast_shapes(*(a.shape for a in inputs))
        except ValueError:
            raise LlmPerfOptError(
                f"workload: the value shapes {[a.shape for a in inputs]} do not broadcast together"
            ) from None
        with np.errstate(all="ignore"):
            outputs = [np.broadcast_to(np.asarray(o, dtype=np.float64), shape) for o in function(*inputs)]
        return {node_id: outputs[slot] for node_id, slot in slots.items()}

    def evaluate_point(self, workload: Workload) -> dict[str, float]:
        """Seconds of every module for one workload of integers, as Python floats."""
        for name, value in zip(
            ("batch", "frames", "height", "width", "steps", "text_len"), workload.values(), strict=True
        ):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise LlmPerfOptError(
                    f"workload.{name}: one point needs an integer, got {value!r}; use evaluate()"
                )
        return {node_id: float(value) for node_id, value in self.evaluate(workload).items()}


def time_model(
    tree: ModuleTree,
    accelerator: Accelerator,
    efficiencies: EfficiencyTable = EFFICIENCIES,
    *,
    attention_kernel: str = "fa2",
    policy: PrecisionPolicy = DEFAULT_POLICY,
    adjust: CostAdjustment | None = None,
) -> TimeModel:
    """The roofline :class:`TimeModel` of ``tree`` on ``accelerator`` (seconds per root call).

    ``attention_kernel`` picks the attention factor; a kernel without a factor on the device's
    family (FA3 off Hopper) and an op at a precision the device lacks (fp8 on an A100) are errors
    that list what the device supports. ``adjust`` rewrites each op kind's cost first (see
    :class:`CostAdjustment`). Expressions are built once per call; compiling them happens on the
    first evaluation and is cached on the expressions.
    """
    _check_kernel(attention_kernel)
    efficiency = efficiencies.for_device(accelerator)
    efficiency.factor(f"attention.{attention_kernel}")
    seconds, own = _time_expressions(tree, accelerator, efficiency, attention_kernel, policy, adjust)
    return TimeModel(
        tree=tree,
        accelerator=accelerator,
        efficiency=efficiency,
        attention_kernel=attention_kernel,
        policy=policy,
        seconds=MappingProxyType(seconds),
        own_seconds=MappingProxyType(own),
    )


# ─── the same roofline, numerically, for fitting factors ───────────────────────────────────────


@frozen
class RooflineTerm:
    """One op kind of one module, evaluated at one workload, before efficiency factors.

    ``seconds = count · max(compute_seconds / η[compute_factor], memory_seconds / η[memory_factor])``.

    Attributes:
        module_id: the first module (pre-order) this term stands for.
        kind: the op kind.
        count: calls per root call, times the modules that share this term (the N blocks).
        compute_seconds: work / peak, at efficiency 1, per call.
        compute_factor: factor key dividing it.
        memory_seconds: bytes / bandwidth, at efficiency 1, per call.
        memory_factor: factor key dividing it.
    """

    module_id: str
    kind: OpKind
    count: float
    compute_seconds: float
    compute_factor: str
    memory_seconds: float
    memory_factor: str


def roofline_terms(
    tree: ModuleTree,
    accelerator: Accelerator,
    workload: Workload,
    *,
    attention_kernel: str = "fa2",
    policy: PrecisionPolicy = DEFAULT_POLICY,
    adjust: CostAdjustment | None = None,
) -> tuple[RooflineTerm, ...]:
    """Every op kind of every module at one integer workload, as numbers before the factors.

    :func:`terms_seconds` of these terms equals :func:`time_model`'s root time for the same
    factors; refitting factors only re-weighs the terms, with no recompilation.
    """
    _check_kernel(attention_kernel)
    subs = workload.subs()
    found: dict[tuple[Hashable, OpKind], list[Any]] = {}
    for node in tree:
        own_key = (id(node.own_breakdown), node.calls, None if adjust is None else adjust.key(node))
        for kind, cost in node.own_breakdown.items():
            entry = found.get((own_key, kind))
            if entry is not None:
                entry[1] += 1
                continue
            seen = cost if adjust is None else adjust(node, kind, cost)
            rule = roofline_rule(kind, attention_kernel, policy)
            calls = float(sympy.sympify(node.calls).subs(subs))
            work = float(sympy.sympify(getattr(seen, rule.work)).subs(subs))
            traffic = float(sympy.sympify(seen.bytes_read + seen.bytes_written).subs(subs))
            term = RooflineTerm(
                module_id=node.id,
                kind=kind,
                count=calls,
                compute_seconds=work / accelerator.peak_flops(rule.precision),
                compute_factor=rule.compute_factor,
                memory_seconds=traffic / accelerator.memory_bandwidth,
                memory_factor=rule.memory_factor,
            )
            found[(own_key, kind)] = [term, 1]
    return tuple(
        RooflineTerm(
            module_id=term.module_id,
            kind=term.kind,
            count=term.count * multiplicity,
            compute_seconds=term.compute_seconds,
            compute_factor=term.compute_factor,
            memory_seconds=term.memory_seconds,
            memory_factor=term.memory_factor,
        )
        for term, multiplicity in found.values()
    )


def own_terms(
    tree: ModuleTree,
    accelerator: Accelerator,
    workload: Workload,
    *,
    attention_kernel: str = "fa2",
    policy: PrecisionPolicy = DEFAULT_POLICY,
    adjust: CostAdjustment | None = None,
) -> dict[str, tuple[RooflineTerm, ...]]:
    """Each module's own op kinds at one integer workload, as numbers before the factors.

    ``terms_seconds(own_terms(...)[module_id], efficiency)`` equals ``time_model(...)`` 's
    ``own_seconds[module_id]`` at that workload (each term's ``count`` is the module's calls per
    root call). Modules with the same own ops, calls and adjustment share one tuple (the blocks).
    """
    _check_kernel(attention_kernel)
    values = {
        symbol: sympy.Integer(int(value))
        for symbol, value in zip(WORKLOAD_SYMBOLS, workload.values(), strict=True)
    }

    def number(expr: sympy.Expr) -> float:
        return float(sympy.sympify(expr).xreplace(values))

    memo: dict[Hashable, tuple[RooflineTerm, ...]] = {}
    found: dict[str, tuple[RooflineTerm, ...]] = {}
    for node in tree:
        key = (id(node.own_breakdown), node.calls, None if adjust is None else adjust.key(node))
        terms = memo.get(key)
        if terms is None:
            calls = number(node.calls)
            listed = []
            for kind, cost in node.own_breakdown.items():
                seen = cost if adjust is None else adjust(node, kind, cost)
                rule = roofline_rule(kind, attention_kernel, policy)
                listed.append(
                    RooflineTerm(
                        module_id=node.id,
                        kind=kind,
                        count=calls,
                        compute_seconds=number(getattr(seen, rule.work))
                        / accelerator.peak_flops(rule.precision),
                        compute_factor=rule.compute_factor,
                        memory_seconds=number(seen.bytes_read + seen.bytes_written)
                        / accelerator.memory_bandwidth,
                        memory_factor=rule.memory_factor,
                    )
                )
            terms = memo[key] = tuple(listed)
        found[node.id] = terms
    return found


def terms_seconds(terms: tuple[RooflineTerm, ...], factor: Callable[[str], float] | Efficiency) -> float:
    """Total seconds of ``terms`` under the factors ``factor(key)`` (or an :class:`Efficiency`)."""
    lookup = factor.factor if isinstance(factor, Efficiency) else factor
    return sum(
        t.count
        * max(t.compute_seconds / lookup(t.compute_factor), t.memory_seconds / lookup(t.memory_factor))
        for t in terms
    )


def host_transfer_seconds(
    nbytes: float, accelerator: Accelerator, efficiencies: EfficiencyTable = EFFICIENCIES
) -> float:
    """Seconds to copy ``nbytes`` between host and device over the host link (one direction), at
    the device's ``host_link`` factor: offload and reload of weights."""
    return nbytes / (
        accelerator.host_link_bandwidth * efficiencies.for_device(accelerator).factor("host_link")
    )
