"""Operator categories: what kind of work each op of a module tree is, for breakdowns and summaries.

An op's category is declared with its primitive in the registry; a matrix product or a convolution's
follows from where it runs: the nearest enclosing module whose class says what its weights are for
(an attention module's Linears are attention projections, a block's feed-forward Linears are
feed-forward, the embeddings and the head of a model are embeddings), a table each model family
declares (``llm_perf_opt.wan2_1.roles``). The classes each category matches (the contract's
``match_classes``) are read off the tree: the classes of the modules whose own ops fall in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from attrs import frozen

from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree, OpKind
from llm_perf_opt.symbolic.primitives import PRIMITIVES, OpClass

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


def categorize(kind: OpKind, node: ModuleNode, tree: ModuleTree, roles: Mapping[tuple[str, str], str]) -> str:
    """The category of the ops of ``kind`` that ``node`` performs itself.

    The primitive's registry entry names it; for a weighted op (a matrix product, a convolution)
    it is the role of the nearest enclosing module in ``roles`` ((stage, class) → category, the
    model family's table), else ``convolution`` or ``linear_other``.
    """
    entry = PRIMITIVES.get(kind[0])
    fixed = entry.category if entry is not None else "elementwise"
    if fixed is not None:
        return fixed
    current: ModuleNode | None = node
    while current is not None:
        role = roles.get((current.stage, current.class_name))
        if role is not None:
            return role
        current = tree[current.parent_id] if current.parent_id is not None else None
    return "convolution" if entry is not None and entry.op_class is OpClass.CONVOLUTION else "linear_other"
