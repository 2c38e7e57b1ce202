"""The diffusion transformer as diffusers implements it, built from a variant record and measured.

:func:`build_diffusers_dit` makes diffusers' ``WanTransformer3DModel`` on the meta device (no weights,
no memory) from the same :class:`~llm_perf_opt.wan2_1.variants.WanVariant` the analytic model uses, with
the dtypes ``from_pretrained(torch_dtype=…)`` would give it. :func:`measure_dit` feeds it the tensors the
pipeline feeds it and counts one forward (:mod:`.counting`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, cast

import torch
from attrs import frozen
from diffusers import WanTransformer3DModel

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference.counting import Measurement, measure_forward
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant

__all__ = ["ROPE_TABLE_LENGTH", "DitWorkload", "build_diffusers_dit", "dit_inputs", "measure_dit"]

ROPE_TABLE_LENGTH: Final = 1024
"""Positions in the rotary tables (official ``rope_params(1024, …)``; diffusers ``rope_max_seq_len``)."""

_QK_NORM_ACROSS_HEADS: Final = "rms_norm_across_heads"
"""diffusers' name for the official RMSNorm over the full ``dim`` on q and k."""


@frozen(kw_only=True)
class DitWorkload:
    """One DiT forward: batch, video frames, pixel height and width, and text tokens."""

    batch: int
    frames: int
    height: int
    width: int
    text_len: int

    def validate(self, variant: WanVariant) -> None:
        """Reject what the pipeline would not run; every message names the field and what is accepted."""
        for name in ("batch", "frames", "height", "width", "text_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LlmPerfOptError(f"{name}: must be an integer ≥ 1, got {value!r}")
        for name, axis in (("height", 1), ("width", 2)):
            value = getattr(self, name)
            multiple = variant.vae_stride[axis] * variant.patch_size[axis]
            if value % multiple:
                low, high = value // multiple * multiple, (value // multiple + 1) * multiple
                nearest = f"{low} or {high}" if low else f"{high}"
                raise LlmPerfOptError(
                    f"{name}: must be a multiple of {multiple}, got {value}; nearest: {nearest}"
                )
        if variant.num_images and self.text_len != variant.text_len:
            raise LlmPerfOptError(
                f"text_len: must be {variant.text_len} for {variant.model_variant}, got {self.text_len}; the "
                f"image cross-attention splits its context {variant.text_len} tokens from the end"
            )

    def latent_shape(self, variant: WanVariant) -> tuple[int, int, int]:
        """Latent frames, height and width: ``((F − 1)//4 + 1, H/8, W/8)`` as the official pipelines.

        The diffusers pipelines first round ``F`` to ``4·(F//4) + 1`` (16 frames become 17, so 5 latent
        frames where the official code makes 4); the reference follows the official count.
        """
        t, h, w = variant.vae_stride
        return (self.frames - 1) // t + 1, self.height // h, self.width // w


def build_diffusers_dit(
    variant: WanVariant | str,
    dtype: torch.dtype = torch.bfloat16,
    *,
    device: str = "meta",
) -> torch.nn.Module:
    """diffusers' ``WanTransformer3DModel`` for a variant, on the meta device, in eval mode.

    On another ``device`` (a small cross-check against real tensors) the constructor allocates and
    initialises the parameters there; their values do not matter for counting.

    Parameters get ``dtype`` except those ``from_pretrained`` keeps in fp32 (any parameter whose dotted
    name has a component in ``_keep_in_fp32_modules``: rope, time_embedder, scale_shift_table,
    norm1/2/3); buffers keep the dtype they are built with, as ``from_pretrained`` leaves them.
    """
    if isinstance(variant, str):
        variant = get_variant(variant)
    if not variant.qk_norm:
        raise LlmPerfOptError(
            f"qk_norm: diffusers' WanAttention always normalises q and k, got {variant.qk_norm}"
        )
    if variant.window_size != (-1, -1):
        raise LlmPerfOptError(
            f"window_size: diffusers implements global attention (-1, -1) only, got {variant.window_size}"
        )
    construct = cast(Callable[..., torch.nn.Module], WanTransformer3DModel)
    with torch.device(device):
        model = construct(
            patch_size=variant.patch_size,
            num_attention_heads=variant.num_heads,
            attention_head_dim=variant.head_dim,
            in_channels=variant.in_dim,
            out_channels=variant.out_dim,
            text_dim=variant.text_dim,
            freq_dim=variant.freq_dim,
            ffn_dim=variant.ffn_dim,
            num_layers=variant.num_layers,
            cross_attn_norm=variant.cross_attn_norm,
            qk_norm=_QK_NORM_ACROSS_HEADS,
            eps=variant.eps,
            image_dim=variant.image_dim,
            added_kv_proj_dim=variant.dim if variant.num_images else None,
            rope_max_seq_len=ROPE_TABLE_LENGTH,
            pos_embed_seq_len=variant.image_tokens if variant.num_images > 1 else None,
        )
    keep_fp32 = set(WanTransformer3DModel._keep_in_fp32_modules or ())
    for name, param in list(model.named_parameters()):
        owner_name, _, attribute = name.rpartition(".")
        target = torch.float32 if keep_fp32 & set(name.split(".")) else dtype
        owner = model.get_submodule(owner_name)
        owner._parameters[attribute] = torch.nn.Parameter(param.detach().to(target), requires_grad=False)
    return model.eval()


def dit_inputs(
    variant: WanVariant,
    workload: DitWorkload,
    dtype: torch.dtype = torch.bfloat16,
    *,
    device: str = "meta",
) -> dict[str, torch.Tensor]:
    """The meta tensors the diffusers pipelines pass to the transformer, by argument name.

    ``hidden_states`` (B, in_dim, T, H/8, W/8): the noise latent, channel-concatenated with the 20
    condition channels for i2v/flf2v; ``timestep`` (B,) int64, as the UniPC scheduler yields, or
    (B, video tokens) for a variant diffusers runs with one timestep per token (Wan2.2 TI2V-5B);
    ``encoder_hidden_states`` (B, text_len, text_dim); for i2v/flf2v ``encoder_hidden_states_image``
    (num_images·B, 257, 1280): the pipeline encodes the first (and last) frame as a CLIP batch, and the
    FLF2V image embedding views that as (B, 514, 1280).
    """
    workload.validate(variant)
    b = workload.batch
    latent_frames, latent_height, latent_width = workload.latent_shape(variant)
    video_tokens = latent_frames * latent_height * latent_width
    for stride in variant.patch_size:
        video_tokens //= stride
    # Wan2.2 TI2V-5B: the pipeline (expand_timesteps) gives every token its own timestep
    timestep_shape = (b, video_tokens) if "diffusers" in variant.timestep_per_token else (b,)
    inputs = {
        "hidden_states": torch.empty(
            b, variant.in_dim, latent_frames, latent_height, latent_width, dtype=dtype, device=device
        ),
        "timestep": torch.empty(*timestep_shape, dtype=torch.int64, device=device),
        "encoder_hidden_states": torch.empty(
            b, workload.text_len, variant.text_dim, dtype=dtype, device=device
        ),
    }
    if variant.num_images:
        tokens, width = variant.image_tokens_per_image, variant.image_dim
        if tokens is None or width is None:
            raise LlmPerfOptError(f"{variant.model_variant}: image_dim: must be set with num_images > 0")
        inputs["encoder_hidden_states_image"] = torch.empty(
            variant.num_images * b, tokens, width, dtype=dtype, device=device
        )
    return inputs


def measure_dit(
    variant: WanVariant | str,
    *,
    batch: int,
    frames: int,
    height: int,
    width: int,
    text_len: int,
    fused_sdpa: bool = True,
    fused_rms_norm: bool = True,
    dtype: torch.dtype = torch.bfloat16,
    device: str = "meta",
) -> Measurement:
    """Count one diffusers DiT forward of a variant at a workload (see :mod:`.counting` for conventions).

    A ``device`` other than ``meta`` runs real tensors (uninitialised inputs): for small cross-checks.
    """
    if isinstance(variant, str):
        variant = get_variant(variant)
    workload = DitWorkload(batch=batch, frames=frames, height=height, width=width, text_len=text_len)
    inputs = dit_inputs(variant, workload, dtype, device=device)
    model = build_diffusers_dit(variant, dtype, device=device)
    return measure_forward(model, inputs, fused_sdpa=fused_sdpa, fused_rms_norm=fused_rms_norm)
