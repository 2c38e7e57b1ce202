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
  once per forward, overlapped with it. Copies run over the host link.
- **umT5 on the CPU** (``--t5_cpu``): its modules run on the host CPU's rates, and the two contexts
  are copied to the GPU.
- There is no CFG, tensor or pipeline parallelism: every rank runs every forward.

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
from collections.abc import Mapping
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
    Overlapping,
    RunMemory,
    Schedule,
    ScheduleBuilder,
    SequenceShard,
    StageShard,
)
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
from llm_perf_opt.hardware.roofline import maximum
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.dtypes import BF16, FP32, DType
from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree, OpKind
from llm_perf_opt.symbolic.symbols import B, F, L, S
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
from llm_perf_opt.wan2_1.pipeline import PIPELINE_ID, pipeline_key, pipeline_tree
from llm_perf_opt.wan2_1.vae import CACHE_T
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant

__all__ = [
    "STAGES",
    "WAN2_1",
    "Wan21Family",
    "add_text_encoder_loads",
    "add_transformer_loads",
    "default_parallelism",
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
VAE: Final = "vae"
SELF_ATTENTION_CLASS: Final = "WanSelfAttention"
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


def vae_pass_peak(tree: ModuleTree, implementation: Implementation, *, encode: bool) -> sympy.Expr:
    """Estimated peak bytes of one chunked VAE encode (or decode) beyond the VAE's weights: the caches
    of every causal convolution, resident through the pass; the largest kernel of the last chunk
    (which includes ``torch.cat`` of the output so far with the new chunk); and what a residual block
    holds around it, ``RESIDENT_VAE_TENSORS`` tensors of the largest size a kernel of the chunk
    writes. Taken at ``max(F, 5)`` frames."""
    parts = ("vae.encoder", "vae.conv1") if encode else ("vae.conv2", "vae.decoder")
    chunk, written = _vae_chunk_peaks(tree)
    largest_kernel = maximum(*(chunk[p] for p in parts))
    largest_tensor = maximum(*(written[p] for p in parts))
    cache = vae_cache_bytes(tree, "vae.encoder" if encode else "vae.decoder", implementation.vae_dtype)
    return sympy.Add(largest_kernel, RESIDENT_VAE_TENSORS * largest_tensor, cache)


def add_transformer_loads(
    builder: ScheduleBuilder,
    tree: ModuleTree,
    transformer_id: str,
    deployment: Deployment,
    tokens: sympy.Expr,
) -> None:
    """The loads of one transformer (``transformer_id``, a ``WanModel``) per forward × its calls:
    every self-attention's Ulysses all-to-alls and ring K/V passes over ``tokens`` (VACE's blocks'
    too), each block's FSDP all-gather (hidden behind it), the root unit's gather and the head
    output's gather."""
    parallelism = deployment.parallelism
    world = parallelism.world_size
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
        builder.add(attention, "diffusion.ulysses_all_to_all", attention.calls * a2a, "collective")
        builder.add(attention, "diffusion.ring_kv", attention.calls * ring, "collective", how=ring_how)
    if parallelism.fsdp:
        blocks, block_params, root_params = unit_params(tree, transformer_id)
        gather = parameter_all_gather_bytes(block_params, world)
        for block_id in blocks.children:
            block = tree[block_id]
            builder.add(
                block, "diffusion.fsdp_all_gather", block.calls * gather, "collective", how=gather_how
            )
        builder.add(
            dit,
            "diffusion.fsdp_root_gather",
            dit.calls * parameter_all_gather_bytes(root_params, world),
            "collective",
        )
    if world > 1:
        head = sequence_all_gather_bytes(tokens, head_out, world=world, batch=B, dtype=HEAD_OUT_DTYPE)
        builder.add(dit, "diffusion.head_all_gather", dit.calls * head, "collective")


def add_text_encoder_loads(builder: ScheduleBuilder, tree: ModuleTree, deployment: Deployment) -> None:
    """umT5's loads: its FSDP gathers, or its contexts copied from the CPU, or its weights copied to
    the GPU for encoding (and back with offload ``model``)."""
    world = deployment.parallelism.world_size
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
        implementation: str | Implementation = "official",
        accelerator: str | Accelerator = "h100-sxm",
        gpus: int = 1,
        parallelism: Parallelism | None = None,
        offload: str | None = None,
        t5_cpu: bool = False,
        t5_fsdp: bool | None = None,
        attention_kernel: str = "fa2",
        precision: str = "bf16",
        guidance: bool = True,
        efficiencies: EfficiencyTable = EFFICIENCIES,
        host: HostCpu = DEFAULT_HOST,
        overlap: Overlap | None = None,
    ) -> Deployment:
        """A validated :class:`Deployment` of ``variant`` with ``generate.py``'s defaults filled:
        one GPU with ``--offload_model``, several with ``--dit_fsdp --t5_fsdp`` and Ulysses over all
        of them (ring where the heads do not split); ``--t5_fsdp`` follows ``--dit_fsdp`` unless umT5
        runs on the CPU."""
        record = variant if isinstance(variant, WanVariant) else get_variant(variant)
        device = accelerator if isinstance(accelerator, Accelerator) else get_accelerator(accelerator)
        gpus = check_gpu_count(gpus)
        if parallelism is None:
            parallelism = default_parallelism(record.num_heads, gpus)
        if not isinstance(t5_cpu, bool):
            raise LlmPerfOptError(f"t5_cpu: must be true or false, got {t5_cpu!r}")
        return Deployment(
            family=self,
            variant=record,
            implementation=get_implementation(implementation),
            accelerator=device,
            gpus=gpus,
            parallelism=parallelism,
            offload=("model" if gpus == 1 else "none") if offload is None else offload,
            text_encoder_cpu=t5_cpu,
            text_encoder_fsdp=(isinstance(parallelism, Parallelism) and parallelism.fsdp and not t5_cpu)
            if t5_fsdp is None
            else t5_fsdp,
            attention_kernel=attention_kernel,
            precision=precision,
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
        if deployment.offload == "group" and deployment.gpus > 1:
            raise LlmPerfOptError(
                f"offload: group offloading streams one GPU's weights; got offload='group' with "
                f"gpus={deployment.gpus} (accepted: none or model on several GPUs)"
            )

    def pipeline_tree(self, deployment: Deployment) -> ModuleTree:
        return pipeline_tree(deployment.variant, deployment.implementation, deployment.guidance)

    def tree_key(self, deployment: Deployment) -> str:
        return pipeline_key(deployment.variant, deployment.implementation, deployment.guidance)

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
        if deployment.offload == "group":
            parts.append("transformer group offload")
        else:
            parts.append(f"--offload_model {deployment.offload == 'model'}")
        if deployment.text_encoder_cpu:
            parts.append("--t5_cpu")
        kernel = deployment.attention_kernel
        return (
            " ".join(parts)
            + f" ({kernel if deployment.precision == 'bf16' else f'{kernel}, {deployment.precision}'})"
        )

    def schedule(self, tree: ModuleTree, deployment: Deployment) -> Schedule:
        builder = ScheduleBuilder()
        image = IMAGE_ENCODER in tree.nodes
        parallelism = deployment.parallelism
        world = parallelism.world_size
        offload = deployment.offload == "model"
        add_transformer_loads(builder, tree, DIFFUSION, deployment, video_tokens())
        add_text_encoder_loads(builder, tree, deployment)

        # CLIP and the transformer's copies
        dit = tree[DIFFUSION]
        if image and offload:
            clip_bytes = weight_bytes(tree, IMAGE_ENCODER)
            builder.add(tree[IMAGE_ENCODER], "image_encoder.to_cpu", sympy.Integer(clip_bytes), "host")
        dit_bytes = weight_bytes(tree, DIFFUSION)
        dit_held = -(-dit_bytes // world) if parallelism.fsdp else dit_bytes
        if deployment.offload == "group":
            builder.add(
                dit, "diffusion.group_offload_stream", dit.calls * dit_bytes, "host", how="overlap_total"
            )
        elif image and world == 1:
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
        return builder.build(StageShard(DIFFUSION, sequence_shard(tree, world)))

    def stage_seconds(
        self, seconds: Mapping[str, sympy.Expr], own: Mapping[str, sympy.Expr]
    ) -> dict[str, sympy.Expr]:
        return {
            "text_encoder": seconds[TEXT_ENCODER],
            "image_encoder": seconds.get(IMAGE_ENCODER, sympy.Integer(0)),
            "vae_encode": seconds["vae.encoder"] + seconds["vae.conv1"],
            "diffusion": seconds[DIFFUSION],
            "scheduler": seconds[SCHEDULER] + own[PIPELINE_ID],
            "vae_decode": seconds["vae.conv2"] + seconds["vae.decoder"] + own[VAE],
        }

    def memory(self, tree: ModuleTree, deployment: Deployment) -> RunMemory:
        return _memory(tree, deployment.shape, deployment)


@functools.lru_cache(maxsize=32)
def _memory(tree: ModuleTree, shape: tuple[object, ...], deployment: Deployment) -> RunMemory:
    del shape  # the cache key, with the tree
    variant: WanVariant = deployment.variant
    implementation: Implementation = deployment.implementation
    parallelism = deployment.parallelism
    world = parallelism.world_size
    image = IMAGE_ENCODER in tree.nodes
    offload = deployment.offload == "model"
    shard = StageShard(DIFFUSION, sequence_shard(tree, world))
    dit_peaks = activation_peaks(tree, shard, within=_subtree(tree, DIFFUSION))
    peaks = activation_peaks(tree, within=_subtree(tree, TEXT_ENCODER) | _subtree(tree, IMAGE_ENCODER))

    dit_bytes = weight_bytes(tree, DIFFUSION)
    if deployment.offload == "group":
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
    if image:
        parts["image_encoder_weights"] = sympy.Integer(weight_bytes(tree, IMAGE_ENCODER))
        parts["image_encoder_activations"] = peaks[IMAGE_ENCODER]
        parts["vae_encode_peak"] = vae_pass_peak(tree, implementation, encode=True)
    vae = parts["vae_weights"]
    dit_weights = parts["diffusion_weights"]
    dit_early = zero if image and world == 1 else dit_weights
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
        + parts["diffusion_activations"],
        "vae_decode": vae + t5_after + clip_after + dit_after + parts["vae_decode_peak"],
    }
    return RunMemory(parts=parts, phases=phases)


WAN2_1: Final = Wan21Family()
"""The Wan2.1 family's run rules."""
