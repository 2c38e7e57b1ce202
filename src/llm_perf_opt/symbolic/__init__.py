"""The model-independent symbolic cost engine.

Declare modules as data (:class:`Module`, :class:`Repeated`) whose ops are calls of registered
primitives (``primitives.mm``, ``primitives.linear``, …); :func:`build_tree` derives every
module's :class:`Cost` in the six workload symbols; :func:`compile_tree` turns the tree into an
evaluator for exact single workloads and numpy grids; :mod:`.formula` shows the expressions.
"""

from __future__ import annotations

from llm_perf_opt.symbolic.compiler import Evaluator, GridResult, compile_tree
from llm_perf_opt.symbolic.cost import METRICS, Cost, sum_costs
from llm_perf_opt.symbolic.formula import formula, latex_document, pretty, to_latex
from llm_perf_opt.symbolic.module import Module, ModuleTree, Repeated, build_tree
from llm_perf_opt.symbolic.primitives import PRIMITIVES, OpCall, primitive
from llm_perf_opt.symbolic.symbols import WORKLOAD_SYMBOLS, B, F, H, L, S, W, Workload

__all__ = [
    "METRICS",
    "PRIMITIVES",
    "WORKLOAD_SYMBOLS",
    "B",
    "Cost",
    "Evaluator",
    "F",
    "GridResult",
    "H",
    "L",
    "Module",
    "ModuleTree",
    "OpCall",
    "Repeated",
    "S",
    "W",
    "Workload",
    "build_tree",
    "compile_tree",
    "formula",
    "latex_document",
    "pretty",
    "primitive",
    "sum_costs",
    "to_latex",
]
