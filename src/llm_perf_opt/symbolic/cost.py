"""The cost record: what one module or operation costs, as SymPy expressions in the workload symbols.

Costs add up the module tree. Two metrics describe what exists (``weight_bytes``, ``params``) and
five describe work done per call; :meth:`Cost.scaled` multiplies only the per-call ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache

import sympy
from attrs import evolve, field, fields, frozen

__all__ = ["METRICS", "PER_CALL_METRICS", "Cost", "simplify_expr", "sum_costs"]

_ZERO = sympy.Integer(0)


def _as_expr(value: object) -> sympy.Expr:
    """A SymPy expression for a Python number or expression (ints stay exact)."""
    if isinstance(value, sympy.Expr):
        return value
    return sympy.sympify(value)


@lru_cache(maxsize=65536)
def simplify_expr(expr: sympy.Expr) -> sympy.Expr:
    """The library's one notion of a simplified cost expression.

    Costs are polynomials in the workload symbols and in ``floor`` terms of them, so full
    ``sympy.simplify`` is not needed: ``factor_terms`` pulls common factors out of the sum (e.g.
    ``batch`` and the token count) without expanding products, which keeps shared sub-terms intact
    for common-subexpression elimination and reads close to how the formula is derived. The result
    is cached: a repeated block's expression is simplified once.
    """
    return sympy.factor_terms(expr)


@frozen(kw_only=True)
class Cost:
    """What a module or operation costs, one SymPy expression per metric (0 when not given).

    Attributes:
        flops: floating-point operations of matrix products, convolutions and attention, in FLOPs,
            counted as ``torch.utils.flop_counter.FlopCounterMode`` does: 2 per multiply-add, bias
            additions not counted.
        vector_flops: element-wise floating-point operations (norms, activations, softmax, rotary
            embedding, modulation, residual adds), in FLOPs, with the per-element counts of
            ``primitives.VECTOR_FLOPS_PER_ELEMENT``.
        bytes_read: bytes read from memory by the operations, each operation reading its inputs
            once at their dtypes (no fusion across operations).
        bytes_written: bytes written to memory by the operations, each output once at its dtype.
        weight_bytes: bytes of the parameters the module owns, counted once however often it runs.
        params: number of parameters the module owns, counted once however often it runs.
        activation_bytes: bytes of the activation tensors the operations write. For a parent it is
            the total over all its operations: the activations materialised, not the peak resident
            at one time.
    """

    flops: sympy.Expr = field(default=_ZERO, converter=_as_expr)
    vector_flops: sympy.Expr = field(default=_ZERO, converter=_as_expr)
    bytes_read: sympy.Expr = field(default=_ZERO, converter=_as_expr)
    bytes_written: sympy.Expr = field(default=_ZERO, converter=_as_expr)
    weight_bytes: sympy.Expr = field(default=_ZERO, converter=_as_expr)
    params: sympy.Expr = field(default=_ZERO, converter=_as_expr)
    activation_bytes: sympy.Expr = field(default=_ZERO, converter=_as_expr)

    def __iter__(self) -> Iterator[tuple[str, sympy.Expr]]:
        """``(metric_name, expression)`` pairs in the order of :data:`METRICS`."""
        return ((name, getattr(self, name)) for name in METRICS)

    def __add__(self, other: Cost) -> Cost:
        """The metric-by-metric sum."""
        if not isinstance(other, Cost):
            return NotImplemented
        return Cost(**{name: getattr(self, name) + getattr(other, name) for name in METRICS})

    def scaled(self, count: object) -> Cost:
        """The cost of ``count`` calls: per-call metrics times ``count``, weights and params unchanged.

        A module called several times does its work several times but owns its weights once.
        """
        count = _as_expr(count)
        if count == 1:
            return self
        return evolve(self, **{name: count * getattr(self, name) for name in PER_CALL_METRICS})

    def replicated(self, count: object) -> Cost:
        """The cost of ``count`` distinct copies (e.g. N repeated blocks): every metric times ``count``."""
        count = _as_expr(count)
        if count == 1:
            return self
        return Cost(**{name: count * expr for name, expr in self})

    def simplify(self) -> Cost:
        """The same cost with every expression passed through :func:`simplify_expr`."""
        return Cost(**{name: simplify_expr(expr) for name, expr in self})


# Field names, in declaration order; the order of Cost iteration and of evaluator outputs.
METRICS: tuple[str, ...] = tuple(a.name for a in fields(Cost))
# The metrics that grow with the number of calls; weight_bytes and params do not.
PER_CALL_METRICS: tuple[str, ...] = (
    "flops",
    "vector_flops",
    "bytes_read",
    "bytes_written",
    "activation_bytes",
)


def sum_costs(costs: Iterable[Cost]) -> Cost:
    """The metric-by-metric sum of any number of costs (zero for none), built as one Add per metric."""
    costs = list(costs)
    if len(costs) == 1:
        return costs[0]
    return Cost(**{name: sympy.Add(*(getattr(c, name) for c in costs)) for name in METRICS})
