"""Token geometry and size rules of the Wan2.2 variants.

The A14B variants use the Wan2.1 VAE (stride 4 × 8 × 8) and patch (1, 2, 2): heights and widths are
multiples of 16 and a video has ``((F − 1)//4 + 1)·(H/16)·(W/16)`` tokens. TI2V-5B's Wan2.2 VAE
compresses 4 × 16 × 16, so with the same patch its sizes are multiples of 32 (``best_output_size`` in
``wan/utils/utils.py`` rounds to ``vae_stride · patch_size = 32``) and a video has
``((F − 1)//4 + 1)·(H/32)·(W/32)`` tokens: 1280×704 at 121 frames is 31·22·40 = 27 280.
"""

from __future__ import annotations

import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.symbols import F, H, W
from llm_perf_opt.wan2_1.geometry import video_tokens_at
from llm_perf_opt.wan2_1.variants import WanVariant

__all__ = ["check_frame_size", "latent_shape", "size_multiple", "video_tokens"]


def size_multiple(variant: WanVariant) -> int:
    """Pixels heights and widths must be multiples of: VAE spatial stride × spatial patch (16 or 32)."""
    return variant.vae_stride[1] * variant.patch_size[1]


def video_tokens(
    variant: WanVariant, frames: sympy.Expr = F, height: sympy.Expr = H, width: sympy.Expr = W
) -> sympy.Expr:
    """Video tokens of the variant's transformer per sample."""
    return video_tokens_at(variant.vae_stride, variant.patch_size, frames, height, width)


def latent_shape(variant: WanVariant) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr]:
    """Latent frames, height and width: ``((F − 1)//4 + 1, H/s, W/s)`` with the VAE's stride ``s``."""
    t, h, w = variant.vae_stride
    return sympy.floor((F - 1) / t) + 1, H / h, W / w


def _nearest(value: int, multiple: int) -> str:
    lower = value // multiple * multiple
    upper = lower + multiple
    return f"{upper}" if lower == 0 else f"{lower} or {upper}"


def check_frame_size(variant: WanVariant, height: object, width: object) -> None:
    """Reject sizes off the variant's grid, naming the nearest valid ones."""
    multiple = size_multiple(variant)
    reason = f"VAE stride {variant.vae_stride[1]} × patch {variant.patch_size[1]}"
    for field, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LlmPerfOptError(f"{field}: must be a positive multiple of {multiple}, got {value!r}")
        if value % multiple:
            raise LlmPerfOptError(
                f"{field}: must be a multiple of {multiple} for {variant.model_variant} ({reason}), "
                f"got {value}; nearest valid: {_nearest(value, multiple)}"
            )
