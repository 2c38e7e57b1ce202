"""Memory: weights per stage at their dtype, peak activations per module, the DiT's memory per GPU.

Weights are exact: the trees carry ``params`` and ``weight_bytes`` (at the dtype the implementation
holds them), and a weight size at another dtype is ``params × size``.

Peak activations are an estimate. In inference nothing is kept for a backward pass, so the live
set at any moment is roughly the inputs and outputs of the kernel running plus the tensors the
callers still hold. The estimate of one call of a module is::

    peak(module) = max( max over its own ops of (bytes_read + bytes_written),
                        max over its children of peak(child) )

i.e. the largest single kernel's inputs plus outputs in the subtree (weights it reads included,
e.g. the bf16 copy of an fp32 weight). Tensors held by callers are not counted; for the DiT,
:func:`dit_activation_peak` adds what a block keeps alive around its sub-modules (the residual
stream, the modulated input, the text context). Other live tensors (q and v while k is rotated)
are left out, and the caching allocator's slack is not modelled: the estimate is good to a few
``[tokens, dim]`` tensors, tens of percent, not to the byte.

No module of Wan2.1 keeps a key/value cache across calls (the DiT is not autoregressive and
attends over the whole sequence every forward), so its KV cache is 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import sympy
from attrs import frozen

from llm_perf_opt.hardware.parallel import (
    FSDP_UNITS_IN_FLIGHT,
    SINGLE_GPU,
    Parallelism,
    check_parallelism,
    dit_sequence_shard,
    tokens_per_rank,
)
from llm_perf_opt.hardware.roofline import CostAdjustment, compile_seconds
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.dtypes import BF16, DType
from llm_perf_opt.symbolic.module import Module, ModuleNode, ModuleTree, OpKind, Repeated
from llm_perf_opt.symbolic.symbols import B, L, Workload
from llm_perf_opt.wan2_1.dit import declare_dit
from llm_perf_opt.wan2_1.evaluate import dit_tree
from llm_perf_opt.wan2_1.geometry import video_tokens
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.variants import WanVariant

RESIDENT_STREAM_TENSORS: Final = 2
"""Token tensors a DiT block holds while a sub-module runs: the residual stream and the modulated input."""

__all__ = [
    "DeviceMemory",
    "activation_peak",
    "dit_activation_peak",
    "dit_memory_per_device",
    "kv_cache_bytes",
    "weight_bytes",
    "weight_bytes_by_stage",
]


def _constant(expr: sympy.Expr, what: str) -> int:
    value = sympy.sympify(expr)
    if value.free_symbols:
        raise AssertionError(f"{what} depends on the workload: {value}")
    return int(sympy.ceiling(value))


def weight_bytes(tree: ModuleTree, module_id: str | None = None, *, dtype: DType | None = None) -> int:
    """Bytes of the weights of a module (default: the root), exact.

    As the implementation holds them by default; with ``dtype``, every parameter at that dtype
    (``params × size``, rounded up for fp4's half bytes).
    """
    node = tree[module_id] if module_id is not None else tree.root
    if dtype is None:
        return _constant(node.aggregate.weight_bytes, "weight_bytes")
    return _constant(node.aggregate.params * dtype.size_bytes, "params")


def weight_bytes_by_stage(tree: ModuleTree, *, dtype: DType | None = None) -> dict[str, int]:
    """Weight bytes per pipeline stage of a tree (the ``stage`` of its modules), exact.

    A module counts towards its stage when its parent belongs to another stage (or it is the
    root), so nested modules are not counted twice.
    """
    totals: dict[str, int] = {}
    for node in tree:
        parent = tree[node.parent_id] if node.parent_id is not None else None
        if parent is not None and parent.stage == node.stage:
            continue
        own_root = weight_bytes(tree, node.id, dtype=dtype)
        nested = sum(
            weight_bytes(tree, child, dtype=dtype)
            for child in node.children
            if tree[child].stage != node.stage
        )
        totals[node.stage] = totals.get(node.stage, 0) + own_root - nested
    return totals


def kv_cache_bytes(tree: ModuleTree) -> int:
    """0: no module of the Wan2.1 trees caches keys and values across calls."""
    del tree
    return 0


def activation_peak(
    tree: ModuleTree, declaration: Module | None = None, adjust: CostAdjustment | None = None
) -> Mapping[str, sympy.Expr]:
    """Estimated peak activation bytes of one call of every module (see the module docstring).

    With the ``declaration`` the tree was built from, each op's own working set counts; without it,
    each op kind's group of one module call (an over-count where a module runs several ops of one
    kind). ``adjust`` rewrites op costs first, e.g. to a rank's share under sequence parallelism.
    """
    peaks: dict[str, sympy.Expr] = {}
    if declaration is not None:
        _declared_peaks(tree, declaration, tree.root_id, adjust, peaks, {})
        return MappingProxyType({node.id: peaks[node.id] for node in tree if node.id in peaks})
    memo: dict[tuple[int, object, tuple[int, ...]], sympy.Expr] = {}
    for node in reversed(list(tree)):
        key = (
            id(node.own_breakdown),
            None if adjust is None else adjust.key(node),
            tuple(id(peaks[child]) for child in node.children),
        )
        found = memo.get(key)
        if found is None:
            live = [_live(node, kind, cost, adjust) for kind, cost in node.own_breakdown.items()]
            found = memo[key] = _max([*live, *(peaks[c] for c in node.children)])
        peaks[node.id] = found
    return MappingProxyType({node.id: peaks[node.id] for node in tree})


def _max(terms: list[sympy.Expr]) -> sympy.Expr:
    """The maximum of ``terms`` (0 for none), unevaluated: SymPy's pairwise simplification of a long
    ``Max`` is quadratic and slow, and the compiled code takes the maximum numerically anyway."""
    unique = list(dict.fromkeys(sympy.sympify(t) for t in terms if t != 0))
    if not unique:
        return sympy.Integer(0)
    if len(unique) == 1:
        return unique[0]
    return sympy.Max(*unique, evaluate=False)


def _live(node: ModuleNode, kind: OpKind, cost: Cost, adjust: CostAdjustment | None) -> sympy.Expr:
    seen = cost if adjust is None else adjust(node, kind, cost)
    return seen.bytes_read + seen.bytes_written


def _declared_peaks(
    tree: ModuleTree,
    item: Module | Repeated,
    node_id: str,
    adjust: CostAdjustment | None,
    peaks: dict[str, sympy.Expr],
    memo: dict[tuple[int, object], sympy.Expr],
) -> sympy.Expr:
    """Peaks of ``item`` (at ``node_id``) and its subtree, op by op; a block's peak is computed once."""
    node = tree[node_id]
    key = (id(item), None if adjust is None else adjust.key(node))
    if isinstance(item, Repeated):
        blocks = [f"{node_id}.{i}" for i in range(item.count)]
        peak = _declared_peaks(tree, item.template, blocks[0], adjust, peaks, memo)
        for block in blocks[1:]:
            _copy_subtree(tree, blocks[0], block, peaks)
        peaks[node_id] = peak
        return peak
    found = memo.get(key)
    children = [
        _declared_peaks(tree, child, f"{node_id}.{child.name}", adjust, peaks, memo)
        for child in item.children
    ]
    if found is None:
        live = [_live(node, (op.primitive, op.dtype), op.cost, adjust) for op in item.ops]
        found = memo[key] = _max([*live, *children])
    peaks[node_id] = found
    return found


def _copy_subtree(tree: ModuleTree, source: str, target: str, peaks: dict[str, sympy.Expr]) -> None:
    """Block ``target`` has the same peaks as block ``source``, module by module."""
    peaks[target] = peaks[source]
    for source_child, target_child in zip(tree[source].children, tree[target].children, strict=True):
        _copy_subtree(tree, source_child, target_child, peaks)


def dit_activation_peak(
    variant: WanVariant, implementation: Implementation, parallelism: Parallelism = SINGLE_GPU
) -> sympy.Expr:
    """Estimated peak activation bytes of one DiT forward on one rank.

    :func:`activation_peak` of the tree (per rank, op by op) plus the tensors a block keeps alive
    around its sub-modules: the residual stream and the modulated input of the running sub-module,
    two ``[B, L_pad/P, D]`` tensors at the stream dtype, and the context ``[B, L_text (+ L_image),
    D]`` at the matmul dtype.
    """
    check_parallelism(parallelism, num_heads=variant.num_heads)
    tree = dit_tree(variant, implementation)
    shard = dit_sequence_shard(tree, parallelism)
    peak = activation_peak(tree, declare_dit(variant, implementation), shard)[tree.root_id]
    tokens = tokens_per_rank(video_tokens(), parallelism)
    stream = RESIDENT_STREAM_TENSORS * B * tokens * variant.dim * implementation.stream_dtype.size_bytes
    context = B * (L + variant.image_tokens) * variant.dim * implementation.matmul_dtype.size_bytes
    return peak + stream + context


@frozen(kw_only=True)
class DeviceMemory:
    """Memory of the transformer on one GPU.

    Attributes:
        weights: resident weight bytes (the whole model, or its FSDP shard at the held dtype).
        gathered: bytes of FSDP units all-gathered at one time (bf16), 0 without FSDP.
        activations: peak activation bytes, an expression in the workload symbols.
    """

    weights: int
    gathered: int
    activations: sympy.Expr

    @property
    def total(self) -> sympy.Expr:
        """Peak bytes: weights, gathered units and activations."""
        return self.weights + self.gathered + self.activations

    def evaluate_point(self, workload: Workload) -> dict[str, float]:
        """``weights``, ``gathered``, ``activations`` and ``total`` in bytes for one workload."""
        (activations,) = compile_seconds((sympy.sympify(self.activations),))(*workload.values())
        value = float(activations)
        return {
            "weights": float(self.weights),
            "gathered": float(self.gathered),
            "activations": value,
            "total": self.weights + self.gathered + value,
        }


def dit_memory_per_device(
    variant: WanVariant, implementation: Implementation, parallelism: Parallelism = SINGLE_GPU
) -> DeviceMemory:
    """Weights, FSDP buffers and peak activations of the transformer on each of ``P`` GPUs.

    Without FSDP every rank holds all weights at the implementation's dtype. With FSDP (official
    ``FULL_SHARD``, one unit per block plus the root unit) a rank holds ``1/P`` of them at the held
    dtype and, while running, the root unit and ``FSDP_UNITS_IN_FLIGHT`` blocks gathered in bf16.
    """
    check_parallelism(parallelism, num_heads=variant.num_heads)
    tree = dit_tree(variant, implementation)
    held = weight_bytes(tree)
    gathered = 0
    if parallelism.fsdp:
        held = math.ceil(held / parallelism.world_size)
        blocks = next(n for n in tree if n.repetition == "for" and n.parent_id == tree.root_id)
        block_params = _constant(tree[blocks.children[0]].aggregate.params, "params")
        root_params = (
            _constant(tree.root.aggregate.params, "params") - (blocks.repetition_count or 1) * block_params
        )
        gathered = (root_params + FSDP_UNITS_IN_FLIGHT * block_params) * int(BF16.size_bytes)
    return DeviceMemory(
        weights=held, gathered=gathered, activations=dit_activation_peak(variant, implementation, parallelism)
    )
