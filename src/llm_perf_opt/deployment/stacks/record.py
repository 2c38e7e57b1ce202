"""What an inference stack does, as one frozen record per stack with a source on every choice.

A stack is the software a Wan2.1 run goes through (the official scripts, Diffusers, xDiT, FastVideo,
LightX2V, SGLang diffusion, DiffSynth-Studio, FlashDreams). Each of its performance-relevant choices
is a :class:`Choice`: the value the stack uses when the user changes nothing (``default``), the
values it can be switched to (``options``) and where that was read (``source``: repository file
and revision, or documentation page). The vocabularies below name every accepted value once; the
record rejects any other value with a message naming the field, the value and what is accepted.

The record holds facts, not prices: mapping a stack onto the time model (kernel efficiencies,
fused byte counts, offload transfers) is the deployment layer's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from attrs import Attribute, field, frozen

from llm_perf_opt.validation import FieldError

__all__ = [
    "ATTENTION_KERNELS",
    "CFG_EXECUTIONS",
    "CFG_PARALLEL",
    "CUDA_GRAPHS",
    "DISTILLATIONS",
    "FUSED_CHAINS",
    "FUSION_MODES",
    "GEMM_PRECISIONS",
    "GEMM_RATE_KEYS",
    "KERNEL_FAMILIES",
    "KERNEL_FAMILIES_OF",
    "OFFLOADS",
    "SEQUENCE_PARALLEL",
    "SM120_DEVICES",
    "SPARSE_ATTENTIONS",
    "STEP_CACHES",
    "TEXT_ENCODER_PLACEMENTS",
    "VAE_DECODES",
    "WEIGHT_SHARDINGS",
    "WEIGHT_STORAGES",
    "Chains",
    "Choice",
    "RunDefaults",
    "Stack",
    "kernel_available",
    "kernel_family",
]

KERNEL_FAMILIES: Final = ("ampere", "ada", "hopper", "blackwell", "blackwell-rtx", "cdna3", "cdna4")
"""Device families as attention kernels see them: ``blackwell`` is the data-centre part (sm100/sm103:
B200, B300, GB200, GB300), ``blackwell-rtx`` the workstation and GeForce part (sm120: RTX 5090, RTX
PRO 6000), which most kernels treat differently; the rest are the accelerator table's families."""

_NVIDIA: Final = ("ampere", "ada", "hopper", "blackwell", "blackwell-rtx")
_AMD: Final = ("cdna3", "cdna4")
_ALL: Final = (*_NVIDIA, *_AMD)

KERNEL_FAMILIES_OF: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "sdpa-math": _ALL,  # PyTorch's reference path: scores materialised in memory
        "sdpa": _ALL,  # PyTorch picks among its own flash / efficient / cuDNN / math backends
        "sdpa-flash": _ALL,  # PyTorch's built-in FlashAttention-2 (aotriton on ROCm)
        "sdpa-efficient": _ALL,  # PyTorch's memory-efficient (xformers-derived) kernel
        "sdpa-cudnn": _NVIDIA,  # cuDNN fused attention behind SDPA
        "fa2": _ALL,  # Dao-AILab flash-attn 2 (CK build on ROCm)
        "fa3": ("hopper",),  # flash-attn 3, Hopper only (flash_attn_interface)
        "fa3-fp8": ("hopper",),  # flash-attn 3 with fp8 Q/K/V
        "sgl-fa3": ("ampere", "ada", "hopper"),  # SGLang's FA3 port, built for sm80/sm86/sm89/sm90a
        "fa4": ("hopper", "blackwell"),  # flash-attn 4 (CuTe DSL), sm90 and sm100
        "fa4-fp4": ("blackwell",),  # flash-attn 4 with NVFP4 Q/K (sm100a/sm103a)
        "sage-int8-fp16": ("ampere", "ada", "hopper", "blackwell-rtx"),  # SageAttention: int8 QKᵀ, fp16 PV
        "sage-int8-fp8": ("ada", "hopper", "blackwell-rtx"),  # SageAttention2: int8 QKᵀ, fp8 PV
        "sage3-fp4": ("blackwell-rtx",),  # SageAttention3: fp4 microscaled QKᵀ and PV
        "aiter": _AMD,  # ROCm AITER flash attention
        "aiter-fp8": _AMD,  # ROCm AITER fp8 attention
    }
)
"""Every attention kernel a stack can select, with the device families it runs on (from the
kernels' own build targets as the stacks cite them; see ``docs/stacks.md``)."""

ATTENTION_KERNELS: Final = tuple(KERNEL_FAMILIES_OF)

GEMM_RATE_KEYS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "bf16": "bf16",
        "fp16": "fp16",
        "fp8-per-tensor": "fp8",  # one scale per weight and per activation tensor
        "fp8-per-channel": "fp8",  # per output channel weights, per token activations
        "fp8-per-block": "fp8",  # 128×128 weight blocks, 1×128 activation groups (DeepGEMM)
        "int8-per-channel": "int8",
        "nvfp4": "fp4",  # 16-element blocks with fp8 scales (Blackwell)
        "mxfp4": "fp4",  # 32-element blocks with e8m0 scales (OCP MX)
        "int4-weight-only": "bf16",  # int4 weights dequantised in the kernel, bf16 math (Marlin)
    }
)
"""Every GEMM precision a stack can run its linear layers at, with the peak-rate key of the
accelerator table it runs at (a device without that key cannot run it)."""

GEMM_PRECISIONS: Final = tuple(GEMM_RATE_KEYS)

WEIGHT_STORAGES: Final = (
    "fp32",
    "bf16",
    "fp16",
    "fp8",  # fp8 weights consumed as such by an fp8 GEMM
    "fp8-upcast-bf16",  # fp8 in memory, cast to bf16 before each use (layerwise casting)
    "int8",
    "nvfp4",
    "mxfp4",
    "int4",
    "gguf",
)
"""How the transformer's weights sit in device memory; ``-upcast-`` values are cast per use."""

FUSION_MODES: Final = (
    "eager",  # one kernel per PyTorch op
    "fused-kernels",  # hand-written fused kernels for the chains in ``fused_chains``
    "torch-compile",  # Inductor fuses element-wise chains between matmuls
    "fused-kernels+torch-compile",
)
"""How the element-wise work between the matmuls is executed."""

FUSED_CHAINS: Final = (
    "modulation",  # x·(1 + scale) + shift in one kernel, the norm before it separate
    "rmsnorm",  # an RMSNorm (square, mean, rsqrt, scale, weight) in one kernel
    "norm-modulation",  # LayerNorm then x·(1 + scale) + shift, one read and one write
    "gate-residual",  # residual + gate·y
    "gate-residual-norm-modulation",  # the two above in one kernel
    "qk-rmsnorm",  # RMSNorm of q and k in one kernel
    "rotary",  # 3-D rotary embedding of q and k in one kernel
    "qk-rmsnorm-rotary",  # the two above in one kernel
)
"""Element-wise chains a stack's own kernels fuse (each reads its inputs and writes once)."""

CUDA_GRAPHS: Final = ("off", "on")
OFFLOADS: Final = (
    "none",
    "model-per-stage",  # whole models moved to the host between stages (--offload_model)
    "component",  # a component's weights live on the host and move in whole before it runs
    "group-streamed",  # groups of layers streamed from the host, overlapped with compute
    "layerwise-streamed",  # one block (or phase) at a time, prefetched on a side stream
    "sequential",  # every layer fetched from the host when called, not overlapped
    "fsdp-cpu",  # FSDP shards kept on the host, all-gathered per layer
    "disk",  # weights streamed from disk
)
"""Where the transformer's weights live between uses and how they reach the device."""

SEQUENCE_PARALLEL: Final = ("none", "ulysses", "ring", "usp")
"""Sequence parallelism of the transformer: ``usp`` is Ulysses × ring (xDiT's unified scheme)."""
CFG_PARALLEL: Final = ("off", "on")
"""Classifier-free guidance's two branches on two device groups at once (degree 2)."""
WEIGHT_SHARDINGS: Final = ("none", "fsdp", "hsdp", "tensor-parallel")
VAE_DECODES: Final = ("whole", "tiled", "parallel", "parallel-tiled")
"""How the VAE decodes: on one device at once, in spatial tiles, split across devices, or both."""
TEXT_ENCODER_PLACEMENTS: Final = (
    "gpu",
    "gpu-offloaded",  # on the host between uses, moved to the device to run
    "cpu",  # runs on the host
    "fsdp",  # sharded across the devices
    "tensor-parallel",  # split across the sequence-parallel group as tensor parallelism
)
CFG_EXECUTIONS: Final = (
    "two-calls",  # conditional and unconditional forwards one after the other, batch 1 each
    "batched",  # both in one batch-2 forward
    "parallel",  # on two device groups (see ``cfg_parallel``)
)
STEP_CACHES: Final = (
    "none",
    "teacache",  # skip whole forwards while an accumulated L1 distance of modulated inputs is small
    "magcache",  # skip forwards by the magnitude ratio of residuals
    "fbcache",  # first-block cache: run the first block, reuse the rest when its residual barely moves
    "taylorseer",  # extrapolate skipped steps' features with a Taylor series
    "dbcache",  # cache-dit's dual-block cache
    "adacache",
    "easycache",
    "custom",
)
"""Step-caching schemes a stack can apply (each reuses whole or partial forwards across steps)."""
SPARSE_ATTENTIONS: Final = (
    "none",
    "svg",  # Sparse-VideoGen: spatial / temporal head patterns
    "svg2",  # Sparse-VideoGen2: semantic-aware permutation
    "radial",  # radial attention: energy-decay static mask
    "vsa",  # video sparse attention: trainable top-k blocks
    "sta",  # sliding tile attention
    "sparge",  # SpargeAttn: training-free block skipping
    "nbhd",  # neighbourhood attention
    "sla",  # sparse-linear attention
    "vmoba",  # video mixture of block attention
    "draft",  # draft attention
    "flex-block",  # block-sparse FlexAttention
)
"""Sparse-attention schemes a stack can apply to the self-attention."""
DISTILLATIONS: Final = (
    "none",
    "dmd",  # distribution-matching distilled checkpoints: a few steps, no CFG
    "step-distill-lora",  # a LoRA that turns the base checkpoint into a few-step model
    "cfg-distill",  # guidance folded into the weights: one forward per step
    "self-forcing",  # autoregressive few-step student
    "causvid",
)


def _text() -> Any:
    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not value.strip():
            raise FieldError((attribute.name,), f"must be a non-empty string, got {value!r}")

    return check


@frozen(kw_only=True)
class Choice:
    """One choice a stack makes, with the alternatives it offers and where that was read.

    Attributes:
        default: the value used on one GPU when the user changes nothing; one of ``options``.
        options: every value the stack can be switched to (the default included), no repeats.
        source: repository file and revision, or documentation page, the choice was read from.
        note: what the value means for this stack, or what was uncertain.
        multi_gpu_default: the value the stack picks by itself when run on several GPUs, where it
            differs from ``default``; one of ``options``.
    """

    default: str = field(validator=_text())
    options: tuple[str, ...] = field(converter=tuple)
    source: str = field(validator=_text())
    note: str = ""
    multi_gpu_default: str | None = None

    def default_for(self, gpus: int) -> str:
        """The value used on ``gpus`` devices when the user changes nothing."""
        if gpus > 1 and self.multi_gpu_default is not None:
            return self.multi_gpu_default
        return self.default

    @options.validator
    def _options(self, attribute: Attribute[Any], value: tuple[str, ...]) -> None:
        if not value:
            raise FieldError((attribute.name,), "must list at least one value")
        repeated = sorted({item for item in value if value.count(item) > 1})
        if repeated:
            raise FieldError((attribute.name,), f"lists {repeated[0]!r} twice; expected distinct values")
        accepted = ", ".join(value)
        if self.default not in value:
            raise FieldError(("default",), f"must be one of options ({accepted}); got {self.default!r}")
        if self.multi_gpu_default is not None and self.multi_gpu_default not in value:
            raise FieldError(
                ("multi_gpu_default",), f"must be one of options ({accepted}); got {self.multi_gpu_default!r}"
            )


@frozen(kw_only=True)
class Chains:
    """The element-wise chains a stack's default path fuses, with the source they were read from.

    Attributes:
        chains: names from :data:`FUSED_CHAINS`, no repeats; empty when nothing is fused.
        source: repository file and revision the fused kernels were read from.
        note: how the fusion is done (Triton kernel, CUDA kernel, Inductor).
    """

    chains: tuple[str, ...] = field(converter=tuple)
    source: str = field(validator=_text())
    note: str = ""

    @chains.validator
    def _chains(self, attribute: Attribute[Any], value: tuple[str, ...]) -> None:
        for index, chain in enumerate(value):
            if chain not in FUSED_CHAINS:
                raise FieldError(
                    (attribute.name, str(index)),
                    f"unknown chain {chain!r}; accepted: {', '.join(FUSED_CHAINS)}",
                )
            if value.index(chain) != index:
                raise FieldError((attribute.name, str(index)), f"lists {chain!r} twice")


@frozen(kw_only=True)
class RunDefaults:
    """The sampling a stack runs for Wan2.1 when the user changes nothing.

    Attributes:
        t2v_steps: denoising steps for text-to-video.
        i2v_steps: denoising steps for image-to-video.
        guidance: whether classifier-free guidance is on by default (two forwards per step).
        source: where the defaults were read.
        distilled_steps: steps of the stack's own distilled few-step Wan2.1 models (which run
            without guidance), ``None`` when it ships none.
    """

    t2v_steps: int = field()
    i2v_steps: int = field()
    guidance: bool
    source: str = field(validator=_text())
    distilled_steps: int | None = field(default=None)

    @t2v_steps.validator
    @i2v_steps.validator
    def _steps(self, attribute: Attribute[Any], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FieldError((attribute.name,), f"must be an integer ≥ 1, got {value!r}")

    @distilled_steps.validator
    def _distilled(self, attribute: Attribute[Any], value: int | None) -> None:
        if value is not None:
            self._steps(attribute, value)


def _vocabulary(accepted: tuple[str, ...]) -> Any:
    """A :class:`Choice` whose default and options all come from ``accepted``."""

    def check(_: Any, attribute: Attribute[Any], value: Choice) -> None:
        for index, option in enumerate(value.options):
            if option not in accepted:
                raise FieldError(
                    (attribute.name, "options", str(index)),
                    f"unknown value {option!r}; accepted: {', '.join(accepted)}",
                )

    return check


SM120_DEVICES: Final = ("rtx5090", "rtx-pro-6000-server")
"""Accelerator-table names of the Blackwell devices that are sm120 (``blackwell-rtx`` to kernels)."""


def kernel_family(device_name: str, device_family: str) -> str:
    """The kernel family of an accelerator-table device: its family, except sm120 Blackwell boards."""
    if device_family == "blackwell" and device_name in SM120_DEVICES:
        return "blackwell-rtx"
    if device_family not in KERNEL_FAMILIES:
        raise FieldError(
            ("family",), f"unknown device family {device_family!r}; accepted: {', '.join(KERNEL_FAMILIES)}"
        )
    return device_family


def kernel_available(kernel: str, family: str) -> bool:
    """Whether the attention ``kernel`` runs on devices of ``family`` (both from the vocabularies)."""
    return family in KERNEL_FAMILIES_OF.get(kernel, ())


def _frozen_attention(value: Mapping[str, Choice]) -> Mapping[str, Choice]:
    return MappingProxyType(dict(value))


def _attention(_: Any, attribute: Attribute[Any], value: Mapping[str, Choice]) -> None:
    if not value:
        raise FieldError((attribute.name,), f"must name at least one family of {', '.join(KERNEL_FAMILIES)}")
    for family, choice in value.items():
        if family not in KERNEL_FAMILIES:
            raise FieldError(
                (attribute.name, family), f"unknown device family; accepted: {', '.join(KERNEL_FAMILIES)}"
            )
        for index, kernel in enumerate(choice.options):
            path = (attribute.name, family, "options", str(index))
            if kernel not in KERNEL_FAMILIES_OF:
                raise FieldError(path, f"unknown kernel {kernel!r}; accepted: {', '.join(ATTENTION_KERNELS)}")
            if not kernel_available(kernel, family):
                runs_on = ", ".join(KERNEL_FAMILIES_OF[kernel])
                raise FieldError(path, f"{kernel} does not run on {family}; it runs on {runs_on}")


@frozen(kw_only=True, eq=False)
class Stack:
    """One inference stack's choices for Wan2.1, each with its source.

    Attributes:
        name: the preset's id (``lightx2v``).
        display_name: the project's own name (``LightX2V``).
        repository: where the code lives (``ModelTC/LightX2V``).
        revision: the commit (and its date) or release the facts were read from.
        summary: one paragraph on what the stack changes against the official code.
        attention: the attention kernel per device family (keys from :data:`KERNEL_FAMILIES`);
            families the stack does not support are absent.
        gemm_precision: precision of the transformer's linear layers (:data:`GEMM_PRECISIONS`).
        weight_storage: how the transformer's weights are held (:data:`WEIGHT_STORAGES`).
        fusion: how element-wise work runs (:data:`FUSION_MODES`).
        fused_chains: the chains the default path fuses with the stack's own kernels.
        cuda_graphs: whether a denoising step is replayed from a CUDA graph (:data:`CUDA_GRAPHS`).
        offload: where weights live between uses (:data:`OFFLOADS`).
        sequence_parallel: the transformer's sequence parallelism (:data:`SEQUENCE_PARALLEL`).
        cfg_parallel: guidance branches on two device groups (:data:`CFG_PARALLEL`).
        weight_sharding: weight sharding across devices (:data:`WEIGHT_SHARDINGS`).
        vae_decode: how the VAE decodes (:data:`VAE_DECODES`).
        text_encoder: where the text encoder runs (:data:`TEXT_ENCODER_PLACEMENTS`).
        cfg_execution: how the two guidance forwards run (:data:`CFG_EXECUTIONS`).
        step_cache: step caching (:data:`STEP_CACHES`).
        sparse_attention: sparse attention (:data:`SPARSE_ATTENTIONS`).
        distillation: few-step models the stack ships or runs (:data:`DISTILLATIONS`).
        run_defaults: the sampling it runs by default.
        notes: what else matters for its speed and was not captured above.
    """

    name: str = field(validator=_text())
    display_name: str = field(validator=_text())
    repository: str = field(validator=_text())
    revision: str = field(validator=_text())
    summary: str = field(validator=_text())
    attention: Mapping[str, Choice] = field(converter=_frozen_attention, validator=_attention)
    gemm_precision: Choice = field(validator=_vocabulary(GEMM_PRECISIONS))
    weight_storage: Choice = field(validator=_vocabulary(WEIGHT_STORAGES))
    fusion: Choice = field(validator=_vocabulary(FUSION_MODES))
    fused_chains: Chains
    cuda_graphs: Choice = field(validator=_vocabulary(CUDA_GRAPHS))
    offload: Choice = field(validator=_vocabulary(OFFLOADS))
    sequence_parallel: Choice = field(validator=_vocabulary(SEQUENCE_PARALLEL))
    cfg_parallel: Choice = field(validator=_vocabulary(CFG_PARALLEL))
    weight_sharding: Choice = field(validator=_vocabulary(WEIGHT_SHARDINGS))
    vae_decode: Choice = field(validator=_vocabulary(VAE_DECODES))
    text_encoder: Choice = field(validator=_vocabulary(TEXT_ENCODER_PLACEMENTS))
    cfg_execution: Choice = field(validator=_vocabulary(CFG_EXECUTIONS))
    step_cache: Choice = field(validator=_vocabulary(STEP_CACHES))
    sparse_attention: Choice = field(validator=_vocabulary(SPARSE_ATTENTIONS))
    distillation: Choice = field(validator=_vocabulary(DISTILLATIONS))
    run_defaults: RunDefaults
    notes: str = ""

    @property
    def families(self) -> tuple[str, ...]:
        """The device families the stack has an attention kernel for, in :data:`KERNEL_FAMILIES` order."""
        return tuple(family for family in KERNEL_FAMILIES if family in self.attention)

    def attention_kernel(self, family: str) -> str:
        """The default attention kernel on ``family``; raises naming the families the stack supports."""
        choice = self.attention.get(family)
        if choice is None:
            raise FieldError(
                ("attention",),
                f"{self.name} has no attention kernel for {family!r}; families: {', '.join(self.families)}",
            )
        return choice.default
