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

import functools
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt
import sympy
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.parallel import (
    FSDP_UNITS_IN_FLIGHT,
    SINGLE_GPU,
    Parallelism,
    check_parallelism,
    dit_sequence_shard,
    tokens_per_rank,
)
from llm_perf_opt.hardware.roofline import CostAdjustment, compile_seconds
from llm_perf_opt.hardware.run import RunConfig
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.dtypes import BF16, DType
from llm_perf_opt.symbolic.module import Module, ModuleNode, ModuleTree, OpKind, Repeated
from llm_perf_opt.symbolic.symbols import B, F, L, Workload
from llm_perf_opt.wan2_1.dit import declare_dit
from llm_perf_opt.wan2_1.evaluate import dit_tree, image_encoder_tree, text_encoder_tree, vae_tree
from llm_perf_opt.wan2_1.geometry import VAE_TEMPORAL_STRIDE, video_tokens
from llm_perf_opt.wan2_1.image_encoder import declare_image_encoder
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.text_encoder import declare_text_encoder
from llm_perf_opt.wan2_1.vae import CACHE_T, declare_vae
from llm_perf_opt.wan2_1.variants import WanVariant

RESIDENT_STREAM_TENSORS: Final = 2
"""Token tensors a DiT block holds while a sub-module runs: the residual stream and the modulated input."""

__all__ = [
    "RUN_PHASES",
    "DeviceMemory",
    "RunMemory",
    "activation_peak",
    "dit_activation_peak",
    "dit_memory_per_device",
    "kv_cache_bytes",
    "run_memory",
    "vae_cache_bytes",
    "vae_pass_peak",
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


# ─── the whole run: memory per GPU with the official placement ─────────────────────────────────

RESIDENT_VAE_TENSORS: Final = 2
"""Chunk tensors a VAE residual block holds while its residual branch runs: its input and its shortcut."""
VAE_CHUNK_MIN_FRAMES: Final = 5
"""The chunk estimate of the VAE needs a later chunk: below 5 frames it is taken at 5 (an upper bound)."""

RUN_PHASES: Final = ("text_encoder", "image_encoder", "vae_encode", "sampling", "vae_decode")
"""The phases of a run, in order; the run's peak is the largest."""


@frozen(eq=False)
class _LastChunk:
    """The cost of the last later chunk of a chunked VAE pass: ``cost(F') − cost(F' − 4)`` with
    ``F' = max(F, 5)``; with ``written_only`` just the bytes it writes (the tensors it makes)."""

    written_only: bool = False

    def key(self, node: ModuleNode) -> str:
        del node
        return "written" if self.written_only else "chunk"

    def __call__(self, node: ModuleNode, kind: OpKind, cost: Cost) -> Cost:
        del node, kind
        frames = sympy.Max(F, VAE_CHUNK_MIN_FRAMES)
        whole, before = {F: frames}, {F: frames - VAE_TEMPORAL_STRIDE}

        def chunk(expr: sympy.Expr) -> sympy.Expr:
            return sympy.sympify(expr).xreplace(whole) - sympy.sympify(expr).xreplace(before)

        if self.written_only:
            return Cost(bytes_written=chunk(cost.bytes_written))
        return Cost(**{name: chunk(expr) for name, expr in cost})


def vae_cache_bytes(tree: ModuleTree, part_id: str, dtype: DType) -> sympy.Expr:
    """Bytes of the causal-convolution caches one chunked VAE pass keeps (``feat_cache``): each
    causal 3-D convolution with time padding holds the last ``CACHE_T`` frames of its input.

    The plane of a convolution is read from its first-chunk FLOPs (one frame in, one out:
    ``2·c_in·c_out·k³·plane``). NB: the resample time convolutions, skipped in the first chunk, are
    not counted (their caches sit at the two coarsest scales).
    """
    total = sympy.Integer(0)
    prefix = f"{part_id}."
    for node in tree:
        if node.class_name != "CausalConv3d" or not node.id.startswith(prefix):
            continue
        padding = node.params["padding"]
        kernel = node.params["kernel_size"]
        if not isinstance(padding, list | tuple) or not isinstance(kernel, list | tuple) or not padding[0]:
            continue
        conv = next(cost for (primitive, _), cost in node.own_breakdown.items() if primitive == "convolution")
        first = sympy.sympify(conv.flops).xreplace({F: sympy.Integer(1)})
        if first == 0:
            continue
        c_in, c_out = node.params["in_channels"], node.params["out_channels"]
        if not isinstance(c_in, int) or not isinstance(c_out, int):
            raise LlmPerfOptError(f"tree: {node.id}: expected integer channels, got {c_in!r}, {c_out!r}")
        plane = first / (2 * c_in * c_out * math.prod(int(k) for k in kernel))
        total += CACHE_T * c_in * plane * dtype.size_bytes
    return total


@functools.cache
def vae_pass_peak(implementation: Implementation, *, encode: bool) -> sympy.Expr:
    """Estimated peak bytes of one chunked VAE encode (or decode) beyond the VAE's weights.

    The caches of every causal convolution (:func:`vae_cache_bytes`), resident through the pass;
    the largest kernel of the last chunk (:func:`activation_peak` of one chunk's costs, which
    includes ``torch.cat`` of the output accumulated so far with the new chunk); and what a
    residual block holds around it, its input and its shortcut: ``RESIDENT_VAE_TENSORS`` tensors
    of the largest size a kernel of the chunk writes. Taken at ``max(F, 5)`` frames.
    """
    encodes, decodes = (1, 0) if encode else (0, 1)
    tree = vae_tree(implementation, encodes=encodes, decodes=decodes)
    declaration = declare_vae(implementation, encodes=encodes, decodes=decodes)
    chunk = activation_peak(tree, declaration, _LastChunk())[tree.root_id]
    largest = activation_peak(tree, declaration, _LastChunk(written_only=True))[tree.root_id]
    part = f"{tree.root_id}.{'encoder' if encode else 'decoder'}"
    cache = vae_cache_bytes(tree, part, implementation.vae_dtype)
    return sympy.Add(chunk, RESIDENT_VAE_TENSORS * largest, cache)


@frozen(kw_only=True, eq=False)
class RunMemory:
    """Memory of one run on the most loaded GPU (rank 0, which also decodes), in bytes.

    Attributes:
        config: the run's setup.
        parts: each resident or transient piece: weights of each model as held on the GPU
            (``*_weights``; an FSDP shard, 0 on the CPU), FSDP units gathered while running
            (``*_gathered``), activation peaks (``*_activations``, ``vae_*_peak``).
        phases: :data:`RUN_PHASES` → bytes in use while that phase runs (0 for a phase the task does
            not have).
    """

    config: RunConfig
    parts: Mapping[str, sympy.Expr]
    phases: Mapping[str, sympy.Expr]

    @property
    def peak(self) -> sympy.Expr:
        """The run's peak: the largest phase."""
        return _max(list(self.phases.values()))

    def evaluate(self, workload: Workload) -> dict[str, npt.NDArray[np.float64]]:
        """``peak``, every phase and every part, in bytes, over workload arrays."""
        names = ("peak", *(f"phase.{p}" for p in self.phases), *self.parts)
        expressions = (self.peak, *self.phases.values(), *self.parts.values())
        function = compile_seconds(tuple(sympy.sympify(e) for e in expressions))
        inputs = [np.asarray(value, dtype=np.float64) for value in workload.values()]
        shape = np.broadcast_shapes(*(a.shape for a in inputs))
        with np.errstate(all="ignore"):
            outputs = function(*inputs)
        return {
            name: np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
            for name, value in zip(names, outputs, strict=True)
        }

    def evaluate_point(self, workload: Workload) -> dict[str, float]:
        """As :meth:`evaluate` for one workload, as Python floats."""
        return {name: float(value) for name, value in self.evaluate(workload).items()}


def _gathered_units(tree: ModuleTree) -> int:
    """bf16 bytes FSDP holds gathered while a model runs: its root unit and ``FSDP_UNITS_IN_FLIGHT``
    blocks."""
    blocks = next(n for n in tree if n.repetition == "for" and n.parent_id == tree.root_id)
    block = _constant(tree[blocks.children[0]].aggregate.params, "params")
    root = _constant(tree.root.aggregate.params, "params") - len(blocks.children) * block
    return (root + FSDP_UNITS_IN_FLIGHT * block) * int(BF16.size_bytes)


@functools.cache
def _text_encoder_peak(implementation: Implementation) -> sympy.Expr:
    tree = text_encoder_tree(implementation)
    return activation_peak(tree, declare_text_encoder(implementation))[tree.root_id]


@functools.cache
def _image_encoder_peak(num_images: int, implementation: Implementation) -> sympy.Expr:
    tree = image_encoder_tree(num_images, implementation)
    return activation_peak(tree, declare_image_encoder(num_images, implementation))[tree.root_id]


@functools.lru_cache(maxsize=64)
def run_memory(variant: WanVariant, implementation: Implementation, config: RunConfig) -> RunMemory:
    """Per-GPU memory of one ``generate.py`` run, phase by phase, with the official placement.

    What each phase holds on rank 0 (official code, February 2025 release; see docs/hardware.md):

    - the VAE's weights, always (``WanVAE(device=cuda)``);
    - the transformer's weights (an FSDP shard with ``--dit_fsdp``) from the start, except for an
      image-conditioned task on one GPU (``init_on_cpu``: it moves in before sampling); with
      offload it leaves after sampling, before the decode;
    - umT5's weights while encoding (a shard plus gathered units with ``--t5_fsdp``, none with
      ``--t5_cpu``), and after it unless offloaded;
    - CLIP's weights (fp16, built on the GPU) until its encode, after it unless offloaded;
    - each phase's activation peak: umT5, CLIP, the VAE encode or decode
      (:func:`vae_pass_peak`), the transformer's per-rank peak with its FSDP units
      (:func:`dit_memory_per_device`).

    Not counted: latents and contexts (MBs), CLIP's unused text tower (the official ``CLIPModel``
    loads XLM-RoBERTa too, ~1.1 GB in fp16), the caching allocator's slack, cuDNN workspaces.
    """
    parallelism = config.parallelism
    world = parallelism.world_size
    image = variant.num_images > 0
    dit = dit_memory_per_device(variant, implementation, parallelism)
    t5_tree = text_encoder_tree(implementation)
    t5_bytes = weight_bytes(t5_tree)
    t5_weights = 0 if config.t5_cpu else (-(-t5_bytes // world) if config.t5_fsdp else t5_bytes)
    t5_gathered = _gathered_units(t5_tree) if config.t5_fsdp else 0
    t5_activations = sympy.Integer(0) if config.t5_cpu else _text_encoder_peak(implementation)
    vae_weights = weight_bytes(vae_tree(implementation, encodes=1 if image else 0, decodes=1))
    parts: dict[str, sympy.Expr] = {
        "vae_weights": sympy.Integer(vae_weights),
        "text_encoder_weights": sympy.Integer(t5_weights),
        "text_encoder_gathered": sympy.Integer(t5_gathered),
        "text_encoder_activations": t5_activations,
        "diffusion_weights": sympy.Integer(dit.weights),
        "diffusion_gathered": sympy.Integer(dit.gathered),
        "diffusion_activations": dit.activations,
        "vae_decode_peak": vae_pass_peak(implementation, encode=False),
    }
    if image:
        clip_tree = image_encoder_tree(variant.num_images, implementation)
        parts["image_encoder_weights"] = sympy.Integer(weight_bytes(clip_tree))
        parts["image_encoder_activations"] = _image_encoder_peak(variant.num_images, implementation)
        parts["vae_encode_peak"] = vae_pass_peak(implementation, encode=True)
    zero = sympy.Integer(0)
    vae = parts["vae_weights"]
    dit_weights = parts["diffusion_weights"]
    dit_early = zero if image and world == 1 else dit_weights
    dit_after = zero if config.offload else dit_weights
    t5_after = zero if config.offload else parts["text_encoder_weights"]
    clip = parts.get("image_encoder_weights", zero)
    clip_after = zero if config.offload else clip
    phases = {
        "text_encoder": vae
        + dit_early
        + clip
        + parts["text_encoder_weights"]
        + parts["text_encoder_gathered"]
        + t5_activations,
        "image_encoder": vae + dit_early + t5_after + clip + parts["image_encoder_activations"]
        if image
        else zero,
        "vae_encode": vae + dit_early + t5_after + clip_after + parts["vae_encode_peak"] if image else zero,
        "sampling": vae + t5_after + clip_after + dit_weights + parts["diffusion_gathered"] + dit.activations,
        "vae_decode": vae + t5_after + clip_after + dit_after + parts["vae_decode_peak"],
    }
    return RunMemory(config=config, parts=MappingProxyType(parts), phases=MappingProxyType(phases))
