"""Compile a module tree once into evaluators: exact integers for one workload, float64 for grids.

Each unique expression of the tree (a repeated block's costs are one set, shared by its N ids) is
simplified once; all of them are lambdified as one list with common-subexpression elimination,
twice: to numpy for arrays of workloads, and to exact rational arithmetic for one workload.
"""

from __future__ import annotations

import functools
import importlib
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
from llm_perf_opt.symbolic.symbols import INPUT_SYMBOLS, Workload
from llm_perf_opt.symbolic.whatif import check_whatifs, exact_whatifs

__all__ = [
    "Column",
    "ColumnEvaluator",
    "ColumnGrid",
    "Evaluator",
    "GridPrinter",
    "GridResult",
    "compile_columns",
    "compile_tree",
    "floor_divisions",
]

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
    """NumPy source in which a :class:`FloorDivide` is exact (see there) and a SymPy ``Min`` or
    ``Max`` (the steps of an expert, the guided forwards) is nested ``numpy.minimum`` /
    ``numpy.maximum`` calls."""

    def _print_FloorDivide(self, expr: sympy.Expr) -> str:
        numerator, denominator = expr.args
        q = int(denominator)
        if q & (q - 1) == 0:
            return f"{self._module_format('numpy.floor')}(({self._print(numerator)})/{q})"
        return f"{self._module_format('numpy.floor_divide')}({self._print(numerator)}, {q})"

    def _print_Min(self, expr: sympy.Expr) -> str:
        return self._nested("numpy.minimum", expr)

    def _print_Max(self, expr: sympy.Expr) -> str:
        return self._nested("numpy.maximum", expr)

    def _nested(self, name: str, expr: sympy.Expr) -> str:
        """``name(name(a, b), c)``: element-wise over arrays that broadcast (``numpy.amin`` of a tuple
        would need equal shapes)."""
        function = self._module_format(name)
        nested: str = functools.reduce(
            lambda left, right: f"{function}({left}, {right})", (self._print(arg) for arg in expr.args)
        )
        return nested


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

    def __init__(
        self,
        raw_expressions: tuple[sympy.Expr, ...],
        slots: Mapping[str, tuple[int, ...]],
        *,
        simplify: bool = True,
        key: str | None = None,
    ) -> None:
        self.raw_expressions = raw_expressions
        self.slots = slots
        self._simplify = simplify
        self._grid, self._exact = _lambdify_both(raw_expressions, simplify, key)

    @functools.cached_property
    def expressions(self) -> tuple[sympy.Expr, ...]:
        """The unique expressions the evaluator computes (simplified unless built with ``simplify=False``)."""
        return _simplified(self.raw_expressions) if self._simplify else self.raw_expressions

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
        check_whatifs(workload)
        inputs = [np.asarray(value, dtype=np.float64) for value in workload.inputs()]
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
        check_whatifs(workload)
        args = []
        for name, value in zip(_FIELD_NAMES, workload.values(), strict=False):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise LlmPerfOptError(
                    f"workload.{name}: exact evaluation needs an integer, got {value!r}; "
                    f"use evaluate() for arrays"
                )
            args.append(Fraction(int(value)))
        args += exact_whatifs(workload)
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


_FIELD_NAMES: tuple[str, ...] = tuple(symbol.name for symbol in INPUT_SYMBOLS)


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
    raw: tuple[sympy.Expr, ...], simplify: bool, key: str | None
) -> tuple[Callable[..., list[Any]], Callable[..., list[Any]]]:
    """The numpy and the exact evaluator of ``raw`` (simplified first, if asked), cached on the
    expressions in memory and on disk: the disk entry is keyed by ``key`` (what determines the
    expressions, with the package's code) or else by the printed expressions."""
    material = f"simplify={simplify}\n" + (key if key is not None else "\n".join(str(expr) for expr in raw))

    def expressions() -> tuple[sympy.Expr, ...]:
        return _simplified(raw) if simplify else raw

    def grid() -> Callable[..., list[Any]]:
        return sympy.lambdify(  # type: ignore[no-any-return]
            INPUT_SYMBOLS,
            [floor_divisions(expr) for expr in expressions()],
            modules="numpy",
            printer=GridPrinter,
            cse=True,
        )

    def exact() -> Callable[..., list[Any]]:
        return sympy.lambdify(  # type: ignore[no-any-return]
            INPUT_SYMBOLS,
            list(expressions()),
            modules=[_EXACT_NAMESPACE],
            printer=_ExactPrinter,
            cse=True,
        )

    return (
        load_function(f"grid\n{material}", grid, _GRID_NAMESPACE, outputs=len(raw)),
        load_function(f"exact\n{material}", exact, _EXACT_NAMESPACE, outputs=len(raw)),
    )


@functools.lru_cache(maxsize=32)
def compile_tree(
    tree: ModuleTree, module_ids: tuple[str, ...] | None = None, *, key: str | None = None
) -> Evaluator:
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
    return Evaluator(
        tuple(expressions),
        MappingProxyType(slots),
        key=None if key is None else f"{key}|{module_ids}",
    )


# ─── selective compilation: only the (module, metric) columns asked for ──────────────────────────

Column = tuple[str, str]
"""``(module_id, metric)``: one column of a selective evaluation."""


@frozen(eq=False)
class ColumnGrid:
    """Float64 arrays of some ``(module_id, metric)`` columns over a grid of workloads.

    Attributes:
        columns: the columns, in the order asked for.
        values: one array per column, each of the full broadcast ``shape`` (columns with the same
            expression share one array).
        shape: the broadcast shape of the workload.
    """

    columns: tuple[Column, ...]
    values: tuple[Any, ...]
    shape: tuple[int, ...]

    def __getitem__(self, key: Column) -> FloatArray:
        """``result[module_id, metric]``: the array of one column asked for."""
        try:
            return self.values[self.columns.index(key)]  # type: ignore[no-any-return]
        except ValueError:
            raise LlmPerfOptError(
                f"column: {key[0]}:{key[1]} was not evaluated; evaluated: "
                f"{', '.join(f'{m}:{k}' for m, k in self.columns)}"
            ) from None

    def metrics(self, module_id: str) -> dict[str, FloatArray]:
        """The evaluated metrics of one module, by name."""
        return {metric: self[module, metric] for module, metric in self.columns if module == module_id}


class ColumnEvaluator:
    """The compiled costs of some columns of a module tree (see :func:`compile_columns`).

    The generated function computes only the unique expressions of these columns, with common
    sub-expressions shared, so asking for one column of a large tree costs one expression.

    Attributes:
        columns: the ``(module_id, metric)`` columns, in output order.
        expressions: the unique simplified expressions.
        column_index: for each column, the index of its expression.
    """

    def __init__(
        self, columns: tuple[Column, ...], expressions: tuple[sympy.Expr, ...], column_index: tuple[int, ...]
    ) -> None:
        self.columns = columns
        self.expressions = expressions
        self.column_index = column_index
        self._grid = _lambdify_grid(expressions)

    @property
    def source(self) -> str:
        """The generated Python source of the numpy evaluator."""
        return inspect.getsource(self._grid)

    def evaluate_arrays(self, *inputs: Any) -> tuple[Any, ...]:
        """One output per column from the nine input arrays (workload, then what-ifs) as given (numpy
        arrays, or any array type that numpy ufuncs dispatch to, such as dask arrays or their
        chunks), not broadcast."""
        with np.errstate(all="ignore"):
            outputs = self._grid(*inputs)
        return tuple(outputs[index] for index in self.column_index)

    def evaluate(self, workload: Workload) -> ColumnGrid:
        """Float64 arrays of the columns over workload arrays of any broadcastable shapes.

        When any value is a dask array the result is lazy: dask arrays of the broadcast shape whose
        chunks are evaluated one at a time, all columns of a chunk in one call, when computed.
        """
        check_whatifs(workload)
        if any(_is_dask(value) for value in workload.inputs()):
            return self._evaluate_lazily(workload)
        inputs = [np.asarray(value, dtype=np.float64) for value in workload.inputs()]
        try:
            shape = np.broadcast_shapes(*(a.shape for a in inputs))
        except ValueError:
            shapes = {name: a.shape for name, a in zip(_FIELD_NAMES, inputs, strict=True)}
            raise LlmPerfOptError(f"workload: the value shapes {shapes} do not broadcast together") from None
        unique = {
            index: _full(out, shape)
            for index, out in zip(self.column_index, self.evaluate_arrays(*inputs), strict=True)
        }
        return ColumnGrid(self.columns, tuple(unique[index] for index in self.column_index), shape)

    def _evaluate_lazily(self, workload: Workload) -> ColumnGrid:
        da: Any = importlib.import_module("dask.array")
        arrays = da.broadcast_arrays(*(da.asarray(value).astype(np.float64) for value in workload.inputs()))
        template = arrays[0]
        width = len(self.columns)

        def block(*chunks: FloatArray) -> FloatArray:
            shape = np.broadcast_shapes(*(c.shape for c in chunks))
            outputs = self.evaluate_arrays(*chunks)
            return np.stack([np.broadcast_to(np.asarray(out, dtype=np.float64), shape) for out in outputs])

        stacked = da.map_blocks(
            block,
            *arrays,
            new_axis=0,
            chunks=((width,), *template.chunks),
            dtype=np.float64,
            meta=np.empty((0,) * (template.ndim + 1), dtype=np.float64),
        )
        return ColumnGrid(self.columns, tuple(stacked[i] for i in range(width)), tuple(template.shape))


def _is_dask(value: object) -> bool:
    return hasattr(value, "__dask_graph__")


@functools.lru_cache(maxsize=32)
def _lambdify_grid(expressions: tuple[sympy.Expr, ...]) -> Callable[..., list[Any]]:
    """The numpy evaluator of ``expressions`` alone, cached on the expressions."""
    return sympy.lambdify(  # type: ignore[no-any-return]
        INPUT_SYMBOLS,
        [floor_divisions(expr) for expr in expressions],
        modules="numpy",
        printer=GridPrinter,
        cse=True,
    )


@functools.lru_cache(maxsize=128)
def compile_columns(tree: ModuleTree, columns: tuple[Column, ...]) -> ColumnEvaluator:
    """The :class:`ColumnEvaluator` of some ``(module_id, metric)`` columns of ``tree``, cached.

    Only these columns' expressions are simplified and compiled. An unknown module id or metric is
    an error naming it.
    """
    if not columns:
        raise LlmPerfOptError("columns: at least one (module, metric) column is needed")
    expressions: list[sympy.Expr] = []
    index_of: dict[sympy.Expr, int] = {}
    column_index = []
    for module_id, metric in columns:
        if metric not in METRICS:
            raise LlmPerfOptError(f"metric: unknown metric {metric!r}, expected one of {', '.join(METRICS)}")
        simplified = simplify_expr(getattr(tree[module_id].aggregate, metric))
        index = index_of.get(simplified)
        if index is None:
            index = index_of[simplified] = len(expressions)
            expressions.append(simplified)
        column_index.append(index)
    return ColumnEvaluator(tuple(columns), tuple(expressions), tuple(column_index))
