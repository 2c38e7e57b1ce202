"""Operator categories: what kind of work each op of a module tree is, for breakdowns and summaries.

An op's category follows from its primitive; a matrix product or a convolution also from where it
runs: the nearest enclosing module whose class says what its weights are for (an attention module's
Linears are attention projections, a block's feed-forward Linears are feed-forward, the embeddings
and the head of a model are embeddings). The classes each category matches (the contract's
``match_classes``) are read off the tree: the classes of the modules whose own ops fall in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from attrs import frozen

from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree, OpKind

__all__ = ["CATEGORIES", "Category", "categorize"]


@frozen
class Category:
    """One operator category of the report (``OperatorCategory`` without its derived classes)."""

    category_id: str
    display_name: str
    description: str


CATEGORIES: Final[Mapping[str, Category]] = MappingProxyType(
    {
        category.category_id: category
        for category in (
            Category(
                "attention_projection",
                "Attention projections",
                "Linear (or 1×1 convolution) projections to and from queries, keys and values",
            ),
            Category(
                "attention_core",
                "Attention core",
                "scores and weighted values: fused scaled-dot-product attention, "
                "or its batched matmuls and softmax",
            ),
            Category("feed_forward", "Feed-forward", "the Linears of feed-forward networks"),
            Category(
                "embedding",
                "Embeddings and head",
                "patch, text, time and image embeddings, token lookups, and the output head",
            ),
            Category("convolution", "Convolutions", "convolutions of the VAE and other conv stacks"),
            Category("linear_other", "Other matrix products", "matrix products outside the roles above"),
            Category("normalization", "Normalization", "layer norms and RMS norms"),
            Category("activation", "Activations", "GELU, SiLU"),
            Category(
                "rotary_embedding", "Rotary embedding", "3-D rotary position embedding of queries and keys"
            ),
            Category(
                "elementwise",
                "Element-wise",
                "modulation, gating, residual adds, guidance and scheduler updates",
            ),
            Category("cast_copy", "Casts and copies", "dtype casts and layout copies"),
        )
    }
)

_BY_PRIMITIVE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "_scaled_dot_product_flash_attention": "attention_core",
        "_scaled_dot_product_efficient_attention": "attention_core",
        "_scaled_dot_product_cudnn_attention": "attention_core",
        "_scaled_dot_product_flash_attention_for_cpu": "attention_core",
        "bmm": "attention_core",
        "baddbmm": "attention_core",
        "_softmax": "attention_core",
        "native_layer_norm": "normalization",
        "_fused_rms_norm": "normalization",
        "gelu": "activation",
        "gelu_tanh": "activation",
        "silu": "activation",
        "rope": "rotary_embedding",
        "mul": "elementwise",
        "add": "elementwise",
        "_to_copy": "cast_copy",
        "embedding": "embedding",
    }
)
"""Primitives whose category does not depend on where they run."""

_WEIGHTED_PRIMITIVES: Final = frozenset({"mm", "addmm", "convolution"})

_ROLE_BY_CLASS: Final[Mapping[tuple[str, str], str]] = MappingProxyType(
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


def categorize(kind: OpKind, node: ModuleNode, tree: ModuleTree) -> str:
    """The category of the ops of ``kind`` that ``node`` performs itself."""
    primitive = kind[0]
    fixed = _BY_PRIMITIVE.get(primitive)
    if fixed is not None:
        return fixed
    if primitive not in _WEIGHTED_PRIMITIVES:
        return "elementwise"
    current: ModuleNode | None = node
    while current is not None:
        role = _ROLE_BY_CLASS.get((current.stage, current.class_name))
        if role is not None:
            return role
        current = tree[current.parent_id] if current.parent_id is not None else None
    return "convolution" if primitive == "convolution" else "linear_other"
