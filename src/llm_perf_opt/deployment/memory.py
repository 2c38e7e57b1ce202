"""Memory figures read off a built module tree: weights exactly, activation peaks as an estimate.

Weights are exact: the trees carry ``params`` and ``weight_bytes`` (at the dtype the implementation
holds them), and a weight size at another dtype is ``params × size``.

Peak activations are an estimate. In inference nothing is kept for a backward pass, so the live
set at any moment is roughly the inputs and outputs of the kernel running plus the tensors the
callers still hold. The estimate of one call of a module is::

    peak(module) = max( max over its own ops of (bytes_read + bytes_written),
                        max over its children of peak(child) )

i.e. the largest single kernel's inputs plus outputs in the subtree (weights it reads included,
e.g. the bf16 copy of an fp32 weight), read op by op from the ops every node of the tree keeps.
What callers hold around a module is the model family's to add (:mod:`llm_perf_opt.wan2_1.run`);
the caching allocator's slack is not modelled: the estimate is good to a few ``[tokens, dim]``
tensors, tens of percent, not to the byte.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Final

import sympy

from llm_perf_opt.deployment.schedule import CostAdjustment
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.roofline import maximum
from llm_perf_opt.symbolic.dtypes import BF16, DType
from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree
from llm_perf_opt.symbolic.primitives import OpCall

__all__ = [
    "FSDP_UNITS_IN_FLIGHT",
    "activation_peaks",
    "constant",
    "fsdp_gathered_bytes",
    "repeated_blocks",
    "unit_params",
    "weight_bytes",
]

FSDP_UNITS_IN_FLIGHT: Final = 2
"""FSDP's rate limiter allows two all-gathered units at a time: the running block and the next."""


def constant(expr: sympy.Expr, what: str) -> int:
    """An expression that must not depend on the workload, as an integer (rounded up)."""
    value = sympy.sympify(expr)
    if value.free_symbols:
        raise LlmPerfOptError(f"{what}: expected a constant, got an expression of the workload: {value}")
    return int(sympy.ceiling(value))


def weight_bytes(tree: ModuleTree, module_id: str | None = None, *, dtype: DType | None = None) -> int:
    """Bytes of the weights of a module (default: the root), exact.

    As the implementation holds them by default; with ``dtype``, every parameter at that dtype
    (``params × size``, rounded up for fp4's half bytes).
    """
    node = tree[module_id] if module_id is not None else tree.root
    if dtype is None:
        return constant(node.aggregate.weight_bytes, "weight_bytes")
    return constant(node.aggregate.params * dtype.size_bytes, "params")


def repeated_blocks(tree: ModuleTree, module_id: str) -> ModuleNode:
    """The container of repeated blocks directly under ``module_id``."""
    for child in tree[module_id].children:
        if tree[child].repetition == "for":
            return tree[child]
    raise LlmPerfOptError(f"tree: {module_id!r} has no repeated blocks")


def unit_params(tree: ModuleTree, module_id: str) -> tuple[ModuleNode, int, int]:
    """FSDP's units of a model: its block container, one block's parameters and the root unit's
    (the parameters outside the blocks)."""
    blocks = repeated_blocks(tree, module_id)
    block = constant(tree[blocks.children[0]].aggregate.params, "params")
    root = constant(tree[module_id].aggregate.params, "params") - len(blocks.children) * block
    return blocks, block, root


def fsdp_gathered_bytes(tree: ModuleTree, module_id: str) -> int:
    """bf16 bytes FSDP holds gathered while a model runs: its root unit and
    :data:`FSDP_UNITS_IN_FLIGHT` blocks."""
    _, block, root = unit_params(tree, module_id)
    return (root + FSDP_UNITS_IN_FLIGHT * block) * int(BF16.size_bytes)


def activation_peaks(
    tree: ModuleTree, adjust: CostAdjustment | None = None, *, within: set[str] | None = None
) -> Mapping[str, sympy.Expr]:
    """Estimated peak activation bytes of one call of every module (see the module docstring).

    Each op's own working set counts (the ops the tree's nodes keep); ``adjust`` rewrites op costs
    first, e.g. to a rank's share under sequence parallelism. Nodes with the same ops, rewrite and
    children (the blocks of a repeated block) share one expression. ``within`` restricts it to
    some subtrees (their ids, children with their parents).
    """
    peaks: dict[str, sympy.Expr] = {}
    keys: dict[str, Hashable] = {}
    memo: dict[Hashable, sympy.Expr] = {}
    for node in reversed(list(tree)):
        if within is not None and node.id not in within:
            continue
        key = (
            id(node.ops),
            None if adjust is None else adjust.key(node),
            tuple(keys[child] for child in node.children),
        )
        keys[node.id] = key
        found = memo.get(key)
        if found is None:
            live = [_live(node, op, adjust) for op in node.ops]
            found = memo[key] = maximum(
                *(t for t in (*live, *(peaks[c] for c in node.children)) if sympy.sympify(t) != 0)
            )
        peaks[node.id] = found
    return peaks


def _live(node: ModuleNode, op: OpCall, adjust: CostAdjustment | None) -> sympy.Expr:
    cost = op.cost if adjust is None else adjust(node, (op.primitive, op.dtype), op.cost)
    return sympy.sympify(cost.bytes_read + cost.bytes_written)
