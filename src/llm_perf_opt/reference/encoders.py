"""The text and image encoders as transformers implements them, built from the analytic records and measured.

:func:`build_umt5_encoder` makes transformers' ``UMT5EncoderModel`` and :func:`build_clip_vision`
its ``CLIPVisionModel``, on the meta device (no weights, no downloads: the configs are constructed from
``UMT5_XXL`` and ``CLIP_VIT_H_14``, the records the analytic model uses), at the dtypes the diffusers
pipelines load them with: umT5 in bf16, CLIP in fp32 (the ``diffusers`` implementation profile).
:func:`measure_text_encoder` and :func:`measure_image_encoder` feed them what the pipelines feed them
and count one forward (:mod:`.counting`).

On the meta device the umT5 attention mask must be ``None`` (transformers' mask construction calls
``.item()``, which meta tensors cannot answer); the FLOPs do not depend on the mask. umT5 keeps
transformers' default attention (SDPA with the position bias as an additive mask), which meta runs as
the math decomposition: the FLOPs are the bmm pair, as in the official einsum code.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from typing import Final, cast

import torch
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference.counting import Measurement, measure_forward
from llm_perf_opt.wan2_1.image_encoder import CLIP_VIT_H_14, VisionTransformerConfig
from llm_perf_opt.wan2_1.text_encoder import UMT5_XXL, T5EncoderConfig

if find_spec("transformers") is None:
    raise LlmPerfOptError(
        "llm_perf_opt.reference.encoders: needs transformers, which is not installed; install the "
        "reference extra: pip install -c constraints.txt 'llm-perf-opt[reference]'"
    )

from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

__all__ = [
    "ImageEncoderWorkload",
    "TextEncoderWorkload",
    "build_clip_vision",
    "build_umt5_encoder",
    "clip_vision_config",
    "image_encoder_inputs",
    "measure_image_encoder",
    "measure_text_encoder",
    "text_encoder_inputs",
    "umt5_config",
]

MAX_TEXT_LEN: Final = 512
"""The tokenizer's ``max_length``: no prompt is longer."""

TEXT_ENCODER_DTYPE: Final = torch.bfloat16
"""umT5 as diffusers loads it (``torch_dtype=torch.bfloat16``)."""

IMAGE_ENCODER_DTYPE: Final = torch.float32
"""CLIP as diffusers' Wan2.1 image-to-video examples load it (``torch_dtype=torch.float32``)."""

_FEED_FORWARD: Final = "gated-gelu"
"""transformers' name for the gated FFN with the tanh GELU (``gelu_new``)."""

_VISION_ACTIVATION: Final = "gelu"
"""The exact GELU (``nn.GELU()``), as the official ``activation='gelu'``."""


def _check_count(name: str, value: object, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LlmPerfOptError(f"{name}: must be an integer ≥ 1, got {value!r}")
    if maximum is not None and value > maximum:
        raise LlmPerfOptError(f"{name}: must be ≤ {maximum} (the tokenizer truncates there), got {value}")


@frozen(kw_only=True)
class TextEncoderWorkload:
    """One text-encoder forward: ``batch`` prompts of ``text_len`` tokens (padding included)."""

    batch: int
    text_len: int

    def validate(self) -> None:
        """Reject what the pipeline would not run; every message names the field and what is accepted."""
        _check_count("batch", self.batch)
        _check_count("text_len", self.text_len, MAX_TEXT_LEN)


@frozen(kw_only=True)
class ImageEncoderWorkload:
    """One image-encoder forward: ``batch`` samples of ``num_images`` conditioning images each."""

    batch: int
    num_images: int

    def validate(self) -> None:
        """Reject non-positive counts; every message names the field and what is accepted."""
        _check_count("batch", self.batch)
        _check_count("num_images", self.num_images)

    @property
    def images(self) -> int:
        """Images encoded in the one forward."""
        return self.batch * self.num_images


def umt5_config(config: T5EncoderConfig = UMT5_XXL) -> UMT5Config:
    """transformers' ``UMT5Config`` of an encoder record (``google/umt5-xxl``'s values for ``UMT5_XXL``)."""
    if config.dim_attn % config.num_heads:
        raise LlmPerfOptError(
            f"dim_attn: must be a multiple of num_heads {config.num_heads}, got {config.dim_attn}"
        )
    return UMT5Config(
        vocab_size=config.vocab_size,
        d_model=config.dim,
        d_kv=config.head_dim,
        d_ff=config.dim_ffn,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        relative_attention_num_buckets=config.num_buckets,
        relative_attention_max_distance=config.max_distance,
        dropout_rate=config.dropout,
        layer_norm_epsilon=config.eps,
        feed_forward_proj=_FEED_FORWARD,
    )


def clip_vision_config(config: VisionTransformerConfig = CLIP_VIT_H_14) -> CLIPVisionConfig:
    """transformers' ``CLIPVisionConfig`` of a vision record (laion ViT-H/14's values for ``CLIP_VIT_H_14``).

    ``output_hidden_states`` is on, as the diffusers pipelines call it to take ``hidden_states[-2]``.
    """
    return CLIPVisionConfig(
        hidden_size=config.dim,
        intermediate_size=config.mlp_dim,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_channels=config.in_channels,
        image_size=config.image_size,
        patch_size=config.patch_size,
        projection_dim=config.out_dim,
        hidden_act=_VISION_ACTIVATION,
        layer_norm_eps=config.eps,
        output_hidden_states=True,
    )


def _build(
    construct: Callable[..., torch.nn.Module], model_config: object, dtype: torch.dtype, device: str
) -> torch.nn.Module:
    with torch.device(device):
        model = construct(model_config)
    return model.to(dtype).eval().requires_grad_(False)


def build_umt5_encoder(
    config: T5EncoderConfig = UMT5_XXL,
    dtype: torch.dtype = TEXT_ENCODER_DTYPE,
    *,
    device: str = "meta",
    attn_implementation: str | None = None,
) -> torch.nn.Module:
    """transformers' ``UMT5EncoderModel`` of an encoder record, on the meta device, in eval mode.

    Parameters get ``dtype``, as ``from_pretrained(torch_dtype=dtype)`` gives them: its
    ``_keep_in_fp32_modules`` (``wo``) stay fp32 only when ``dtype`` is fp16.
    ``attn_implementation`` (default: transformers' choice, SDPA) may be ``"eager"``.
    """
    model_config = umt5_config(config)
    if attn_implementation is not None:
        model_config._attn_implementation = attn_implementation
    model = _build(cast(Callable[..., torch.nn.Module], UMT5EncoderModel), model_config, dtype, device)
    if dtype == torch.float16:
        keep = set(getattr(model, "_keep_in_fp32_modules", None) or ())
        for name, module in model.named_modules():
            if keep & set(name.split(".")):
                module.to(torch.float32)
    return model


def build_clip_vision(
    config: VisionTransformerConfig = CLIP_VIT_H_14,
    dtype: torch.dtype = IMAGE_ENCODER_DTYPE,
    *,
    device: str = "meta",
) -> torch.nn.Module:
    """transformers' ``CLIPVisionModel`` of a vision record (all its blocks), on the meta device."""
    model_config = clip_vision_config(config)
    return _build(cast(Callable[..., torch.nn.Module], CLIPVisionModel), model_config, dtype, device)


def text_encoder_inputs(workload: TextEncoderWorkload, *, device: str = "meta") -> dict[str, torch.Tensor]:
    """``input_ids`` (B, L) int64, as the pipelines tokenize; no attention mask (see the module docstring)."""
    workload.validate()
    if device == "meta":
        ids = torch.empty(workload.batch, workload.text_len, dtype=torch.int64, device=device)
    else:
        ids = torch.zeros(workload.batch, workload.text_len, dtype=torch.int64, device=device)
    return {"input_ids": ids}


def image_encoder_inputs(
    workload: ImageEncoderWorkload,
    config: VisionTransformerConfig = CLIP_VIT_H_14,
    *,
    device: str = "meta",
) -> dict[str, torch.Tensor]:
    """``pixel_values`` (B·num_images, 3, 224, 224) fp32: the normalised images, as the processor returns."""
    workload.validate()
    size = config.image_size
    pixels = torch.empty(workload.images, config.in_channels, size, size, dtype=torch.float32, device=device)
    return {"pixel_values": pixels}


def measure_text_encoder(
    *,
    batch: int,
    text_len: int,
    config: T5EncoderConfig = UMT5_XXL,
    dtype: torch.dtype = TEXT_ENCODER_DTYPE,
    device: str = "meta",
    attn_implementation: str | None = None,
    fused_sdpa: bool = True,
) -> Measurement:
    """Count one ``UMT5EncoderModel`` forward on ``batch`` prompts of ``text_len`` tokens.

    A ``device`` other than ``meta`` runs real tensors (token id 0 everywhere): for small cross-checks.
    ``fused_sdpa`` counts the attention as a CUDA build runs it: the memory-efficient kernel with the
    position bias as its additive mask (:class:`~llm_perf_opt.reference.counting.FusedSDPA`); without
    it, the meta device's math decomposition.
    """
    inputs = text_encoder_inputs(TextEncoderWorkload(batch=batch, text_len=text_len), device=device)
    model = build_umt5_encoder(config, dtype, device=device, attn_implementation=attn_implementation)
    return measure_forward(model, inputs, fused_sdpa=fused_sdpa)


def measure_image_encoder(
    *,
    batch: int,
    num_images: int,
    config: VisionTransformerConfig = CLIP_VIT_H_14,
    dtype: torch.dtype = IMAGE_ENCODER_DTYPE,
    fused_sdpa: bool = True,
    device: str = "meta",
) -> Measurement:
    """Count one ``CLIPVisionModel`` forward on ``batch·num_images`` images (all blocks run).

    A ``device`` other than ``meta`` runs real tensors (uninitialised pixels): for small cross-checks.
    """
    workload = ImageEncoderWorkload(batch=batch, num_images=num_images)
    inputs = image_encoder_inputs(workload, config, device=device)
    model = build_clip_vision(config, dtype, device=device)
    return measure_forward(model, inputs, fused_sdpa=fused_sdpa)
