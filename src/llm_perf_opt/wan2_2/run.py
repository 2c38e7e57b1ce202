"""How Wan2.2 runs on devices, as the official ``generate.py`` runs it: the family's run rules.

Read from Wan-Video/Wan2.2 (``generate.py``; ``wan/text2video.py`` ``WanT2V``, ``wan/image2video.py``
``WanI2V``, ``wan/textimage2video.py`` ``WanTI2V``; snapshot of March 2026). A run is the pipeline
tree (:mod:`.pipeline`) timed on rank 0; what it shares with Wan2.1 is Wan2.1's rule, reused from
:mod:`llm_perf_opt.wan2_1.run` (:func:`~llm_perf_opt.wan2_1.run.add_transformer_loads`,
:func:`~llm_perf_opt.wan2_1.run.add_text_encoder_loads`,
:func:`~llm_perf_opt.wan2_1.run.vae_pass_peak`):

- **umT5** is built on the CPU; it moves to the GPU to encode both prompts and back with
  ``--offload_model``; ``--t5_cpu`` runs it on the host and copies the contexts; ``--t5_fsdp``
  shards it (as Wan2.1).
- **The VAE** (Wan2.1's for A14B, the Wan2.2 VAE for TI2V-5B) stays on the GPU in fp32.
- **The transformers** start on the CPU on one GPU (``init_on_cpu``, cleared by ``--dit_fsdp``,
  ``--t5_fsdp`` or Ulysses). A14B's ``_prepare_model_for_timestep`` runs whenever
  ``--offload_model`` is set or they started on the CPU: at the first step the inactive expert goes
  to the CPU (if on the GPU) and the active one to the GPU (if on the CPU); at the boundary (the
  first step with ``t < boundary·1000``, when the low-noise expert runs at all) the high-noise
  expert goes out and the low-noise one comes in, both over the host link; with ``--offload_model``
  both go to the CPU after sampling. TI2V-5B's one transformer moves to the GPU before the loop
  when it started on the CPU (or with offload) and back after it with offload.
- **``--convert_model_dtype``** casts the transformers' parameters to bf16 (``config.param_dtype``)
  where they are not FSDP-sharded (the official code ignores it under ``--dit_fsdp``; here that is
  an error): the implementation profile :data:`CONVERTED` (bf16 weights, the rest as ``official``).
  Without it the checkpoints load in fp32, as Wan2.1's.
- **Ulysses** (``--ulysses_size`` = the world size; no ring attention in Wan2.2) and **FSDP**
  (``--dit_fsdp``) as Wan2.1, per expert; each expert's forwards carry their own collectives.
- No CLIP; the latent stays on the GPU and guidance and the scheduler run there.

Memory per GPU, phase by phase: the VAE's weights always; the transformers' from the start unless
they started on the CPU; while sampling one expert when experts are swapped (offload or started on
the CPU), both otherwise; after sampling none with offload, else what sampling held; umT5 as
Wan2.1; each phase's activation peak (the transformer's at the rank's tokens, plus the residual
stream, the text context and, with one timestep per token, the per-token modulation every block
reads, added to the peak of the blocks' sub-modules). TI2V-5B runs text-to-video by default (its
README command); ``image=True`` (:data:`WAN2_2_IMAGE`) adds the input image's one-frame encode.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs
import sympy
from attrs import frozen

from llm_perf_opt.deployment.memory import activation_peaks, fsdp_gathered_bytes, weight_bytes
from llm_perf_opt.deployment.schedule import RunMemory, Schedule, ScheduleBuilder, SequenceShard, StageShard
from llm_perf_opt.deployment.value import SINGLE_GPU, Deployment, Parallelism
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.collectives import tokens_per_rank
from llm_perf_opt.hardware.roofline import maximum
from llm_perf_opt.symbolic.dtypes import BF16, FP32
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.symbolic.symbols import B, L
from llm_perf_opt.wan2_1.geometry import VAE_TEMPORAL_STRIDE
from llm_perf_opt.wan2_1.implementation import OFFICIAL, Implementation, WeightRole, get_implementation
from llm_perf_opt.wan2_1.limits import check_gpu_count
from llm_perf_opt.wan2_1.run import (
    PATCH_EMBEDDING_CLASS,
    RESIDENT_STREAM_TENSORS,
    SCHEDULER,
    SELF_ATTENTION_CLASS,
    TEXT_ENCODER,
    VAE,
    WAN2_1,
    add_text_encoder_loads,
    add_transformer_loads,
    check_no_whatif_methods,
    vae_pass_peak,
)
from llm_perf_opt.wan2_2.geometry import size_multiple, video_tokens
from llm_perf_opt.wan2_2.pipeline import PIPELINE_ID, pipeline_key, pipeline_tree
from llm_perf_opt.wan2_2.variants import VARIANTS, Wan22Variant, get_variant

__all__ = [
    "CONVERTED",
    "EXPERT_STAGES",
    "STAGES",
    "WAN2_2",
    "WAN2_2_A14B",
    "WAN2_2_IMAGE",
    "Wan22Family",
    "default_parallelism",
    "family_for",
    "transformer_ids",
]

DIFFUSION_STAGE: Final = "diffusion"
"""The tree stage of every transformer module (both experts'); the sequence shard applies to it."""
STAGES: Final = ("text_encoder", "vae_encode", "diffusion", "scheduler", "vae_decode")
"""TI2V-5B's stages, in the order they run; their seconds add up to the total."""
EXPERT_STAGES: Final = (
    "text_encoder",
    "vae_encode",
    "high_noise_model",
    "low_noise_model",
    "scheduler",
    "vae_decode",
)
"""A14B's stages: the sampling loop split by expert."""
SWITCH_COPIES: Final = 2
"""At the boundary one expert leaves the GPU and the other arrives: two expert-sized copies."""

CONVERTED: Final = attrs.evolve(
    OFFICIAL,
    description=(
        "Wan-Video/Wan2.2 with --convert_model_dtype: bf16 transformer weights (model.to(param_dtype)), "
        "otherwise as official: autocast bf16, fp32 residual stream, float64 rotary embedding"
    ),
    weight_dtypes=MappingProxyType(dict.fromkeys(WeightRole, BF16)),
)
"""The official implementation with ``--convert_model_dtype``: every transformer parameter in bf16.
It keeps the name ``official`` (what the variants' ``timestep_per_token`` names); its bytes are not
checked against a reference (the FLOPs do not depend on it)."""
MODULATION_CHUNKS: Final = 6
"""``time_projection`` makes six modulation vectors per token (``e0``: ``[B, L, 6, D]``)."""


def transformer_ids(variant: Wan22Variant) -> tuple[str, ...]:
    """The ids of the variant's transformers in the pipeline tree, in the order they run."""
    return variant.experts if variant.experts is not None else ("diffusion",)


def default_parallelism(variant: Wan22Variant, gpus: int) -> Parallelism:
    """The README's multi-GPU recipe: ``--dit_fsdp --t5_fsdp --ulysses_size gpus``; one GPU alone."""
    if gpus == 1:
        return SINGLE_GPU
    return Parallelism(ulysses=gpus, fsdp=True)


def _check_split(variant: Wan22Variant, parallelism: Parallelism) -> None:
    """Ulysses over every GPU (``--ulysses_size`` = world size; Wan2.2 has no ring attention),
    dividing the heads."""
    if parallelism.ring > 1:
        raise LlmPerfOptError(
            f"ring: Wan2.2's generate.py has no ring attention; got ring={parallelism.ring} "
            f"(accepted: 1, with ulysses = gpus)"
        )
    heads, ulysses = variant.transformer.num_heads, parallelism.ulysses
    if heads % ulysses:
        divisors = [d for d in range(1, heads + 1) if heads % d == 0]
        raise LlmPerfOptError(
            f"ulysses: {heads} attention heads cannot be split {ulysses} ways; accepted Ulysses "
            f"degrees (= gpus): {', '.join(map(str, divisors))}"
        )


def _subtree(tree: ModuleTree, node_id: str) -> set[str]:
    prefix = f"{node_id}."
    return {node.id for node in tree if node.id == node_id or node.id.startswith(prefix)}


def _sequence_shard(tree: ModuleTree, variant: Wan22Variant, world: int) -> SequenceShard:
    """Each transformer's root own ops and patch embedding are replicated; every self-attention
    holds the sequence-parallel attention (as Wan2.1's, for each expert)."""
    roots = set(transformer_ids(variant))
    replicated = roots | {
        node.id for node in tree if node.class_name == PATCH_EMBEDDING_CLASS and node.parent_id in roots
    }
    attention = {node.id for node in tree if node.class_name == SELF_ATTENTION_CLASS}
    return SequenceShard(
        world, video_tokens(variant.transformer), frozenset(replicated), frozenset(attention)
    )


def _started_on_cpu(deployment: Deployment) -> bool:
    """``init_on_cpu``: the official default, cleared by FSDP of either model or Ulysses."""
    parallelism = deployment.parallelism
    return not (parallelism.fsdp or deployment.text_encoder_fsdp or parallelism.ulysses > 1)


@frozen(eq=False)
class Wan22Family:
    """Wan2.2's run rules (see the module docstring): :data:`WAN2_2_A14B` for the two-expert
    variants, :data:`WAN2_2` for TI2V-5B (the 32-pixel grid)."""

    name: str
    stages: tuple[str, ...]
    size_multiple: int
    experts: bool
    frame_stride: int = VAE_TEMPORAL_STRIDE
    image: bool = False
    """TI2V-5B's image-to-video run (``--image``): its input image VAE-encoded once, one frame."""

    def deployment(
        self,
        variant: str | Wan22Variant,
        *,
        implementation: str | Implementation | None = None,
        gpus: int = 1,
        parallelism: Parallelism | None = None,
        convert_model_dtype: bool = False,
        image: bool = False,
        **options: Any,
    ) -> Deployment:
        """A validated :class:`Deployment` with ``generate.py``'s defaults filled: one GPU with
        ``--offload_model True``, several with ``--dit_fsdp --t5_fsdp --ulysses_size gpus`` and no
        offload; the official implementation unless ``implementation`` names one;
        ``convert_model_dtype`` is ``--convert_model_dtype`` (the official profile only); ``image``
        runs TI2V-5B's image-to-video mode (``--image``; :data:`WAN2_2_IMAGE`); the other
        ``options`` are Wan2.1's builder's (``accelerator``, ``offload``, ``t5_cpu`` …)."""
        record = variant if isinstance(variant, Wan22Variant) else get_variant(variant)
        gpus = check_gpu_count(gpus)
        if parallelism is None:
            parallelism = default_parallelism(record, gpus)
        if isinstance(parallelism, Parallelism):
            _check_split(record, parallelism)
        for name, value in (("convert_model_dtype", convert_model_dtype), ("image", image)):
            if not isinstance(value, bool):
                raise LlmPerfOptError(f"{name}: must be true or false, got {value!r}")
        if image and record.transformer.model_type != "ti2v":
            raise LlmPerfOptError(
                "image: only ti2v-5b takes an optional input image, got image=True for "
                f"{record.model_variant}"
            )
        profile = get_implementation("official" if implementation is None else implementation)
        if convert_model_dtype:
            if profile is not OFFICIAL:
                raise LlmPerfOptError(
                    f"convert_model_dtype: converts the official checkpoints' fp32 weights; got "
                    f"implementation={profile.name!r} (accepted: official)"
                )
            if isinstance(parallelism, Parallelism) and parallelism.fsdp:
                raise LlmPerfOptError(
                    "convert_model_dtype: generate.py converts only unsharded transformers; got it with "
                    "--dit_fsdp (accepted: one of them)"
                )
            profile = CONVERTED
        base = WAN2_1.deployment(
            record.transformer, implementation=profile, gpus=gpus, parallelism=parallelism, **options
        )
        return attrs.evolve(base, family=WAN2_2_IMAGE if image else self, variant=record)

    def check(self, deployment: Deployment) -> None:
        variant = deployment.variant
        if not isinstance(variant, Wan22Variant) or (variant.experts is not None) != self.experts:
            raise LlmPerfOptError(
                f"variant: expected a Wan2.2 {'A14B' if self.experts else 'TI2V-5B'} variant record, "
                f"got {getattr(variant, 'model_variant', variant)!r}"
            )
        check_no_whatif_methods(deployment)
        _check_split(variant, deployment.parallelism)
        if deployment.offload == "group" and deployment.gpus > 1:
            raise LlmPerfOptError(
                f"offload: group offloading streams one GPU's weights; got offload='group' with "
                f"gpus={deployment.gpus} (accepted: none or model on several GPUs)"
            )

    def pipeline_tree(self, deployment: Deployment) -> ModuleTree:
        return pipeline_tree(deployment.variant, deployment.implementation, deployment.guidance, self.image)

    def tree_key(self, deployment: Deployment) -> str:
        return pipeline_key(deployment.variant, deployment.implementation, deployment.guidance, self.image)

    def describe(self, deployment: Deployment) -> str:
        extra = [
            flag
            for flag, on in (
                ("--convert_model_dtype", deployment.implementation is CONVERTED),
                ("--image", self.image),
            )
            if on
        ]
        flags, kernel = WAN2_1.describe(deployment).rsplit(" (", 1)
        return " ".join((flags, *extra)) + f" ({kernel}"

    def schedule(self, tree: ModuleTree, deployment: Deployment) -> Schedule:
        variant: Wan22Variant = deployment.variant
        builder = ScheduleBuilder()
        world = deployment.parallelism.world_size
        ids = transformer_ids(variant)
        for transformer in ids:
            add_transformer_loads(builder, tree, transformer, deployment, video_tokens(variant.transformer))
        add_text_encoder_loads(builder, tree, deployment)

        held = sympy.Integer(_held_bytes(tree, deployment, ids[0]))
        offload = deployment.offload == "model"
        on_cpu = _started_on_cpu(deployment)
        if deployment.offload == "group":
            for transformer in ids:
                node = tree[transformer]
                stream = node.calls * weight_bytes(tree, transformer)
                builder.add(node, "diffusion.group_offload_stream", stream, "host", how="overlap_total")
        elif len(ids) == 2 and (offload or on_cpu):
            high, low = tree[ids[0]], tree[ids[1]]
            if on_cpu:
                builder.add(high, "diffusion.to_gpu", held, "host")
            else:
                builder.add(high, "diffusion.expert_to_cpu", held, "host")
            builder.add(
                low, "diffusion.expert_switch", SWITCH_COPIES * held * sympy.Min(1, low.calls), "host"
            )
            if offload:
                builder.add(low, "diffusion.to_cpu", held, "host")
        elif len(ids) == 1:
            node = tree[ids[0]]
            if on_cpu:
                builder.add(node, "diffusion.to_gpu", held, "host")
            if offload:
                builder.add(node, "diffusion.to_cpu", held, "host")
        if deployment.text_encoder_cpu:
            builder.run_on_host(_subtree(tree, TEXT_ENCODER))
        return builder.build(StageShard(DIFFUSION_STAGE, _sequence_shard(tree, variant, world)))

    def stage_seconds(
        self, seconds: Mapping[str, sympy.Expr], own: Mapping[str, sympy.Expr]
    ) -> dict[str, sympy.Expr]:
        transformers = {
            stage: seconds[stage]
            for stage in self.stages
            if stage not in ("text_encoder", "vae_encode", "scheduler", "vae_decode")
        }
        return {
            "text_encoder": seconds[TEXT_ENCODER],
            "vae_encode": seconds["vae.encoder"] + seconds["vae.conv1"],
            **transformers,
            "scheduler": seconds[SCHEDULER] + own[PIPELINE_ID],
            "vae_decode": seconds["vae.conv2"] + seconds["vae.decoder"] + own[VAE],
        }

    def memory(self, tree: ModuleTree, deployment: Deployment) -> RunMemory:
        return _memory(tree, deployment.shape, deployment)


def _held_bytes(tree: ModuleTree, deployment: Deployment, transformer: str) -> int:
    """Bytes of one transformer's weights as a GPU holds them: whole, or its FSDP shard."""
    total = weight_bytes(tree, transformer)
    return math.ceil(total / deployment.gpus) if deployment.parallelism.fsdp else total


def _per_token_modulation_bytes(
    variant: Wan22Variant, implementation: Implementation, world: int
) -> sympy.Expr:
    """What a per-token timestep keeps through the blocks (``wan/modules/model.py`` ``WanModel.forward``
    with ``t`` of shape ``[B, L]``): ``e`` ``[B, L, D]`` and ``e0`` ``[B, L, 6, D]`` in fp32 for the
    whole sequence (``sp_dit_forward`` chunks them by views, so every rank keeps them whole), and
    each block's ``modulation + e0`` ``[B, L/P, 6, D]`` fp32 while it runs; nothing for one
    timestep per sample."""
    transformer = variant.transformer
    if implementation.name not in transformer.timestep_per_token:
        return sympy.Integer(0)
    rank_tokens = tokens_per_rank(video_tokens(transformer), world)
    per_token = transformer.dim * FP32.size_bytes
    return B * per_token * ((MODULATION_CHUNKS + 1) * world * rank_tokens + MODULATION_CHUNKS * rank_tokens)


def _block_children_peak(tree: ModuleTree, transformer: str, peaks: Mapping[str, sympy.Expr]) -> sympy.Expr:
    """The largest kernel of a block's sub-modules (attention, norms, FFN): what runs while the
    per-token modulation is resident (the block's own modulation add makes it)."""
    block = tree[tree[f"{transformer}.blocks"].children[0]]
    return maximum(*(peaks[child] for child in block.children))


@functools.lru_cache(maxsize=32)
def _memory(tree: ModuleTree, shape: tuple[object, ...], deployment: Deployment) -> RunMemory:
    del shape  # the cache key, with the tree
    variant: Wan22Variant = deployment.variant
    implementation: Implementation = deployment.implementation
    world = deployment.parallelism.world_size
    ids = transformer_ids(variant)
    offload = deployment.offload == "model"
    shard = StageShard(DIFFUSION_STAGE, _sequence_shard(tree, variant, world))
    within = set().union(*(_subtree(tree, t) for t in ids))
    dit_peaks = activation_peaks(tree, shard, within=within)
    t5_peaks = activation_peaks(tree, within=_subtree(tree, TEXT_ENCODER))
    zero = sympy.Integer(0)

    if deployment.offload == "group":
        held, gathered = 0, fsdp_gathered_bytes(tree, ids[0])
    else:
        held = _held_bytes(tree, deployment, ids[0])
        gathered = fsdp_gathered_bytes(tree, ids[0]) if deployment.parallelism.fsdp else 0
    dim = variant.transformer.dim
    rank_tokens = tokens_per_rank(video_tokens(variant.transformer), world)
    stream = RESIDENT_STREAM_TENSORS * B * rank_tokens * dim * implementation.stream_dtype.size_bytes
    context = B * L * dim * implementation.matmul_dtype.size_bytes
    modulation = _per_token_modulation_bytes(variant, implementation, world)
    t5_bytes = weight_bytes(tree, TEXT_ENCODER)
    t5_cpu = deployment.text_encoder_cpu
    t5_weights = 0 if t5_cpu else (-(-t5_bytes // world) if deployment.text_encoder_fsdp else t5_bytes)
    encodes = tree["vae.encoder"].calls != 0
    parts: dict[str, sympy.Expr] = {
        "vae_weights": sympy.Integer(weight_bytes(tree, VAE)),
        "text_encoder_weights": sympy.Integer(t5_weights),
        "text_encoder_gathered": sympy.Integer(
            fsdp_gathered_bytes(tree, TEXT_ENCODER) if deployment.text_encoder_fsdp else 0
        ),
        "text_encoder_activations": zero if t5_cpu else t5_peaks[TEXT_ENCODER],
        **{f"{t}_weights": sympy.Integer(held) for t in ids},
        "diffusion_gathered": sympy.Integer(gathered),
        "diffusion_activations": maximum(
            dit_peaks[ids[0]], modulation + _block_children_peak(tree, ids[0], dit_peaks)
        )
        + stream
        + context,
        "vae_decode_peak": vae_pass_peak(tree, implementation, encode=False),
    }
    if encodes:
        parts["vae_encode_peak"] = vae_pass_peak(tree, implementation, encode=True)
    vae = parts["vae_weights"]
    every = sympy.Integer(held * len(ids))
    swapped = len(ids) == 2 and (offload or _started_on_cpu(deployment))
    early = zero if _started_on_cpu(deployment) else every
    sampling = sympy.Integer(held) if swapped else every
    after = zero if offload else sampling
    t5_after = zero if offload else parts["text_encoder_weights"]
    phases = {
        "text_encoder": vae
        + early
        + parts["text_encoder_weights"]
        + parts["text_encoder_gathered"]
        + parts["text_encoder_activations"],
        "vae_encode": vae + early + t5_after + parts["vae_encode_peak"] if encodes else zero,
        "sampling": vae + t5_after + sampling + parts["diffusion_gathered"] + parts["diffusion_activations"],
        "vae_decode": vae + t5_after + after + parts["vae_decode_peak"],
    }
    return RunMemory(parts=parts, phases=phases)


WAN2_2_A14B: Final = Wan22Family(
    name="wan2.2-a14b",
    stages=EXPERT_STAGES,
    size_multiple=size_multiple(VARIANTS["t2v-a14b"].transformer),
    experts=True,
)
"""Wan2.2's run rules for T2V-A14B and I2V-A14B (two experts, a 16-pixel grid)."""
WAN2_2: Final = Wan22Family(
    name="wan2.2",
    stages=STAGES,
    size_multiple=size_multiple(VARIANTS["ti2v-5b"].transformer),
    experts=False,
)
"""Wan2.2's run rules for TI2V-5B (one transformer, the Wan2.2 VAE's 32-pixel grid)."""


WAN2_2_IMAGE: Final = attrs.evolve(WAN2_2, name="wan2.2-image", image=True)
"""TI2V-5B's image-to-video run: :data:`WAN2_2` with the input image's one-frame encode."""


def family_for(variant: Wan22Variant) -> Wan22Family:
    """The family instance whose rules run ``variant``."""
    return WAN2_2_A14B if variant.experts is not None else WAN2_2
