"""Token geometry of Wan2.1, in one place, exactly as the official pipeline computes it.

A video of ``F`` frames at ``H × W`` pixels becomes a latent of ``(F − 1) // 4 + 1`` frames at
``H/8 × W/8`` (VAE stride (4, 8, 8)), patchified by (1, 2, 2) into
``video_tokens = latent_frames · (H/16) · (W/16)`` tokens for the diffusion transformer.

The official pipelines accept only heights and widths that are multiples of 16 (VAE stride 8 ×
patch 2); a frame count that is not ``4k + 1`` is floored by ``(F − 1) // 4`` and the video that
comes out has ``4·((F − 1) // 4) + 1`` frames. Every prompt is padded to 512 text tokens.

The helpers take symbols or Python ints; an int is made a SymPy integer first, so a division is
an exact rational and the result of a huge workload is exact (never a float ``/``).
"""

from __future__ import annotations

from typing import Final

import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.symbols import F, H, W
from llm_perf_opt.wan2_1.limits import WORKLOAD_LIMITS

__all__ = [
    "PADDED_TEXT_LEN",
    "SIZE_MULTIPLE",
    "VAE_SPATIAL_STRIDE",
    "VAE_TEMPORAL_STRIDE",
    "check_frame_count",
    "check_frame_size",
    "effective_frames",
    "latent_frames",
    "latent_height",
    "latent_width",
    "patch_tokens_per_frame",
    "video_tokens",
    "video_tokens_at",
]

VAE_TEMPORAL_STRIDE: Final = 4
VAE_SPATIAL_STRIDE: Final = 8
PATCH_SPATIAL: Final = 2
SIZE_MULTIPLE: Final = VAE_SPATIAL_STRIDE * PATCH_SPATIAL
"""Heights and widths the pipeline accepts are multiples of this (16)."""
PADDED_TEXT_LEN: Final = 512
"""The umT5 tokenizer pads every prompt to this many tokens (``padding='max_length'``)."""


def latent_frames(frames: sympy.Expr = F) -> sympy.Expr:
    """Latent frames ``(F − 1) // 4 + 1``: the first frame alone, then one latent per 4 frames."""
    return sympy.floor((sympy.sympify(frames) - 1) / VAE_TEMPORAL_STRIDE) + 1


def latent_height(height: sympy.Expr = H) -> sympy.Expr:
    """Latent height ``H / 8``."""
    return sympy.sympify(height) / VAE_SPATIAL_STRIDE


def latent_width(width: sympy.Expr = W) -> sympy.Expr:
    """Latent width ``W / 8``."""
    return sympy.sympify(width) / VAE_SPATIAL_STRIDE


def patch_tokens_per_frame(height: sympy.Expr = H, width: sympy.Expr = W) -> sympy.Expr:
    """Tokens per latent frame after the (1, 2, 2) patch: ``(H/16)·(W/16)``."""
    return (sympy.sympify(height) / SIZE_MULTIPLE) * (sympy.sympify(width) / SIZE_MULTIPLE)


def video_tokens(frames: sympy.Expr = F, height: sympy.Expr = H, width: sympy.Expr = W) -> sympy.Expr:
    """Video tokens of the diffusion transformer: ``((F − 1)//4 + 1)·(H/16)·(W/16)``."""
    return latent_frames(frames) * patch_tokens_per_frame(height, width)


def video_tokens_at(
    vae_stride: tuple[int, int, int],
    patch_size: tuple[int, int, int],
    frames: sympy.Expr = F,
    height: sympy.Expr = H,
    width: sympy.Expr = W,
) -> sympy.Expr:
    """Video tokens for any VAE stride (t, h, w) and patch (t, h, w):
    ``((F − 1)//t + 1)/pt · H/(h·ph) · W/(w·pw)``; Wan2.1's (4, 8, 8) and (1, 2, 2) give
    :func:`video_tokens`, Wan2.2's 4 × 16 × 16 VAE ``((F − 1)//4 + 1)·(H/32)·(W/32)``."""
    frames_out = (sympy.floor((frames - 1) / vae_stride[0]) + 1) / patch_size[0]
    return frames_out * (height / (vae_stride[1] * patch_size[1])) * (width / (vae_stride[2] * patch_size[2]))


def effective_frames(frames: int) -> int:
    """Frames in the generated video for a requested count: ``4·((F − 1)//4) + 1``."""
    return VAE_TEMPORAL_STRIDE * ((frames - 1) // VAE_TEMPORAL_STRIDE) + 1


def check_frame_count(frames: int, *, field: str = "num_frames") -> int:
    """Validate a frame count (1 to 4093, see :mod:`~llm_perf_opt.wan2_1.limits`) and return the
    effective frame count the pipeline produces."""
    return effective_frames(WORKLOAD_LIMITS["frames"].check(frames, name=field))


def _nearest_multiples(value: int) -> str:
    lower = max(SIZE_MULTIPLE, value // SIZE_MULTIPLE * SIZE_MULTIPLE)
    upper = lower + SIZE_MULTIPLE if lower < value else lower
    return f"{lower}" if lower == upper else f"{lower} or {upper}"


def check_frame_size(height: int, width: int) -> None:
    """Reject sizes the pipeline would not accept, naming the nearest valid ones; sizes above the
    rotary tables' reach (16384) are rejected too."""
    for field, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LlmPerfOptError(f"{field}: must be a positive multiple of {SIZE_MULTIPLE}, got {value!r}")
        if value % SIZE_MULTIPLE:
            raise LlmPerfOptError(
                f"{field}: must be a multiple of {SIZE_MULTIPLE} (VAE stride 8 × patch 2), got {value}; "
                f"nearest valid: {_nearest_multiples(value)}"
            )
        WORKLOAD_LIMITS[field].check(value)
