"""Fused attention kernels and GEMM precisions as data: which device families each kernel runs on,
at which tensor rates its two matrix products run, and whether it writes the score matrix to memory;
the operand bytes and quantisation passes of each GEMM precision; the bytes of each weight storage.

A kernel's time is priced by the roofline (:mod:`.roofline`) from the op's declared cost: the score
product ``QKᵀ`` and the value product ``PV`` are each half of the attention FLOPs
(``4·B·H·Sq·Sk·D`` in all), each at its own peak rate, both at the kernel's efficiency factor
``attention.<kernel>``::

    compute = (flops / 2) / (peak[qk] · η) + (flops / 2) / (peak[pv] · η)

A kernel that materialises the scores (PyTorch's math path) also moves
:data:`MATERIALISED_SCORE_BYTES` per score element through memory, at the element-wise bandwidth.
``bf16`` rates follow the deployment's tensor precision (an fp8 run moves bf16 attention to fp8).

The families are those kernels see (``blackwell-rtx`` is sm120: RTX 5090, RTX PRO 6000), from the
kernels' own build targets as the stack records cite them (``docs/stacks.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError

__all__ = [
    "ATTENTION_KERNELS",
    "GEMM_PRECISIONS",
    "KERNELS",
    "KERNEL_FAMILIES",
    "MATERIALISED_SCORE_BYTES",
    "UPCAST_STORAGES",
    "WEIGHT_STORAGE_BYTES",
    "AttentionKernel",
    "GemmPrecision",
    "get_gemm_precision",
    "get_kernel",
]

KERNEL_FAMILIES: Final = ("ampere", "ada", "hopper", "blackwell", "blackwell-rtx", "cdna3", "cdna4")
"""Device families as attention kernels see them: ``blackwell`` is the data-centre part (sm100/sm103),
``blackwell-rtx`` the workstation and GeForce part (sm120); the rest are the accelerator table's."""

_NVIDIA: Final = ("ampere", "ada", "hopper", "blackwell", "blackwell-rtx")
_AMD: Final = ("cdna3", "cdna4")
_ALL: Final = (*_NVIDIA, *_AMD)

MATERIALISED_SCORE_BYTES: Final = 8
"""Bytes per score element a math-path attention moves: ``QKᵀ`` writes the bf16 scores (2), the
softmax reads and writes them (2 + 2), ``PV`` reads them (2)."""


@frozen
class AttentionKernel:
    """One fused attention kernel.

    Attributes:
        name: the kernel's name (``sage-int8-fp8``), also its factor key ``attention.<name>``.
        families: the kernel families it runs on.
        qk_rate: peak-rate key of the score product (``bf16`` follows the tensor precision).
        pv_rate: peak-rate key of the value product.
        materialises_scores: writes the score matrix to memory (PyTorch's math path).
        description: what it is.
    """

    name: str
    families: tuple[str, ...]
    qk_rate: str = "bf16"
    pv_rate: str = "bf16"
    materialises_scores: bool = False
    description: str = ""

    @property
    def factor_key(self) -> str:
        """Its efficiency factor key."""
        return f"attention.{self.name}"


KERNELS: Final[Mapping[str, AttentionKernel]] = MappingProxyType(
    {
        kernel.name: kernel
        for kernel in (
            AttentionKernel("sdpa", _ALL, description="PyTorch SDPA, its own backend choice"),
            AttentionKernel("fa2", _ALL, description="FlashAttention-2 (Dao-AILab flash-attn 2; CK on ROCm)"),
            AttentionKernel("fa3", ("hopper",), description="FlashAttention-3 (flash_attn_interface)"),
            AttentionKernel("sdpa-math", _ALL, materialises_scores=True, description="PyTorch's math path"),
            AttentionKernel("sdpa-flash", _ALL, description="PyTorch's built-in FlashAttention-2"),
            AttentionKernel("sdpa-efficient", _ALL, description="PyTorch's memory-efficient kernel"),
            AttentionKernel("sdpa-cudnn", _NVIDIA, description="cuDNN fused attention behind SDPA"),
            AttentionKernel("fa3-fp8", ("hopper",), "fp8", "fp8", description="FlashAttention-3, fp8 Q/K/V"),
            AttentionKernel(
                "sgl-fa3", ("ampere", "ada", "hopper"), description="SGLang's FlashAttention-3 port"
            ),
            AttentionKernel("fa4", ("hopper", "blackwell"), description="FlashAttention-4 (CuTe DSL)"),
            AttentionKernel(
                "fa4-fp4", ("blackwell",), "fp4", "bf16", description="FlashAttention-4, NVFP4 Q/K"
            ),
            AttentionKernel(
                "sage-int8-fp16",
                ("ampere", "ada", "hopper", "blackwell-rtx"),
                "int8",
                "fp16",
                description="SageAttention: int8 QKᵀ, fp16 PV",
            ),
            AttentionKernel(
                "sage-int8-fp8",
                ("ada", "hopper", "blackwell-rtx"),
                "int8",
                "fp8",
                description="SageAttention2: int8 QKᵀ, fp8 PV",
            ),
            AttentionKernel(
                "sage3-fp4", ("blackwell-rtx",), "fp4", "fp4", description="SageAttention3: fp4 QKᵀ and PV"
            ),
            AttentionKernel("aiter", _AMD, description="ROCm AITER flash attention"),
            AttentionKernel("aiter-fp8", _AMD, "fp8", "fp8", description="ROCm AITER fp8 attention"),
        )
    }
)
"""Every attention kernel, by name."""

ATTENTION_KERNELS: Final = tuple(KERNELS)
"""Every attention kernel name; each has an efficiency factor key ``attention.<name>``."""


def get_kernel(name: str) -> AttentionKernel:
    """The kernel called ``name``; an unknown name lists the known ones."""
    try:
        return KERNELS[name]
    except (KeyError, TypeError):
        raise LlmPerfOptError(
            f"attention_kernel: unknown kernel {name!r}; accepted: {', '.join(ATTENTION_KERNELS)}"
        ) from None


@frozen
class GemmPrecision:
    """One precision the transformer's linear layers can run at.

    Attributes:
        name: its name (``fp8-per-block``).
        rate: the peak-rate key the GEMM runs at (``bf16`` follows the tensor precision).
        operand_bytes: bytes per activation element the GEMM reads (2 for bf16; 1 for fp8 and int8;
            fp4 formats with their block scales).
        quantise_reads: passes over the bf16 activation that quantise it before the GEMM (0 for
            bf16 math; 1 where the scale is found and the cast made in one kernel — per token,
            per 1×128 group; 2 for one scale per tensor: an amax pass, then the cast).
        storage: the weight storage the GEMM reads (``weight_storage`` of the deployment when it is
            not given).
    """

    name: str
    rate: str
    operand_bytes: float
    quantise_reads: int
    storage: str


GEMM_PRECISIONS: Final[Mapping[str, GemmPrecision]] = MappingProxyType(
    {
        gemm.name: gemm
        for gemm in (
            GemmPrecision("bf16", "bf16", 2, 0, "bf16"),
            GemmPrecision("fp16", "fp16", 2, 0, "fp16"),
            GemmPrecision("fp8-per-tensor", "fp8", 1, 2, "fp8"),
            GemmPrecision("fp8-per-channel", "fp8", 1, 1, "fp8"),
            GemmPrecision("fp8-per-block", "fp8", 1 + 4 / 128, 1, "fp8"),
            GemmPrecision("int8-per-channel", "int8", 1, 1, "int8"),
            GemmPrecision("nvfp4", "fp4", 0.5 + 1 / 16, 1, "nvfp4"),
            GemmPrecision("mxfp4", "fp4", 0.5 + 1 / 32, 1, "mxfp4"),
            GemmPrecision("int4-weight-only", "bf16", 2, 0, "int4"),
        )
    }
)
"""Every GEMM precision, by name: per-tensor fp8 has one scale per tensor, per-channel fp8 and int8
scale weights per output channel and activations per token, per-block fp8 (DeepGEMM) 128×128 weight
blocks and 1×128 activation groups (an fp32 scale per group), NVFP4 16-element blocks with fp8
scales, MXFP4 32-element blocks with e8m0 scales; int4 weight-only dequantises in the kernel and
multiplies in bf16 (Marlin)."""

WEIGHT_STORAGE_BYTES: Final[Mapping[str, float]] = MappingProxyType(
    {
        "fp32": 4,
        "bf16": 2,
        "fp16": 2,
        "fp8": 1,
        "fp8-upcast-bf16": 1,
        "int8": 1,
        "nvfp4": 0.5 + 1 / 16,
        "mxfp4": 0.5 + 1 / 32,
        "int4": 0.5 + 2 / 128,
        "gguf": 0.5 + 2 / 32,
    }
)
"""Bytes per weight element of each storage (block scales included: int4 with a bf16 scale per 128,
GGUF as its 4-bit ``Q4_0`` blocks of 32 with an fp16 scale). ``fp8-upcast-bf16`` holds fp8 and
casts each weight to bf16 before its use (diffusers' layerwise casting): the GEMM reads bf16, and
each use adds a cast pass (read 1 byte, write 2)."""

UPCAST_STORAGES: Final = ("fp8-upcast-bf16",)
"""Storages cast to bf16 before each use."""


def get_gemm_precision(name: str) -> GemmPrecision:
    """The GEMM precision called ``name``; an unknown name lists the known ones."""
    try:
        return GEMM_PRECISIONS[name]
    except (KeyError, TypeError):
        raise LlmPerfOptError(
            f"gemm_precision: unknown GEMM precision {name!r}; accepted: {', '.join(GEMM_PRECISIONS)}"
        ) from None
