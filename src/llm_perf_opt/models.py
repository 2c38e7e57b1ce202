"""The model families the library knows, and deployments built from names.

Each family keeps its declarations and its run rules in its own package (``llm_perf_opt.wan2_1`` with its VACE
variants, ``llm_perf_opt.wan2_2``); this module only lists them, so a second family is one more entry here,
not an edit elsewhere.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from llm_perf_opt.deployment.value import Deployment
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.wan2_1.run import WAN2_1, Wan21Family
from llm_perf_opt.wan2_1.vace import VACE_VARIANTS, VaceVariant
from llm_perf_opt.wan2_1.vace_run import VACE, VaceFamily
from llm_perf_opt.wan2_1.variants import VARIANTS as WAN2_1_VARIANTS
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant
from llm_perf_opt.wan2_2.run import WAN2_2, WAN2_2_A14B, WAN2_2_IMAGE, Wan22Family, family_for
from llm_perf_opt.wan2_2.variants import VARIANTS as WAN2_2_VARIANTS
from llm_perf_opt.wan2_2.variants import Wan22Variant

__all__ = ["FAMILIES", "build_deployment", "family_of", "find_variant", "variant_names"]

FAMILIES: Final = (WAN2_1, VACE, WAN2_2_A14B, WAN2_2, WAN2_2_IMAGE)
"""Every model family, in the order listings show them."""


def variant_names() -> tuple[str, ...]:
    """Every variant's ``model_variant``, family by family."""
    return (*WAN2_1_VARIANTS, *VACE_VARIANTS, *WAN2_2_VARIANTS)


def find_variant(name: str) -> WanVariant | VaceVariant | Wan22Variant:
    """The variant record named by ``model_variant`` or ``model_id`` in any family (case ignored);
    an unknown name lists every known one."""
    key = name.strip().lower() if isinstance(name, str) else name
    records: list[VaceVariant | Wan22Variant] = [*VACE_VARIANTS.values(), *WAN2_2_VARIANTS.values()]
    for record in records:
        if key in (record.model_variant, record.model_id):
            return record
    try:
        return get_variant(name)
    except LlmPerfOptError:
        raise LlmPerfOptError(
            f"model_variant: unknown variant {name!r}; known variants: {', '.join(variant_names())}"
        ) from None


def family_of(
    variant: str | WanVariant | VaceVariant | Wan22Variant,
) -> Wan21Family | VaceFamily | Wan22Family:
    """The family a variant (name, model id or record) belongs to; unknown names list the known ones."""
    if isinstance(variant, str):
        variant = find_variant(variant)
    if isinstance(variant, WanVariant):
        return WAN2_1
    if isinstance(variant, VaceVariant):
        return VACE
    if isinstance(variant, Wan22Variant):
        return family_for(variant)
    raise LlmPerfOptError(
        f"variant: expected a variant name, got {variant!r}; known: {', '.join(variant_names())}"
    )


def build_deployment(variant: str | WanVariant | VaceVariant | Wan22Variant, **options: Any) -> Deployment:
    """A validated :class:`~llm_perf_opt.deployment.value.Deployment` of ``variant`` with its family's
    defaults filled; ``options`` are the family builder's (``accelerator``, ``gpus``, ``offload`` …)."""
    family = family_of(variant)
    accepted = _options_of(family)
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise LlmPerfOptError(
            f"{unknown[0]}: not an option of the {family.name} family; "
            f"accepted: {', '.join(sorted(accepted))}"
        )
    record = find_variant(variant) if isinstance(variant, str) else variant
    return family.deployment(record, **options)  # type: ignore[arg-type]


def _options_of(family: Wan21Family | VaceFamily | Wan22Family) -> set[str]:
    """The keywords a family's builder takes (the VACE and Wan2.2 builders pass the rest to Wan2.1's)."""
    parameters = inspect.signature(family.deployment).parameters.values()
    names = {p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        names |= _options_of(WAN2_1)
    return names
