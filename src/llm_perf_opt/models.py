"""The model families the library knows, and deployments built from names.

Each family keeps its declarations and its run rules in its own package (``llm_perf_opt.wan2_1``);
this module only lists them, so a second family is one more entry here, not an edit elsewhere.
"""

from __future__ import annotations

from typing import Any, Final

from llm_perf_opt.deployment.value import Deployment
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.wan2_1.run import WAN2_1, Wan21Family
from llm_perf_opt.wan2_1.variants import VARIANTS as WAN2_1_VARIANTS
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant

__all__ = ["FAMILIES", "build_deployment", "family_of"]

FAMILIES: Final = (WAN2_1,)
"""Every model family, in the order listings show them."""


def family_of(variant: str | WanVariant) -> Wan21Family:
    """The family a variant (name, model id or record) belongs to; unknown names list the known ones."""
    if isinstance(variant, WanVariant):
        return WAN2_1
    if isinstance(variant, str):
        get_variant(variant)
        return WAN2_1
    raise LlmPerfOptError(
        f"variant: expected a variant name, got {variant!r}; known: {', '.join(WAN2_1_VARIANTS)}"
    )


def build_deployment(variant: str | WanVariant, **options: Any) -> Deployment:
    """A validated :class:`~llm_perf_opt.deployment.value.Deployment` of ``variant`` with its family's
    defaults filled; ``options`` are the family builder's (``accelerator``, ``gpus``, ``offload`` …)."""
    return family_of(variant).deployment(variant, **options)
