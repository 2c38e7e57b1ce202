"""How Wan2.1 runs on devices, as the official ``generate.py`` runs it: the family's run rules.

A run is the pipeline tree (:mod:`.pipeline`: umT5 twice, CLIP and the VAE encode for
image-conditioned tasks, ``2·S`` transformer forwards, ``S`` scheduler steps, the VAE decode)
timed on **rank 0**, the critical path: every rank runs umT5, CLIP, the VAE encode and the sampling
loop; rank 0 alone decodes while the others wait at a barrier. On top of each module's roofline the
run adds what the official code does (``generate.py``, ``wan/distributed``; the release that
published the README timings, February 2025):

- **Sequence parallelism** (``--ulysses_size``/``--ring_size``, xDiT USP): the video tokens are
  padded to a multiple of ``P = U·R``; each transformer module's cost is its rank's share
  (:class:`~llm_perf_opt.deployment.schedule.SequenceShard`; the root's own ops and the patch
  embedding are replicated); every self-attention adds its four all-to-alls and hides its ring K/V
  passes behind the attention; the head output ``[B, L/P, 64]`` fp32 is gathered after every
  forward.
- **FSDP** (``--dit_fsdp``, ``--t5_fsdp``): each block's bf16 parameters are all-gathered once per
  forward, hidden behind the block (``max(block, gather)``); the root unit's gather is exposed.
- **Offload** (``--offload_model``, offload ``model``): umT5 is built on the CPU and moved to the GPU
  for encoding (back after it); the transformer of an image-conditioned task on one GPU starts on
  the CPU (``init_on_cpu``) and moves in before the loop; the transformer goes back to the CPU after
  sampling and CLIP after its encode; image-conditioned tasks move both noise predictions and the
  latent between GPU and CPU every step and run the guidance and the scheduler step on the CPU.
  Offload ``group`` (diffusers group offloading) streams the transformer's weights from the host
  once per forward, overlapped with it. Offload ``sequential`` (diffusers'
  ``enable_sequential_cpu_offload``) copies them every forward, not overlapped, and holds none.
  Copies run over the host link.
- **umT5 on the CPU** (``--t5_cpu``): its modules run on the host CPU's rates, and the two contexts
  are copied to the GPU.
- **CFG parallelism** (``Parallelism.cfg = 2``, not in the official code): the two guidance
  forwards of a step run at once on two groups of ``U·R`` GPUs; a rank runs half of the
  transformer's forwards and their collectives, and the groups exchange one latent per step.
  There is no tensor or pipeline parallelism.
- **A parallel VAE decode** (``vae_decode="parallel"``): rank 0 decodes ``1/P`` of the video's area
  (halo rows not counted; the decode's memory peak is kept whole, an upper bound).
- **A stack's transformer** (:meth:`Wan21Family.deployment` with ``stack``): its GEMM precision and
  weight storage, its fused element-wise chains (:func:`fusion_chains`) and its framework factor
  apply to the transformer stage.

Memory per GPU (rank 0), phase by phase, with the official placement: the VAE's weights always; the
transformer's (an FSDP shard) from the start, except an image-conditioned task on one GPU (it moves
in before sampling); with offload it leaves before the decode; umT5's while encoding (a shard plus
gathered units with ``--t5_fsdp``, none with ``--t5_cpu``) and after unless offloaded; CLIP's (fp16)
until its encode, after it unless offloaded; each phase's activation peak. Not counted: latents and
contexts (MBs), CLIP's unused text tower, the caching allocator's slack, cuDNN workspaces.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

import sympy
from attrs import frozen

from llm_perf_opt.deployment.memory import (
    activation_peaks,
    fsdp_gathered_bytes,
    unit_params,
    weight_bytes,
)
from llm_perf_opt.deployment.schedule import (
    Combined,
    ModuleSplit,
    Overlapping,
    RunMemory,
    Schedule,
    ScheduleBuilder,
    SequenceShard,
    StageShard,
)
from llm_perf_opt.deployment.stacks import Stack, get_stack, kernel_family
from llm_perf_opt.deployment.stacks.record import FUSED_CHAINS, FUSION_MODES
from llm_perf_opt.deployment.value import SINGLE_GPU, Deployment, Overlap, Parallelism
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import Accelerator, get_accelerator
from llm_perf_opt.hardware.collectives import (
    all_to_all_bytes,
    parameter_all_gather_bytes,
    ring_pass_bytes,
    sequence_all_gather_bytes,
    tokens_per_rank,
)
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, EfficiencyTable
from llm_perf_opt.hardware.host import DEFAULT_HOST, HostCpu
from llm_perf_opt.hardware.kernels import GEMM_PRECISIONS, WEIGHT_STORAGE_BYTES
from llm_perf_opt.hardware.roofline import OpClass, maximum, op_class
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.dtypes import BF16, FP32, DType
from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree, OpKind
from llm_perf_opt.symbolic.symbols import B, F, H, L, S, W
from llm_perf_opt.wan2_1.geometry import (
    SIZE_MULTIPLE,
    VAE_TEMPORAL_STRIDE,
    latent_frames,
    latent_height,
    latent_width,
    video_tokens,
)
from llm_perf_opt.wan2_1.implementation import Implementation, get_implementation
from llm_perf_opt.wan2_1.limits import check_gpu_count
from llm_perf_opt.wan2_1.pipeline import (
    PIPELINE_ID,
    STEP_CACHES,
    cached_residual_bytes,
    pipeline_key,
    pipeline_tree,
)
from llm_perf_opt.wan2_1.vae import CACHE_T, VIDEO_CHANNELS, decoded_frames
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant

__all__ = [
    "STAGES",
    "WAN2_1",
    "Wan21Family",
    "add_text_encoder_loads",
    "add_transformer_loads",
    "check_no_whatif_methods",
    "default_parallelism",
    "fusion_chains",
    "vae_pass_peak",
]

STAGES: Final = ("text_encoder", "image_encoder", "vae_encode", "diffusion", "scheduler", "vae_decode")
"""The stages of a run, in the order they run; their seconds add up to the total.

``vae_encode`` is ``vae.encoder`` and ``vae.conv1``; ``vae_decode`` is ``vae.conv2``, ``vae.decoder``
and the VAE's own latent scaling; ``scheduler`` includes the guidance combination (the pipeline
root's own ops)."""

TEXT_ENCODER: Final = "text_encoder"
IMAGE_ENCODER: Final = "image_encoder"
DIFFUSION: Final = "diffusion"
SCHEDULER: Final = "scheduler"
STEP_CACHE: Final = "step_cache"
ROTATED_TENSORS: Final = 2
"""q and k: the tensors a self-attention rotates."""
VAE: Final = "vae"
SELF_ATTENTION_CLASS: Final = "WanSelfAttention"
BLOCK_CLASS: Final = "WanAttentionBlock"
RMS_NORM_CLASS: Final = "WanRMSNorm"
MODULATED_NORMS: Final = ("norm1", "norm2")
"""The block norms whose output is modulated (``x·(1 + scale) + shift``), in order; ``norm3``
(before the cross-attention) is affine and not modulated."""
RESIDUAL_NORM: Final = "norm3"
"""The norm that follows the first gated residual (``x + y·gate``) of a block."""
ROTARY_PRIMITIVE: Final = "rope"
CAST_PRIMITIVE: Final = "_to_copy"
COMPILED_CHAINS: Final = ("rmsnorm", "rotary", "norm-modulation", "gate-residual")
"""The chains a compiler (``torch.compile``'s Inductor) fuses in a block: every element-wise run
between two matrix products or attentions."""
STACK_IMPLEMENTATIONS: Final[Mapping[str, str]] = MappingProxyType(
    {"official": "official", "xdit": "official"}
)
"""The implementation profile (which bytes the eager ops move) of each stack's transformer before
its own fusion: the official code for the official scripts and xDiT (which patches the official
model); the bf16 diffusers model for the rest, which hold bf16 weights without the official
autocast casts."""
REFERENCE_STACKS: Final = ("official", "diffusers")
"""The eager reference stacks, placed as ``generate.py`` places them: an image-conditioned
transformer on one GPU starts on the CPU (``init_on_cpu``) and moves in during the run. The other
stacks load it onto the device before the run (not timed)."""
OFFLOAD_OF_STACK: Final[Mapping[str, str]] = MappingProxyType(
    {
        "none": "none",
        "model-per-stage": "model",
        "component": "model",
        "group-streamed": "group",
        "layerwise-streamed": "group",
        "sequential": "sequential",
    }
)
"""A stack record's offload as the run prices it (``fsdp-cpu`` and ``disk`` are not priced)."""
PATCH_EMBEDDING_CLASS: Final = "Conv3d"
CAUSAL_CONV_CLASS: Final = "CausalConv3d"

ALL_TO_ALLS_PER_SELF_ATTENTION: Final = 4
"""q, k and v (scatter heads, gather the sequence) and the output (back)."""
HEAD_OUT_DTYPE: Final = FP32
"""The head runs in the fp32 autocast region; its output is gathered in fp32."""
LATENT_COPIES_PER_STEP: Final = 4
"""With offload an image-conditioned task copies, per step, both noise predictions to the CPU and
the latent back to the GPU twice (the next model input and ``x0``): four latent-sized copies."""
RESIDENT_STREAM_TENSORS: Final = 2
"""Token tensors a DiT block holds while a sub-module runs: the residual stream and the modulated input."""
RESIDENT_VAE_TENSORS: Final = 2
"""Chunk tensors a VAE residual block holds while its residual branch runs: its input and its shortcut."""
VAE_CHUNK_MIN_FRAMES: Final = 5
"""The chunk estimate of the VAE needs a later chunk: below 5 frames it is taken at 5 (an upper bound)."""
RUN_PHASES: Final = ("text_encoder", "image_encoder", "vae_encode", "sampling", "vae_decode")
"""The memory phases of a run, in order; the run's peak is the largest."""


def default_parallelism(num_heads: int, gpus: int) -> Parallelism:
    """The README's multi-GPU recipe for ``gpus`` GPUs: ``--dit_fsdp --ulysses_size gpus`` when the
    heads split that many ways, else ``--ring_size gpus`` (as for T2V-1.3B on 8 GPUs); one GPU runs
    alone."""
    if gpus == 1:
        return SINGLE_GPU
    if num_heads % gpus == 0:
        return Parallelism(ulysses=gpus, fsdp=True)
    return Parallelism(ring=gpus, fsdp=True)


def _int_param(node: ModuleNode, name: str) -> int:
    value = node.params.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LlmPerfOptError(f"tree: {node.id}.params.{name}: expected an integer, got {value!r}")
    return value


def _subtree(tree: ModuleTree, node_id: str) -> set[str]:
    prefix = f"{node_id}."
    return {node.id for node in tree if node.id == node_id or node.id.startswith(prefix)}


def _latent_bytes(tree: ModuleTree) -> sympy.Expr:
    return (
        B
        * _int_param(tree[VAE], "z_dim")
        * latent_frames()
        * latent_height()
        * latent_width()
        * FP32.size_bytes
    )


def stored_weight_bytes(tree: ModuleTree, deployment: Deployment) -> int:
    """Bytes of the transformer's weights as the deployment holds them: as the implementation
    declares them in bf16 storage, else every parameter at the storage's bytes (block scales
    included; norms and biases too, which the stacks keep in bf16: a slight underestimate)."""
    if deployment.weight_storage == "bf16":
        return weight_bytes(tree, DIFFUSION)
    params = tree[DIFFUSION].aggregate.params
    per_param = sympy.Rational(WEIGHT_STORAGE_BYTES[deployment.weight_storage])
    return int(sympy.ceiling(sympy.sympify(params) * per_param))


def sequence_shard(tree: ModuleTree, world: int) -> SequenceShard:
    """The rank's share of the transformer: the root's own ops (timestep sinusoid, unpatchify after
    the gather) and the patch embedding are replicated; every block's self-attention holds the
    sequence-parallel attention."""
    root = tree[DIFFUSION]
    replicated = {root.id} | {
        node.id for node in tree if node.class_name == PATCH_EMBEDDING_CLASS and node.parent_id == root.id
    }
    attention = {node.id for node in tree if node.class_name == SELF_ATTENTION_CLASS}
    return SequenceShard(world, video_tokens(), frozenset(replicated), frozenset(attention))


Chain = list[tuple[ModuleNode, int]]


def _elementwise(node: ModuleNode, index: int) -> bool:
    return op_class(node.ops[index].primitive) is OpClass.ELEMENTWISE


def _with_casts(node: ModuleNode, indices: list[int], taken: set[int]) -> list[int]:
    """``indices`` with the casts that directly follow the last of them (a chain's output cast)."""
    after = indices[-1] + 1
    while after < len(node.ops) and node.ops[after].primitive == CAST_PRIMITIVE and after not in taken:
        indices = [*indices, after]
        after += 1
    return indices


def _modulations(block: ModuleNode) -> list[list[int]]:
    """The block's ``x·(1 + scale) + shift`` runs among its own ops (``add``, ``mul``, ``add`` and
    the casts after), first to last."""
    ops, found, index = block.ops, [], 0
    while index + 2 < len(ops):
        if [op.primitive for op in ops[index : index + 3]] == ["add", "mul", "add"]:
            run = _with_casts(block, [index, index + 1, index + 2], set())
            found.append(run)
            index = run[-1] + 1
        else:
            index += 1
    return found


def _gate_residuals(block: ModuleNode, taken: set[int]) -> list[list[int]]:
    """The block's ``x + y·gate`` runs (``mul`` then ``add``, and the casts after) outside ``taken``."""
    ops, found = block.ops, []
    for index in range(len(ops) - 1):
        if index in taken or index + 1 in taken:
            continue
        if ops[index].primitive == "mul" and ops[index + 1].primitive == "add":
            found.append(_with_casts(block, [index, index + 1], taken))
    return found


def _rotaries(attention: ModuleNode) -> list[list[int]]:
    """One run per rotated tensor of a self-attention's own ops: the element-wise ops leading to
    each ``rope`` and the cast after it; the casts left before the attention go one to each run.
    Where the rotation is declared op by op (the diffusers profile: multiplies, a subtract or add
    and a strided copy per half), the element-wise ops before the attention are the rotations of
    q and k, one half each."""
    ops = attention.ops
    first_tensor_op = next((i for i in range(len(ops)) if not _elementwise(attention, i)), len(ops))
    ropes = [i for i in range(first_tensor_op) if ops[i].primitive == ROTARY_PRIMITIVE]
    if not ropes:
        half, odd = divmod(first_tensor_op, ROTATED_TENSORS)
        if odd or not half:
            return []
        return [list(range(k * half, (k + 1) * half)) for k in range(ROTATED_TENSORS)]
    runs, start = [], 0
    for rope in ropes:
        run = list(range(start, rope + 1))
        if rope + 1 < first_tensor_op and ops[rope + 1].primitive == CAST_PRIMITIVE and rope + 1 not in ropes:
            run.append(rope + 1)
        runs.append(run)
        start = run[-1] + 1
    for offset, index in enumerate(range(start, first_tensor_op)):
        if runs:
            runs[offset % len(runs)].append(index)
    return runs


def fusion_chains(tree: ModuleTree, chains: Sequence[str]) -> list[Chain]:
    """The element-wise chains of the transformer that ``chains`` (names of
    :data:`~llm_perf_opt.deployment.stacks.record.FUSED_CHAINS`) run as one kernel each, found in
    the modules' own op lists (whatever ops they declare):

    - ``rmsnorm``, ``qk-rmsnorm``: each RMSNorm's ops;
    - ``rotary``: each rotated tensor's ops in a self-attention (:func:`_rotaries`);
    - ``modulation``: each ``x·(1 + scale) + shift`` of a block; ``norm-modulation``: the same with
      the LayerNorm before it (``norm1``, ``norm2``);
    - ``gate-residual``: each ``x + y·gate``; ``gate-residual-norm-modulation``: the first with the
      cross-attention norm after it (the second meets the next block's norm, not fused);
    - ``qk-rmsnorm-rotary``: as ``rmsnorm`` and ``rotary`` (two kernels: an overestimate).

    Chains of one op are left alone (they already are one kernel).
    """
    unknown = [c for c in chains if c not in FUSED_CHAINS]
    if unknown:
        raise LlmPerfOptError(
            f"fused_chains: unknown chain {unknown[0]!r}; accepted: {', '.join(FUSED_CHAINS)}"
        )
    wanted = set(chains)
    dit = _subtree(tree, DIFFUSION)
    found: list[Chain] = []
    for node_id in sorted(dit):
        node = tree[node_id]
        rms = wanted & {"rmsnorm", "qk-rmsnorm", "qk-rmsnorm-rotary"}
        if (
            node.class_name == RMS_NORM_CLASS
            and rms
            and all(_elementwise(node, i) for i in range(len(node.ops)))
        ):
            found.append([(node, i) for i in range(len(node.ops))])
        if node.class_name == SELF_ATTENTION_CLASS and wanted & {"rotary", "qk-rmsnorm-rotary"}:
            found.extend([(node, i) for i in run] for run in _rotaries(node))
        if node.class_name == BLOCK_CLASS:
            found.extend(_block_chains(tree, node, wanted))
    return [chain for chain in found if len(chain) > 1]


def _block_chains(tree: ModuleTree, block: ModuleNode, wanted: set[str]) -> list[Chain]:
    children = {tree[c].name: tree[c] for c in block.children}
    norm_fused = bool(wanted & {"norm-modulation", "gate-residual-norm-modulation"})
    chains: list[Chain] = []
    modulations = _modulations(block)
    modulated = bool(wanted & {"modulation", "norm-modulation"})
    for name, run in zip(MODULATED_NORMS, modulations if modulated else [], strict=False):
        norm = children.get(name)
        leading = [(norm, i) for i in range(len(norm.ops))] if norm_fused and norm is not None else []
        chains.append([*leading, *((block, i) for i in run)])
    if wanted & {"gate-residual", "gate-residual-norm-modulation"}:
        taken = {i for run in modulations for i in run}
        for position, run in enumerate(_gate_residuals(block, taken)):
            chain: Chain = [(block, i) for i in run]
            norm = children.get(RESIDUAL_NORM)
            if position == 0 and "gate-residual-norm-modulation" in wanted and norm is not None:
                chain += [(norm, i) for i in range(len(norm.ops))]
            chains.append(chain)
    return chains


@frozen(eq=False)
class _LastChunk:
    """The cost of the last later chunk of a chunked VAE pass: ``cost(F') − cost(F' − 4)`` with
    ``F' = max(F, 5)``, its bytes (what a peak reads); with ``written_only`` just the bytes it writes
    (the tensors it makes)."""

    written_only: bool = False

    def key(self, node: ModuleNode) -> str:
        del node
        return "written" if self.written_only else "chunk"

    def __call__(self, node: ModuleNode, kind: OpKind, cost: Cost) -> Cost:
        del node, kind
        if self.written_only:
            return Cost(bytes_written=_last_chunk(cost.bytes_written))
        return Cost(bytes_read=_last_chunk(cost.bytes_read), bytes_written=_last_chunk(cost.bytes_written))


_CHUNK_FRAMES: Final = sympy.Max(F, VAE_CHUNK_MIN_FRAMES)


@functools.lru_cache(maxsize=4096)
def _last_chunk(expr: sympy.Expr) -> sympy.Expr:
    """``expr(F') − expr(F' − 4)`` with ``F' = max(F, 5)``: what the last chunk adds (blocks at one
    scale share their expressions, so each is computed once)."""
    whole = sympy.sympify(expr).xreplace({F: _CHUNK_FRAMES})
    before = sympy.sympify(expr).xreplace({F: _CHUNK_FRAMES - VAE_TEMPORAL_STRIDE})
    return whole - before


def vae_cache_bytes(tree: ModuleTree, part_id: str, dtype: DType) -> sympy.Expr:
    """Bytes of the causal-convolution caches one chunked VAE pass keeps (``feat_cache``): each
    causal 3-D convolution with time padding holds the last ``CACHE_T`` frames of its input.

    The plane of a convolution is read from its first-chunk FLOPs (one frame in, one out:
    ``2·c_in·c_out·k³·plane``). NB: the resample time convolutions, skipped in the first chunk, are
    not counted (their caches sit at the two coarsest scales).
    """
    total = sympy.Integer(0)
    for node_id in sorted(_subtree(tree, part_id)):
        node = tree[node_id]
        if node.class_name != CAUSAL_CONV_CLASS:
            continue
        padding, kernel = node.params["padding"], node.params["kernel_size"]
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
def _vae_chunk_peaks(tree: ModuleTree) -> tuple[Mapping[str, sympy.Expr], Mapping[str, sympy.Expr]]:
    """Peaks of the last chunk's kernels and of the tensors they write, per VAE module."""
    vae = _subtree(tree, VAE)
    return (
        activation_peaks(tree, _LastChunk(), within=vae),
        activation_peaks(tree, _LastChunk(written_only=True), within=vae),
    )


def _decoded_before_last_chunk(implementation: Implementation) -> sympy.Expr:
    """Bytes of the video the chunks before the last one decoded: ``out``, which the VAE's decode
    loop holds while the decoder runs the last chunk (``out = torch.cat([out, out_], 2)`` after it;
    ``AutoencoderKLWan._decode`` in diffusers, ``WanVAE_.decode`` officially). Both VAEs decode one
    latent frame per chunk into ``1`` frame first and ``4`` after, at ``max(F, 5)`` frames."""
    per_chunk = decoded_frames()
    frames = per_chunk.first + per_chunk.later * (latent_frames(_CHUNK_FRAMES) - 2)
    samples = sympy.Integer(1) if implementation.vae_per_sample else B
    return samples * VIDEO_CHANNELS * H * W * frames * implementation.vae_dtype.size_bytes


def vae_pass_peak(tree: ModuleTree, implementation: Implementation, *, encode: bool) -> sympy.Expr:
    """Estimated peak bytes of one chunked VAE encode (or decode) beyond the VAE's weights: the caches
    of every causal convolution, resident through the pass; in a decode, the video the earlier chunks
    gave (:func:`_decoded_before_last_chunk`), resident through the last chunk; the largest kernel of
    the last chunk (which includes ``torch.cat`` of the output so far with the new chunk); and what a
    residual block holds around it, ``RESIDENT_VAE_TENSORS`` tensors of the largest size a kernel of
    the chunk writes. Taken at ``max(F, 5)`` frames."""
    parts = ("vae.encoder", "vae.conv1") if encode else ("vae.conv2", "vae.decoder")
    chunk, written = _vae_chunk_peaks(tree)
    largest_kernel = maximum(*(chunk[p] for p in parts))
    largest_tensor = maximum(*(written[p] for p in parts))
    cache = vae_cache_bytes(tree, "vae.encoder" if encode else "vae.decoder", implementation.vae_dtype)
    resident = sympy.Integer(0) if encode else _decoded_before_last_chunk(implementation)
    return sympy.Add(largest_kernel, RESIDENT_VAE_TENSORS * largest_tensor, cache, resident)


def _chains_of_mode(mode: str, stack: Stack | None) -> tuple[str, ...]:
    """The chains a fusion mode fuses: none eager, the stack's own with ``fused-kernels``,
    :data:`COMPILED_CHAINS` with ``torch-compile``."""
    if mode not in FUSION_MODES:
        raise LlmPerfOptError(f"fusion: unknown mode {mode!r}; accepted: {', '.join(FUSION_MODES)}")
    chains: tuple[str, ...] = ()
    if "fused-kernels" in mode:
        if stack is None:
            raise LlmPerfOptError(
                f"fusion: {mode!r} fuses a stack's own chains and needs a stack (or fused_chains)"
            )
        chains += stack.fused_chains.chains
    if "torch-compile" in mode:
        chains += tuple(c for c in COMPILED_CHAINS if c not in chains)
    return chains


@frozen(kw_only=True)
class _StackOptions:
    """A stack record's choices for one device and GPU count, in the run's terms."""

    name: str
    attention_kernel: str
    gemm_precision: str
    weight_storage: str
    fused_chains: tuple[str, ...]
    cuda_graphs: bool
    offload: str
    sequence_parallel: str
    cfg_parallel: bool
    fsdp: bool
    t5_cpu: bool
    t5_fsdp: bool
    vae_decode: str

    @classmethod
    def of(cls, stack: str | Stack, device: Accelerator, gpus: int, guidance: bool) -> _StackOptions:
        """Read ``stack`` (a name or a record) for ``device`` and ``gpus``: its attention kernel
        for the device's kernel family; fusion ``eager`` fuses nothing, ``fused-kernels`` the
        record's chains, ``torch-compile`` :data:`COMPILED_CHAINS`; CFG parallelism where the stack
        turns it on, guidance is on and the GPUs split in two."""
        record = stack if isinstance(stack, Stack) else get_stack(stack)
        family = kernel_family(device.name, device.family)
        choice = record.attention.get(family)
        if choice is None:
            raise LlmPerfOptError(
                f"stack: {record.name} has no attention kernel for {device.name} ({family}); its "
                f"families: {', '.join(record.families)}"
            )
        chains = _chains_of_mode(record.fusion.default_for(gpus), record)
        offload = record.offload.default_for(gpus)
        if offload not in OFFLOAD_OF_STACK:
            raise LlmPerfOptError(
                f"stack: {record.name}'s offload {offload!r} is not priced; pass offload= one of "
                f"{', '.join(sorted(set(OFFLOAD_OF_STACK.values())))}"
            )
        sharding = record.weight_sharding.default_for(gpus)
        text = record.text_encoder.default_for(gpus)
        cfg = record.cfg_parallel.default_for(gpus) == "on" and guidance and gpus % 2 == 0
        return cls(
            name=record.name,
            attention_kernel=choice.default_for(gpus),
            gemm_precision=record.gemm_precision.default_for(gpus),
            weight_storage=record.weight_storage.default_for(gpus),
            fused_chains=chains,
            cuda_graphs=record.cuda_graphs.default_for(gpus) == "on",
            offload=OFFLOAD_OF_STACK[offload]
            if gpus == 1 or OFFLOAD_OF_STACK[offload] in ("none", "model")
            else "none",
            sequence_parallel=record.sequence_parallel.default_for(gpus),
            cfg_parallel=cfg,
            fsdp=sharding in ("fsdp", "hsdp"),
            t5_cpu=text == "cpu",
            t5_fsdp=text == "fsdp",
            vae_decode="parallel" if "parallel" in record.vae_decode.default_for(gpus) else "whole",
        )

    def parallelism(self, num_heads: int, per_group: int, cfg: int) -> Parallelism:
        """The split of each CFG group's ``per_group`` GPUs: ring for a ring stack, else Ulysses
        over the largest head divisor and ring for the rest (xDiT's USP; the official recipe)."""
        if per_group == 1:
            return Parallelism(cfg=cfg)
        if self.sequence_parallel == "ring":
            return Parallelism(ring=per_group, fsdp=self.fsdp, cfg=cfg)
        ulysses = max(d for d in range(1, per_group + 1) if per_group % d == 0 and num_heads % d == 0)
        return Parallelism(ulysses=ulysses, ring=per_group // ulysses, fsdp=self.fsdp, cfg=cfg)


def add_transformer_loads(
    builder: ScheduleBuilder,
    tree: ModuleTree,
    transformer_id: str,
    deployment: Deployment,
    tokens: sympy.Expr,
) -> None:
    """The loads of one transformer (``transformer_id``, a ``WanModel``) per forward × its calls
    (each CFG group runs ``1/cfg`` of them): every self-attention's Ulysses all-to-alls and ring
    K/V passes over ``tokens`` (VACE's blocks' too), each block's FSDP all-gather (hidden behind
    it), the root unit's gather and the head output's gather."""
    parallelism = deployment.parallelism
    world = parallelism.sequence_size
    share = sympy.Rational(1, parallelism.cfg)
    gather_how: Overlapping = "overlap_total" if deployment.overlap.fsdp_with_compute else "added"
    dit = tree[transformer_id]
    dim = _int_param(dit, "dim")
    patch = dit.params.get("patch_size")
    if not isinstance(patch, list | tuple) or not all(isinstance(p, int) for p in patch):
        raise LlmPerfOptError(f"tree: {dit.id}.params.patch_size: expected integers, got {patch!r}")
    head_out = _int_param(dit, "out_dim") * math.prod(patch)
    a2a = all_to_all_bytes(
        tokens,
        dim,
        degree=parallelism.ulysses,
        world=world,
        batch=B,
        count=ALL_TO_ALLS_PER_SELF_ATTENTION,
    )
    ring = ring_pass_bytes(tokens, dim, degree=parallelism.ring, world=world, batch=B)
    ring_how: Overlapping = "overlap_own" if deployment.overlap.ring_with_attention else "added"
    prefix = f"{transformer_id}."
    for attention in (n for n in tree if n.class_name == SELF_ATTENTION_CLASS and n.id.startswith(prefix)):
        calls = attention.calls * share
        builder.add(attention, "diffusion.ulysses_all_to_all", calls * a2a, "collective")
        builder.add(attention, "diffusion.ring_kv", calls * ring, "collective", how=ring_how)
    if parallelism.fsdp:
        blocks, block_params, root_params = unit_params(tree, transformer_id)
        gather = parameter_all_gather_bytes(block_params, world)
        for block_id in blocks.children:
            block = tree[block_id]
            builder.add(
                block, "diffusion.fsdp_all_gather", block.calls * share * gather, "collective", how=gather_how
            )
        builder.add(
            dit,
            "diffusion.fsdp_root_gather",
            dit.calls * share * parameter_all_gather_bytes(root_params, world),
            "collective",
        )
    if world > 1:
        head = sequence_all_gather_bytes(tokens, head_out, world=world, batch=B, dtype=HEAD_OUT_DTYPE)
        builder.add(dit, "diffusion.head_all_gather", dit.calls * share * head, "collective")


def add_text_encoder_loads(builder: ScheduleBuilder, tree: ModuleTree, deployment: Deployment) -> None:
    """umT5's loads: its FSDP gathers, or its contexts copied from the CPU, or its weights copied to
    the GPU for encoding (and back with offload ``model``)."""
    world = deployment.parallelism.sequence_size
    offload = deployment.offload == "model"
    gather_how: Overlapping = "overlap_total" if deployment.overlap.fsdp_with_compute else "added"
    text = tree[TEXT_ENCODER]
    t5_bytes = weight_bytes(tree, TEXT_ENCODER)
    if deployment.text_encoder_fsdp:
        t5_blocks, t5_block_params, t5_root_params = unit_params(tree, TEXT_ENCODER)
        t5_gather = parameter_all_gather_bytes(t5_block_params, world)
        for block_id in t5_blocks.children:
            block = tree[block_id]
            builder.add(
                block,
                "text_encoder.fsdp_all_gather",
                block.calls * t5_gather,
                "collective",
                how=gather_how,
            )
        builder.add(
            text,
            "text_encoder.fsdp_root_gather",
            text.calls * parameter_all_gather_bytes(t5_root_params, world),
            "collective",
        )
    t5_held = -(-t5_bytes // world) if deployment.text_encoder_fsdp else t5_bytes
    if deployment.text_encoder_cpu:
        context = text.calls * B * L * _int_param(text, "dim") * BF16.size_bytes
        builder.add(text, "text_encoder.context_to_gpu", context, "host")
    else:
        if not deployment.text_encoder_fsdp:
            builder.add(text, "text_encoder.to_gpu", sympy.Integer(t5_bytes), "host")
        if offload:
            builder.add(text, "text_encoder.to_cpu", sympy.Integer(t5_held), "host")


@frozen(eq=False)
class Wan21Family:
    """Wan2.1's run rules (see the module docstring); :data:`WAN2_1` is the one instance."""

    name: str = "wan2.1"
    stages: tuple[str, ...] = STAGES
    frame_stride: int = VAE_TEMPORAL_STRIDE
    size_multiple: int = SIZE_MULTIPLE

    def deployment(
        self,
        variant: str | WanVariant,
        *,
        stack: str | Stack | None = None,
        implementation: str | Implementation | None = None,
        accelerator: str | Accelerator = "h100-sxm",
        gpus: int = 1,
        parallelism: Parallelism | None = None,
        offload: str | None = None,
        t5_cpu: bool | None = None,
        t5_fsdp: bool | None = None,
        attention_kernel: str | None = None,
        precision: str = "bf16",
        gemm_precision: str | None = None,
        weight_storage: str | None = None,
        fused_chains: Sequence[str] | None = None,
        fusion: str | None = None,
        cuda_graphs: bool | None = None,
        vae_decode: str | None = None,
        cfg_parallel: bool | None = None,
        sparse_attention: str = "ideal",
        step_cache: str | None = None,
        guidance: bool = True,
        efficiencies: EfficiencyTable = EFFICIENCIES,
        host: HostCpu = DEFAULT_HOST,
        overlap: Overlap | None = None,
    ) -> Deployment:
        """A validated :class:`Deployment` of ``variant``.

        Without ``stack``, ``generate.py``'s defaults as the official code runs them: one GPU with
        ``--offload_model``, several with ``--dit_fsdp --t5_fsdp`` and Ulysses over all of them
        (ring where the heads do not split); ``--t5_fsdp`` follows ``--dit_fsdp`` unless umT5 runs
        on the CPU; FlashAttention-2, bf16, eager.

        With ``stack`` (a preset name or a :class:`Stack`), the stack's own defaults for the
        device's kernel family and the GPU count (:meth:`_stack_options`); every other argument
        given overrides the stack's choice field by field. ``fusion`` (a fusion mode: ``eager``,
        ``fused-kernels``, ``torch-compile`` …) picks the chains as a stack's mode does, unless
        ``fused_chains`` names them.
        """
        record = variant if isinstance(variant, WanVariant) else get_variant(variant)
        device = accelerator if isinstance(accelerator, Accelerator) else get_accelerator(accelerator)
        gpus = check_gpu_count(gpus)
        for name, value in (("t5_cpu", t5_cpu), ("cuda_graphs", cuda_graphs), ("cfg_parallel", cfg_parallel)):
            if value is not None and not isinstance(value, bool):
                raise LlmPerfOptError(f"{name}: must be true or false, got {value!r}")
        chosen = _StackOptions.of(stack, device, gpus, guidance) if stack is not None else None
        if fused_chains is None and fusion is not None:
            fused_chains = _chains_of_mode(fusion, get_stack(stack) if isinstance(stack, str) else stack)
        if cfg_parallel is None:
            cfg_parallel = chosen.cfg_parallel if chosen is not None else False
        if cfg_parallel and gpus % 2:
            raise LlmPerfOptError(
                f"cfg_parallel: CFG parallelism splits the GPUs into two groups; got gpus={gpus} "
                "(accepted: an even GPU count)"
            )
        if cfg_parallel and not guidance:
            raise LlmPerfOptError(
                "cfg_parallel: CFG parallelism runs the two guidance forwards at once and needs "
                "guidance; got guidance=False"
            )
        cfg = 2 if cfg_parallel else 1
        if parallelism is None:
            per_group = gpus // cfg
            if chosen is not None:
                parallelism = chosen.parallelism(record.num_heads, per_group, cfg)
            else:
                parallelism = default_parallelism(record.num_heads, per_group)
                parallelism = Parallelism(parallelism.ulysses, parallelism.ring, parallelism.fsdp, cfg)
        if t5_cpu is None:
            t5_cpu = chosen.t5_cpu if chosen is not None else False
        if offload is None:
            offload = chosen.offload if chosen is not None else ("model" if gpus == 1 else "none")
        if t5_fsdp is None:
            fsdp_default = isinstance(parallelism, Parallelism) and parallelism.fsdp and not t5_cpu
            t5_fsdp = chosen.t5_fsdp if chosen is not None and not t5_cpu else fsdp_default
        if gemm_precision is None:
            gemm_precision = chosen.gemm_precision if chosen is not None else "bf16"
        if weight_storage is None:
            if chosen is not None and chosen.weight_storage != "bf16":
                weight_storage = chosen.weight_storage
            else:
                weight_storage = (
                    GEMM_PRECISIONS[gemm_precision].storage if gemm_precision in GEMM_PRECISIONS else "bf16"
                )
        stack_name = chosen.name if chosen is not None else None
        if implementation is None:
            implementation = (
                STACK_IMPLEMENTATIONS.get(stack_name, "diffusers") if stack_name is not None else "official"
            )
        profile = get_implementation(implementation)
        return Deployment(
            family=self,
            variant=record,
            implementation=profile,
            accelerator=device,
            gpus=gpus,
            parallelism=parallelism,
            offload=offload,
            text_encoder_cpu=t5_cpu,
            text_encoder_fsdp=t5_fsdp,
            attention_kernel=attention_kernel
            if attention_kernel is not None
            else (chosen.attention_kernel if chosen is not None else "fa2"),
            precision=precision,
            gemm_precision=gemm_precision,
            weight_storage=weight_storage,
            fused_chains=tuple(fused_chains)
            if fused_chains is not None
            else (chosen.fused_chains if chosen is not None else ()),
            cuda_graphs=cuda_graphs
            if cuda_graphs is not None
            else (chosen is not None and chosen.cuda_graphs),
            vae_decode=vae_decode
            if vae_decode is not None
            else (chosen.vae_decode if chosen is not None and gpus > 1 else "whole"),
            sparse_attention=sparse_attention,
            step_cache=step_cache,
            stack=stack_name if stack_name is not None else profile.name,
            guidance=guidance,
            efficiencies=efficiencies,
            host=host,
            overlap=Overlap() if overlap is None else overlap,
        )

    def check(self, deployment: Deployment) -> None:
        variant = deployment.variant
        if not isinstance(variant, WanVariant):
            raise LlmPerfOptError(f"variant: expected a Wan2.1 variant record, got {variant!r}")
        heads, ulysses = variant.num_heads, deployment.parallelism.ulysses
        if heads % ulysses:
            divisors = [d for d in range(1, heads + 1) if heads % d == 0]
            raise LlmPerfOptError(
                f"ulysses: {heads} attention heads cannot be split {ulysses} ways; accepted Ulysses "
                f"degrees: {', '.join(map(str, divisors))} (use ring for the rest)"
            )
        if deployment.offload in ("group", "sequential") and deployment.gpus > 1:
            raise LlmPerfOptError(
                f"offload: {deployment.offload} offloading streams one GPU's weights; got "
                f"offload={deployment.offload!r} with gpus={deployment.gpus} (accepted: none or model "
                "on several GPUs)"
            )

    def pipeline_tree(self, deployment: Deployment) -> ModuleTree:
        return pipeline_tree(
            deployment.variant, deployment.implementation, deployment.guidance, *_methods(deployment)
        )

    def tree_key(self, deployment: Deployment) -> str:
        return pipeline_key(
            deployment.variant, deployment.implementation, deployment.guidance, *_methods(deployment)
        )

    def describe(self, deployment: Deployment) -> str:
        parts = []
        parallelism = deployment.parallelism
        if parallelism.ulysses > 1:
            parts.append(f"--ulysses_size {parallelism.ulysses}")
        if parallelism.ring > 1:
            parts.append(f"--ring_size {parallelism.ring}")
        if parallelism.fsdp:
            parts.append("--dit_fsdp")
        if deployment.text_encoder_fsdp:
            parts.append("--t5_fsdp")
        if parallelism.cfg > 1:
            parts.append("CFG parallel")
        if deployment.offload == "group":
            parts.append("transformer group offload")
        elif deployment.offload == "sequential":
            parts.append("sequential CPU offload")
        else:
            parts.append(f"--offload_model {deployment.offload == 'model'}")
        if deployment.text_encoder_cpu:
            parts.append("--t5_cpu")
        details = [deployment.attention_kernel]
        if deployment.precision != "bf16":
            details.append(deployment.precision)
        if deployment.gemm_precision != "bf16":
            details.append(f"{deployment.gemm_precision} GEMMs")
        if deployment.weight_storage != "bf16":
            details.append(f"{deployment.weight_storage} weights")
        if deployment.fused_chains:
            details.append("fused " + "+".join(deployment.fused_chains))
        if deployment.cuda_graphs:
            details.append("CUDA graphs")
        if deployment.vae_decode == "parallel":
            details.append("parallel VAE decode")
        if (
            deployment.stack not in ("official", "diffusers")
            or deployment.stack != deployment.implementation.name
        ):
            details.insert(0, f"stack {deployment.stack}")
        return " ".join(parts) + f" ({', '.join(details)})"

    def schedule(self, tree: ModuleTree, deployment: Deployment) -> Schedule:
        builder = ScheduleBuilder()
        builder.apply_stack({DIFFUSION})
        for chain in fusion_chains(tree, deployment.fused_chains):
            builder.fuse(chain)
        image = IMAGE_ENCODER in tree.nodes
        parallelism = deployment.parallelism
        world = parallelism.sequence_size
        offload = deployment.offload == "model"
        add_transformer_loads(builder, tree, DIFFUSION, deployment, video_tokens())
        if parallelism.cfg > 1:
            # each group's noise prediction reaches the other once per step
            builder.add(tree[DIFFUSION], "diffusion.cfg_all_gather", S * _latent_bytes(tree), "collective")
        add_text_encoder_loads(builder, tree, deployment)

        # CLIP and the transformer's copies
        dit = tree[DIFFUSION]
        if image and offload:
            clip_bytes = weight_bytes(tree, IMAGE_ENCODER)
            builder.add(tree[IMAGE_ENCODER], "image_encoder.to_cpu", sympy.Integer(clip_bytes), "host")
        dit_bytes = stored_weight_bytes(tree, deployment)
        dit_held = -(-dit_bytes // world) if parallelism.fsdp else dit_bytes
        if deployment.offload == "group":
            builder.add(
                dit, "diffusion.group_offload_stream", dit.calls * dit_bytes, "host", how="overlap_total"
            )
        elif deployment.offload == "sequential":
            builder.add(dit, "diffusion.sequential_offload", dit.calls * dit_bytes, "host")
        elif image and world == 1 and deployment.stack in REFERENCE_STACKS:
            builder.add(dit, "diffusion.to_gpu", sympy.Integer(dit_held), "host")
        if offload:
            builder.add(dit, "diffusion.to_cpu", sympy.Integer(dit_held), "host")
        if image and offload:
            latent = LATENT_COPIES_PER_STEP * S * _latent_bytes(tree)
            builder.add(tree[SCHEDULER], "scheduler.latent_copies", latent, "host")

        if deployment.text_encoder_cpu:
            builder.run_on_host(_subtree(tree, TEXT_ENCODER))
        if image and offload:
            builder.run_on_host(_subtree(tree, SCHEDULER) | {tree.root_id})
        shard = StageShard(DIFFUSION, sequence_shard(tree, world), parallelism.cfg)
        if deployment.vae_decode == "parallel" and deployment.gpus > 1:
            decode = _subtree(tree, "vae.decoder") | _subtree(tree, "vae.conv2")
            return builder.build(Combined((shard, ModuleSplit(frozenset(decode), deployment.gpus))))
        return builder.build(shard)

    def stage_seconds(
        self, seconds: Mapping[str, sympy.Expr], own: Mapping[str, sympy.Expr]
    ) -> dict[str, sympy.Expr]:
        return {
            "text_encoder": seconds[TEXT_ENCODER],
            "image_encoder": seconds.get(IMAGE_ENCODER, sympy.Integer(0)),
            "vae_encode": seconds["vae.encoder"] + seconds["vae.conv1"],
            "diffusion": seconds[DIFFUSION] + seconds.get(STEP_CACHE, sympy.Integer(0)),
            "scheduler": seconds[SCHEDULER] + own[PIPELINE_ID],
            "vae_decode": seconds["vae.conv2"] + seconds["vae.decoder"] + own[VAE],
        }

    def memory(self, tree: ModuleTree, deployment: Deployment) -> RunMemory:
        return _memory(tree, deployment.shape, deployment)


def check_no_whatif_methods(deployment: Deployment) -> None:
    """Raise for a sparse-attention pattern or a step-cache method on a family whose pipeline does
    not declare them (the density ρ and the reused steps are symbols of every family's formulas)."""
    name = getattr(deployment.variant, "model_variant", deployment.variant)
    if deployment.sparse_attention != "ideal":
        raise LlmPerfOptError(
            f"sparse_attention: the {deployment.sparse_attention!r} pattern's overhead is declared for "
            f"the Wan2.1 text- and image-to-video variants, not {name} (accepted: 'ideal', the density "
            "alone)"
        )
    if deployment.step_cache is not None:
        raise LlmPerfOptError(
            f"step_cache: the {deployment.step_cache!r} module is declared for the Wan2.1 text- and "
            f"image-to-video variants, not {name} (accepted: none; reused steps alone)"
        )


def _methods(deployment: Deployment) -> tuple[str, str | None]:
    """The deployment's sparse-attention pattern and step-cache method, as the pipeline takes them."""
    if deployment.step_cache is not None and deployment.step_cache not in STEP_CACHES:
        raise LlmPerfOptError(
            f"step_cache: unknown step cache {deployment.step_cache!r}, expected one of "
            f"{', '.join(STEP_CACHES)} or none"
        )
    return deployment.sparse_attention, deployment.step_cache


@functools.lru_cache(maxsize=32)
def _memory(tree: ModuleTree, shape: tuple[object, ...], deployment: Deployment) -> RunMemory:
    del shape  # the cache key, with the tree
    variant: WanVariant = deployment.variant
    implementation: Implementation = deployment.implementation
    parallelism = deployment.parallelism
    world = parallelism.sequence_size
    image = IMAGE_ENCODER in tree.nodes
    offload = deployment.offload == "model"
    shard = StageShard(DIFFUSION, sequence_shard(tree, world))
    dit_peaks = activation_peaks(tree, shard, within=_subtree(tree, DIFFUSION))
    peaks = activation_peaks(tree, within=_subtree(tree, TEXT_ENCODER) | _subtree(tree, IMAGE_ENCODER))

    dit_bytes = stored_weight_bytes(tree, deployment)
    if deployment.offload in ("group", "sequential"):
        dit_held, dit_gathered = 0, fsdp_gathered_bytes(tree, DIFFUSION)
    elif parallelism.fsdp:
        dit_held, dit_gathered = math.ceil(dit_bytes / world), fsdp_gathered_bytes(tree, DIFFUSION)
    else:
        dit_held, dit_gathered = dit_bytes, 0
    rank_tokens = tokens_per_rank(video_tokens(), world)
    stream = RESIDENT_STREAM_TENSORS * B * rank_tokens * variant.dim * implementation.stream_dtype.size_bytes
    context = B * (L + variant.image_tokens) * variant.dim * implementation.matmul_dtype.size_bytes
    t5_bytes = weight_bytes(tree, TEXT_ENCODER)
    t5_cpu = deployment.text_encoder_cpu
    t5_weights = 0 if t5_cpu else (-(-t5_bytes // world) if deployment.text_encoder_fsdp else t5_bytes)
    zero = sympy.Integer(0)
    parts: dict[str, sympy.Expr] = {
        "vae_weights": sympy.Integer(weight_bytes(tree, VAE)),
        "text_encoder_weights": sympy.Integer(t5_weights),
        "text_encoder_gathered": sympy.Integer(
            fsdp_gathered_bytes(tree, TEXT_ENCODER) if deployment.text_encoder_fsdp else 0
        ),
        "text_encoder_activations": zero if t5_cpu else peaks[TEXT_ENCODER],
        "diffusion_weights": sympy.Integer(dit_held),
        "diffusion_gathered": sympy.Integer(dit_gathered),
        "diffusion_activations": dit_peaks[DIFFUSION] + stream + context,
        "vae_decode_peak": vae_pass_peak(tree, implementation, encode=False),
    }
    if deployment.step_cache is not None:
        # one residual per guidance branch a rank runs, over the tokens it holds
        parts["step_cache_residuals"] = cached_residual_bytes(
            variant, implementation, guidance=deployment.guidance and parallelism.cfg == 1, tokens=rank_tokens
        )
    if image:
        parts["image_encoder_weights"] = sympy.Integer(weight_bytes(tree, IMAGE_ENCODER))
        parts["image_encoder_activations"] = peaks[IMAGE_ENCODER]
        parts["vae_encode_peak"] = vae_pass_peak(tree, implementation, encode=True)
    vae = parts["vae_weights"]
    dit_weights = parts["diffusion_weights"]
    dit_early = zero if image and world == 1 and deployment.stack in REFERENCE_STACKS else dit_weights
    dit_after = zero if offload else dit_weights
    t5_after = zero if offload else parts["text_encoder_weights"]
    clip = parts.get("image_encoder_weights", zero)
    clip_after = zero if offload else clip
    phases = {
        "text_encoder": vae
        + dit_early
        + clip
        + parts["text_encoder_weights"]
        + parts["text_encoder_gathered"]
        + parts["text_encoder_activations"],
        "image_encoder": vae + dit_early + t5_after + clip + parts["image_encoder_activations"]
        if image
        else zero,
        "vae_encode": vae + dit_early + t5_after + clip_after + parts["vae_encode_peak"] if image else zero,
        "sampling": vae
        + t5_after
        + clip_after
        + dit_weights
        + parts["diffusion_gathered"]
        + parts["diffusion_activations"]
        + parts.get("step_cache_residuals", zero),
        "vae_decode": vae + t5_after + clip_after + dit_after + parts["vae_decode_peak"],
    }
    return RunMemory(parts=parts, phases=phases)


WAN2_1: Final = Wan21Family()
"""The Wan2.1 family's run rules."""
