"""What the report needs to know of Wan2.1's modules: the roles of its modules for the operator
categories (for a matrix product or a convolution, the nearest enclosing (stage, class) says what
its weights are for) and the official module each class lives in (``qualified_class_name``)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["COMPONENT_MODULES", "PACKAGE", "PIPELINE_MODULES", "ROLES"]

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

PACKAGE: Final = "wan"
"""The official code's package: the module of a class without a more specific one."""
COMPONENT_MODULES: Final[Mapping[str, str]] = {
    "diffusion": "wan.modules.model",
    "text_encoder": "wan.modules.t5",
    "image_encoder": "wan.modules.clip",
    "vae": "wan.modules.vae",
    "scheduler": "wan.utils.fm_solvers_unipc",
}
PIPELINE_MODULES: Final[Mapping[str, str]] = {
    "WanT2V": "wan.text2video",
    "WanI2V": "wan.image2video",
    "WanFLF2V": "wan.first_last_frame2video",
}
