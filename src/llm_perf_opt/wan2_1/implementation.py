"""Implementation profiles: how a real implementation of Wan2.1 holds weights and runs each op.

FLOPs do not depend on the implementation, except where a variant lists the profiles that embed one
timestep per token (``WanVariant.timestep_per_token``: Wan2.2 A14B officially, not in diffusers);
bytes do. Two implementations are public and differ
where it matters for memory traffic (``wan/modules/model.py`` and diffusers ``transformer_wan.py``):

- ``official`` (Wan-Video/Wan2.1): the DiT checkpoint is fp32 and is loaded without a dtype, so the
  weights sit in memory as fp32 and ``autocast(bf16)`` re-casts every Linear/Conv weight to bf16 on
  every call (autocast caches casts only for tensors that require grad). The residual stream,
  norms and modulation are fp32; rotary embedding runs in float64 (complex128); the time embedding
  and the head run in fp32 regions.
- ``diffusers`` (``WanTransformer3DModel`` loaded with ``torch_dtype=bfloat16``): bf16 weights
  except ``_keep_in_fp32_modules`` (time embedder, modulation tables, affine layer norms); the
  residual stream is cast back to bf16 after every add; rotary tables are fp32.

Every report names the profile it used.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType
from typing import Final

from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.dtypes import BF16, FP16, FP32, FP64, DType

__all__ = ["DIFFUSERS", "IMPLEMENTATIONS", "OFFICIAL", "Implementation", "WeightRole", "get_implementation"]


class WeightRole(Enum):
    """What a parameter is for, where implementations keep some roles at another dtype."""

    MATMUL = "matmul"
    """Linear and convolution weights and biases."""
    TIME_EMBEDDING = "time_embedding"
    """The timestep MLP (``time_embedding``)."""
    MODULATION = "modulation"
    """The learned modulation tables of blocks and head."""
    NORM = "norm"
    """Affine weights of layer norms."""
    QK_NORM = "qk_norm"
    """Weights of the RMS norms on queries and keys."""
    POSITION = "position"
    """Learned position embeddings (FLF2V ``emb_pos``)."""


@frozen(kw_only=True, eq=False)
class Implementation:
    """Where one implementation keeps its weights and which dtype each class of op runs at.

    Attributes:
        name: profile id, ``official`` or ``diffusers``.
        description: one line a report can quote.
        weight_dtypes: dtype of the weights in memory, per :class:`WeightRole`.
        matmul_dtype: dtype of matrix products and attention inside the blocks.
        fp32_regions: matrix products run under autocast: at ``matmul_dtype``, except in the
            ``autocast(float32)`` regions (time embedding, head), which run in fp32.
        stream_dtype: dtype of the residual stream between blocks and of the modulated norm outputs.
        rope_dtype: dtype of the rotary-embedding arithmetic and tables.
        rope_upcasts: rotary embedding casts q and k to ``rope_dtype``, rotates, and casts back
            (official, complex128), rather than rotating at their own dtype against
            ``rope_dtype`` tables in one pass (diffusers).
        image_encoder_layers: CLIP ViT-H/14 layers run (31 officially: the penultimate layer's output).
        text_encoder_dtype: dtype of the umT5-XXL weights and of its arithmetic (bf16 in both: the
            official ``T5EncoderModel(dtype=torch.bfloat16)`` without autocast; transformers'
            ``UMT5EncoderModel`` loaded with ``torch_dtype=torch.bfloat16`` by the diffusers pipelines,
            whose ``_keep_in_fp32_modules`` (``wo``) applies to fp16 only).
        image_encoder_dtype: dtype of the CLIP ViT-H/14 weights and matrix products (official fp16
            under ``autocast(float16)``; diffusers fp32, as its Wan2.1 image-to-video examples load
            ``CLIPVisionModel`` with ``torch_dtype=torch.float32``).
        image_encoder_transformers: the image encoder is transformers' ``CLIPVisionModel`` (diffusers):
            separate q/k/v projections, positions looked up through an ``nn.Embedding``, and
            ``post_layernorm`` on each image's pooled class token; else the official
            ``VisionTransformer``: one fused ``to_qkv``, the position parameter added directly, no
            post norm on the way to the penultimate layer.
        text_encoder_transformers: umT5 is transformers' ``UMT5EncoderModel`` on its SDPA path
            (diffusers): the position buckets computed inside each attention, the bias its additive
            mask; else the official ``T5Attention``'s einsums around an fp32 softmax.
        vae_dtype: dtype of the VAE's weights and of all its arithmetic (fp32 in both: the official
            ``WanVAE(dtype=torch.float)`` under ``autocast(float32)``, diffusers' ``AutoencoderKLWan``
            loaded in fp32 as its examples do).
        vae_per_sample: the VAE encodes and decodes the videos of a batch one at a time (official
            ``WanVAE.encode``/``decode`` loop over a list), rather than as one batch (diffusers).
        vae_posterior: an encode builds the posterior distribution before its mean is taken
            (diffusers' ``DiagonalGaussianDistribution``: the log-variance clamp and two ``exp``);
            the official ``WanVAE_.encode`` takes the mean directly.
        diffusers_dit: the transformer runs diffusers' ``WanTransformer3DModel`` op sequence: the fp32
            casts around its norms run in the caller's forward, ``torch.nn.RMSNorm`` dispatches to
            the fused CUDA kernel, rotary embedding rotates interleaved pairs against per-position
            tables built once per forward (docs/dit.md); else the official ``WanModel``'s.
    """

    name: str
    description: str
    weight_dtypes: Mapping[WeightRole, DType]
    matmul_dtype: DType
    fp32_regions: bool
    stream_dtype: DType
    rope_dtype: DType
    rope_upcasts: bool
    image_encoder_layers: int
    text_encoder_dtype: DType = BF16
    image_encoder_dtype: DType = FP16
    image_encoder_transformers: bool = False
    text_encoder_transformers: bool = False
    vae_dtype: DType = FP32
    vae_per_sample: bool = False
    vae_posterior: bool = False
    diffusers_dit: bool = False

    def weights(self, role: WeightRole) -> DType:
        """The dtype parameters of ``role`` are held at."""
        return self.weight_dtypes[role]

    def linear_dtype(self, role: WeightRole, *, fp32_region: bool = False) -> DType:
        """The dtype a Linear/Conv with weights of ``role`` computes at.

        Under autocast (official) it is the matmul dtype, or fp32 inside an ``autocast(float32)``
        region (time embedding, head); without autocast (diffusers) it is the weight's own dtype.
        """
        if self.fp32_regions:
            return FP32 if fp32_region else self.matmul_dtype
        return self.weights(role)


OFFICIAL: Final = Implementation(
    name="official",
    description=(
        "Wan-Video/Wan2.1: fp32 weights re-cast to bf16 per call under autocast, fp32 residual stream, "
        "float64 rotary embedding, fp32 time embedding and head"
    ),
    weight_dtypes=MappingProxyType({role: FP32 for role in WeightRole}),
    matmul_dtype=BF16,
    fp32_regions=True,
    stream_dtype=FP32,
    rope_dtype=FP64,
    rope_upcasts=True,
    image_encoder_layers=31,
    text_encoder_dtype=BF16,
    image_encoder_dtype=FP16,
    image_encoder_transformers=False,
    vae_per_sample=True,
)

DIFFUSERS: Final = Implementation(
    name="diffusers",
    description=(
        "diffusers WanTransformer3DModel in bf16: fp32 time embedder, modulation tables and affine norms "
        "(_keep_in_fp32_modules), bf16 residual stream, fp32 rotary tables"
    ),
    weight_dtypes=MappingProxyType(
        {
            WeightRole.MATMUL: BF16,
            WeightRole.TIME_EMBEDDING: FP32,
            WeightRole.MODULATION: FP32,
            WeightRole.NORM: FP32,
            WeightRole.QK_NORM: BF16,
            WeightRole.POSITION: BF16,
        }
    ),
    matmul_dtype=BF16,
    fp32_regions=False,
    stream_dtype=BF16,
    rope_dtype=FP32,
    rope_upcasts=False,
    image_encoder_layers=32,
    text_encoder_dtype=BF16,
    image_encoder_dtype=FP32,
    image_encoder_transformers=True,
    text_encoder_transformers=True,
    vae_posterior=True,
    diffusers_dit=True,
)

IMPLEMENTATIONS: Final[Mapping[str, Implementation]] = MappingProxyType(
    {profile.name: profile for profile in (OFFICIAL, DIFFUSERS)}
)


def get_implementation(name: str | Implementation) -> Implementation:
    """The implementation profile called ``name`` (a profile passes through); unknown names list the known."""
    if isinstance(name, Implementation):
        return name
    try:
        return IMPLEMENTATIONS[name]
    except KeyError:
        raise LlmPerfOptError(
            f"implementation: unknown implementation profile {name!r}; known: {', '.join(IMPLEMENTATIONS)}"
        ) from None
