"""The roles of Wan2.1's modules for the report's operator categories: for a matrix product or a
convolution, the nearest enclosing (stage, class) below says what its weights are for."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["ROLES"]

ROLES: Final[Mapping[tuple[str, str], str]] = MappingProxyType(
    {
        # attention modules: their Linears (the VAE's: 1×1 convolutions) are projections
        ("diffusion", "WanSelfAttention"): "attention_projection",
        ("diffusion", "WanT2VCrossAttention"): "attention_projection",
        ("diffusion", "WanI2VCrossAttention"): "attention_projection",
        ("text_encoder", "T5Attention"): "attention_projection",
        ("other", "SelfAttention"): "attention_projection",
        ("vae", "AttentionBlock"): "attention_projection",
        # blocks: their Linears outside an attention module are the feed-forward network
        ("diffusion", "WanAttentionBlock"): "feed_forward",
        ("text_encoder", "T5FeedForward"): "feed_forward",
        ("other", "AttentionBlock"): "feed_forward",
        # model roots and heads: embeddings and output projections
        ("diffusion", "WanModel"): "embedding",
        ("diffusion", "Head"): "embedding",
        ("diffusion", "MLPProj"): "embedding",
        ("text_encoder", "T5Encoder"): "embedding",
        ("other", "VisionTransformer"): "embedding",
    }
)
"""For a matrix product or convolution: the nearest enclosing (stage, class) that says what it is for."""
