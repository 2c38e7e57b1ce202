"""The cost record: sums, scaling by calls, replication, iteration."""

from __future__ import annotations

import sympy

from llm_perf_opt.symbolic import METRICS, Cost, S, sum_costs
from llm_perf_opt.symbolic.cost import PER_CALL_METRICS


def _cost(value: int) -> Cost:
    return Cost(**{name: value + i for i, name in enumerate(METRICS)})


def test_metrics_are_the_fields_in_order() -> None:
    """METRICS lists the seven fields and iteration yields (name, expression) pairs in that order."""
    assert METRICS == (
        "flops",
        "vector_flops",
        "bytes_read",
        "bytes_written",
        "weight_bytes",
        "params",
        "activation_bytes",
    )
    assert [name for name, _ in _cost(1)] == list(METRICS)
    assert dict(Cost()) == dict.fromkeys(METRICS, 0)


def test_add_and_sum() -> None:
    """+ and sum_costs add metric by metric; the sum of nothing is zero."""
    assert _cost(1) + _cost(10) == Cost(**{name: 11 + 2 * i for i, name in enumerate(METRICS)})
    assert sum_costs([_cost(1), _cost(10), _cost(100)]) == _cost(1) + _cost(10) + _cost(100)
    assert sum_costs([]) == Cost()


def test_scaled_multiplies_per_call_metrics_only() -> None:
    """scaled(n) multiplies the per-call metrics by n and leaves weight_bytes and params as they are."""
    cost = _cost(1)
    scaled = cost.scaled(2 * S)
    for name, expr in scaled:
        original = getattr(cost, name)
        assert expr == (2 * S * original if name in PER_CALL_METRICS else original)
    assert cost.scaled(1) is cost


def test_replicated_multiplies_every_metric() -> None:
    """replicated(n) is n distinct copies: weights and params are multiplied too."""
    assert _cost(1).replicated(3) == Cost(**{name: 3 * (1 + i) for i, name in enumerate(METRICS)})


def test_simplify_keeps_values() -> None:
    """simplify() returns an equal cost, metric by metric."""
    x = sympy.Symbol("x", positive=True)
    cost = Cost(flops=2 * x * (x + 1) + 2 * x, bytes_read=x / 2 + x / 2)
    simple = cost.simplify()
    for (_, a), (_, b) in zip(cost, simple, strict=True):
        assert sympy.expand(a - b) == 0
    assert simple.bytes_read == x
