"""Compile a module tree once into evaluators: exact integers for one workload, float64 for grids.

Each unique expression of the tree (a repeated block's costs are one set, shared by its N ids) is
simplified once; all of them are lambdified as one list with common-subexpression elimination,
twice: to numpy for arrays of workloads, and to exact rational arithmetic for one workload.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import sympy
from attrs import frozen
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.pycode import PythonCodePrinter

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.cache import load_function
from llm_perf_opt.symbolic.cost import METRICS, simplify_expr
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.symbolic.symbols import WORKLOAD_SYMBOLS, Workload

__all__ = ["Evaluator", "GridPrinter", "GridResult", "compile_tree", "floor_divisions"]

FloatArray = npt.NDArray[np.float64]


class _ExactPrinter(PythonCodePrinter):  # type: ignore[misc]  # sympy is untyped
    """Python source that stays exact on Fraction inputs: rationals as Fraction, floor as integer floor."""

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return f"Fraction({expr.p}, {expr.q})"

    _print_Half = _print_Rational

    def _print_floor(self, expr: sympy.Expr) -> str:
        return f"floor({self._print(expr.args[0])})"

    def _print_ceiling(self, expr: sympy.Expr) -> str:
        return f"ceiling({self._print(expr.args[0])})"

    def _print_Float(self, expr: sympy.Float) -> str:
        raise LlmPerfOptError(
            f"expression: a float constant {expr} cannot be evaluated exactly; expected a Rational"
        )


_EXACT_NAMESPACE: dict[str, Any] = {"Fraction": Fraction, "floor": math.floor, "ceiling": math.ceil}


class FloorDivide(sympy.Function):  # type: ignore[misc]  # sympy is untyped
    """``⌊numerator / denominator⌋`` for an integer-valued numerator and a positive integer denominator.

    The grid evaluator must not write ``floor(x/q)`` as ``floor(x * (1/q))``: once ``1/q`` is rounded
    (q = 3, 5, …) the product can fall just below an integer and the floor is off by one. A power of
    two divides exactly; any other denominator goes through ``numpy.floor_divide``. Both are exact for
    integers below 2⁵³.
    """

    nargs = 2


class GridPrinter(NumPyPrinter):  # type: ignore[misc]  # sympy is untyped
    """NumPy source in which a :class:`FloorDivide` is exact (see there)."""

    def _print_FloorDivide(self, expr: sympy.Expr) -> str:
        numerator, denominator = expr.args
        q = int(denominator)
        if q & (q - 1) == 0:
            return f"{self._module_format('numpy.floor')}(({self._print(numerator)})/{q})"
        return f"{self._module_format('numpy.floor_divide')}({self._print(numerator)}, {q})"


def floor_divisions(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with every ``floor``/``ceiling`` of a ratio with an integer denominator as a FloorDivide."""

    def floor_of(arg: sympy.Expr) -> sympy.Expr:
        numerator, denominator = arg.as_numer_denom()
        if denominator.is_Integer and denominator > 1:
            return FloorDivide(numerator, denominator)
        return sympy.floor(arg)

    def ceiling_of(arg: sympy.Expr) -> sympy.Expr:
        numerator, denominator = arg.as_numer_denom()
        if denominator.is_Integer and denominator > 1:
            # ⌈x/q⌉ = −⌊−x/q⌋
            return -FloorDivide(-numerator, denominator)
        return sympy.ceiling(arg)

    return expr.replace(sympy.floor, floor_of).replace(sympy.ceiling, ceiling_of)


@frozen(eq=False)
class GridResult:
    """Float64 arrays for every module and metric of a tree, over a grid of workloads.

    Arrays are stored once per unique expression; ``slots`` maps a module id to the index of each
    metric's array, so the N blocks of a repeated block share their arrays. Every array has the full
    broadcast ``shape`` of the workload; one that does not vary with every input (a constant such as
    ``params``) is a read-only broadcast view that takes no memory.

    Attributes:
        values: one array per unique expression.
        slots: module id → index into ``values``, per metric in the order of :data:`METRICS`.
        shape: the broadcast shape of the workload.
    """

    values: tuple[FloatArray, ...]
    slots: Mapping[str, tuple[int, ...]]
    shape: tuple[int, ...]

    def __getitem__(self, key: tuple[str, str]) -> FloatArray:
        """``result[module_id, metric]``: the array of one metric of one module."""
        module_id, metric = key
        return self.values[_slot(self.slots, module_id, metric)]

    def metrics(self, module_id: str) -> dict[str, FloatArray]:
        """Every metric of one module, by name."""
        return {metric: self[module_id, metric] for metric in METRICS}


def _slot(slots: Mapping[str, tuple[int, ...]], module_id: str, metric: str) -> int:
    try:
        indices = slots[module_id]
    except KeyError:
        raise LlmPerfOptError(f"module_id: no module {module_id!r} in the compiled tree") from None
    try:
        return indices[METRICS.index(metric)]
    except ValueError:
        raise LlmPerfOptError(
            f"metric: unknown metric {metric!r}, expected one of {', '.join(METRICS)}"
        ) from None


class Evaluator:
    """The compiled costs of one module tree (see :func:`compile_tree`).

    Every module is evaluated by its ``aggregate`` cost: all its calls in one call of the root.
    The generated code is cached on disk (:mod:`.cache`), keyed by the expressions, so a new process
    loads it instead of simplifying and lambdifying again.

    Attributes:
        raw_expressions: the unique expressions as derived, in evaluator output order.
        slots: module id → index into them, per metric in the order of :data:`METRICS`.
    """

    def __init__(self, raw_expressions: tuple[sympy.Expr, ...], slots: Mapping[str, tuple[int, ...]]) -> None:
        self.raw_expressions = raw_expressions
        self.slots = slots
        self._grid, self._exact = _lambdify_both(raw_expressions)

    @functools.cached_property
    def expressions(self) -> tuple[sympy.Expr, ...]:
        """The unique expressions, simplified, in evaluator output order."""
        return _simplified(self.raw_expressions)

    @property
    def source(self) -> str:
        """The generated Python source of the numpy evaluator."""
        return inspect.getsource(self._grid)

    @property
    def exact_source(self) -> str:
        """The generated Python source of the exact evaluator."""
        return inspect.getsource(self._exact)

    def expression(self, module_id: str, metric: str) -> sympy.Expr:
        """The simplified expression the evaluator uses for one metric of one module."""
        return self.expressions[_slot(self.slots, module_id, metric)]

    def evaluate(self, workload: Workload) -> GridResult:
        """Float64 arrays for every module and metric over workload arrays of any broadcastable shapes.

        One call of the generated numpy function computes all unique expressions for all points.
        """
        inputs = [np.asarray(value, dtype=np.float64) for value in workload.values()]
        try:
            shape = np.broadcast_shapes(*(a.shape for a in inputs))
        except ValueError:
            shapes = {name: a.shape for name, a in zip(_FIELD_NAMES, inputs, strict=True)}
            raise LlmPerfOptError(f"workload: the value shapes {shapes} do not broadcast together") from None
        with np.errstate(all="ignore"):
            outputs = self._grid(*inputs)
        values = tuple(_full(out, shape) for out in outputs)
        return GridResult(values, self.slots, shape)

    def evaluate_exact(self, workload: Workload) -> dict[str, dict[str, int]]:
        """Exact Python ints for every module and metric of one workload of integer values.

        Raises when a metric is not an integer for this workload (e.g. a size that does not divide),
        naming the module, the metric and the workload.
        """
        args = []
        for name, value in zip(_FIELD_NAMES, workload.values(), strict=True):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise LlmPerfOptError(
                    f"workload.{name}: exact evaluation needs an integer, got {value!r}; "
                    f"use evaluate() for arrays"
                )
            args.append(Fraction(int(value)))
        outputs = self._exact(*args)
        integers: list[int] = []
        for index, out in enumerate(outputs):
            exact = Fraction(out)
            if exact.denominator != 1:
                module_id, metric = self._first_use(index)
                raise LlmPerfOptError(
                    f"{module_id}.{metric}: not an integer for workload {workload.subs()}: {exact}; "
                    f"expected a whole number of FLOPs, bytes or parameters"
                )
            integers.append(exact.numerator)
        return {
            module_id: {metric: integers[i] for metric, i in zip(METRICS, indices, strict=True)}
            for module_id, indices in self.slots.items()
        }

    def _first_use(self, index: int) -> tuple[str, str]:
        for module_id, indices in self.slots.items():
            if index in indices:
                return module_id, METRICS[indices.index(index)]
        raise AssertionError(index)


_FIELD_NAMES: tuple[str, ...] = tuple(symbol.name for symbol in WORKLOAD_SYMBOLS)


def _full(out: object, shape: tuple[int, ...]) -> FloatArray:
    array = np.asarray(out, dtype=np.float64)
    if array.shape == shape:
        return array
    return np.broadcast_to(array, shape)


@functools.lru_cache(maxsize=32)
def _simplified(expressions: tuple[sympy.Expr, ...]) -> tuple[sympy.Expr, ...]:
    return tuple(simplify_expr(expr) for expr in expressions)


_GRID_NAMESPACE: dict[str, Any] = {"numpy": np}


@functools.lru_cache(maxsize=32)
def _lambdify_both(
    expressions: tuple[sympy.Expr, ...],
) -> tuple[Callable[..., list[Any]], Callable[..., list[Any]]]:
    """The numpy and the exact evaluator of ``expressions`` (simplified first), cached on the
    expressions in memory and on disk."""
    material = "\n".join(str(expr) for expr in expressions)

    def grid() -> Callable[..., list[Any]]:
        return sympy.lambdify(  # type: ignore[no-any-return]
            WORKLOAD_SYMBOLS,
            [floor_divisions(expr) for expr in _simplified(expressions)],
            modules="numpy",
            printer=GridPrinter,
            cse=True,
        )

    def exact() -> Callable[..., list[Any]]:
        return sympy.lambdify(  # type: ignore[no-any-return]
            WORKLOAD_SYMBOLS,
            list(_simplified(expressions)),
            modules=[_EXACT_NAMESPACE],
            printer=_ExactPrinter,
            cse=True,
        )

    return (
        load_function(f"grid\n{material}", grid, _GRID_NAMESPACE),
        load_function(f"exact\n{material}", exact, _EXACT_NAMESPACE),
    )


@functools.lru_cache(maxsize=32)
def compile_tree(tree: ModuleTree, module_ids: tuple[str, ...] | None = None) -> Evaluator:
    """The :class:`Evaluator` of ``tree``, built once per tree object (and ``module_ids``) and cached.

    ``module_ids`` restricts it to some modules (default: all). Nodes that share a Cost object (the
    blocks of a repeated block) are visited once; each unique expression is simplified once and
    appears once in the generated code.
    """
    expressions: list[sympy.Expr] = []
    index_of: dict[sympy.Expr, int] = {}
    slots_of_cost: dict[int, tuple[int, ...]] = {}
    slots: dict[str, tuple[int, ...]] = {}
    nodes = list(tree) if module_ids is None else [tree[module_id] for module_id in module_ids]
    for node in nodes:
        cost = node.aggregate
        found = slots_of_cost.get(id(cost))
        if found is None:
            indices = []
            for _, raw in cost:
                index = index_of.get(raw)
                if index is None:
                    index = index_of[raw] = len(expressions)
                    expressions.append(raw)
                indices.append(index)
            found = slots_of_cost[id(cost)] = tuple(indices)
        slots[node.id] = found
    return Evaluator(tuple(expressions), MappingProxyType(slots))
