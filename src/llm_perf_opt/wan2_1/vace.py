"""Wan2.1 VACE (``VaceWanModel``, 1.3B and 14B): the control branch, declared on the Wan2.1 transformer.

From ``wan/modules/vace_model.py`` and ``wan/vace.py`` of Wan-Video/Wan2.1:

- ``vace_patch_embedding``: ``Conv3d(vace_in_dim = 96 → D)`` over the VACE context: the inactive and
  reactive VAE latents of the control video (16 + 16 channels) and its mask folded to 64 channels;
- ``vace_blocks``: one ``VaceWanAttentionBlock`` per entry of ``vace_layers`` (every 2nd of 30 blocks
  for 1.3B, every 5th of 40 for 14B): a full ``WanAttentionBlock`` on the context stream ``c``, the
  first one adding ``before_proj(c) + x``, each returning the hint ``after_proj(c)``;
- ``blocks``: ``BaseWanAttentionBlock`` — the block ``vace_layers[k]`` adds ``hints[k]·context_scale``
  to its output (diffusers' ``WanVACETransformer3DModel.forward`` adds it after the block, in the
  root's own forward, with the scales a ``new_ones`` tensor of one per VACE layer);
- reference images: each is VAE-encoded alone and put in front of the latent as one more latent frame
  (its half of the context: the latent and zeros), so the transformer runs on ``T + R`` latent frames
  (``T = (F − 1)//4 + 1``); the decode drops them again.

``R`` (reference images) is a property of the request, not one of the six workload symbols: it is an
argument of the declarations. Its effect on the transformer is exactly ``F → F + 4R`` in every
expression (``⌊(F + 4R − 1)/4⌋ + 1 = T + R``), which :func:`declare_vace_dit` applies.

The variants are data: ``llm_perf_opt/wan2_1/vace_configs/<model_variant>.json`` holds the base
transformer's fields (those of t2v-1.3B / t2v-14B, as ``WAN_CONFIGS`` maps the vace tasks) and a
``vace`` object (layers, context width, official default sampling).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs
import sympy
from attrs import Attribute, field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.dtypes import BF16
from llm_perf_opt.symbolic.module import Module, Repeated
from llm_perf_opt.symbolic.primitives import OpCall, add, cat, clone, mul, new_ones
from llm_perf_opt.symbolic.symbols import B, F
from llm_perf_opt.validation import integer
from llm_perf_opt.wan2_1.dit import _linear, _more_than_one, _patch_embedding, _tokens, declare_dit
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.variants import (
    BuiltOnTransformer,
    WanVariant,
    find_named,
    list_as_tuple,
    load_with_section,
    non_empty_text,
    positive_number,
)

__all__ = ["VACE_VARIANTS", "VaceVariant", "declare_vace_dit", "get_vace_variant", "with_reference_frames"]

STAGE: Final = "diffusion"
_VARIANT_ORDER: Final = ("vace-1.3b", "vace-14b")


def _layers(instance: object, attribute: Attribute[Any], value: object) -> None:
    if not (
        isinstance(value, tuple)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        and list(value) == sorted(set(value))
        and value[0] == 0
    ):
        raise LlmPerfOptError(
            f"{attribute.name}: must be increasing block indices starting at 0, got {value!r}"
        )


@frozen(kw_only=True)
class VaceVariant(BuiltOnTransformer):
    """One VACE variant: the base transformer record, its control branch and its default run."""

    transformer: WanVariant
    """The base ``WanModel`` (t2v-1.3B or t2v-14B values, ids and checkpoint of the VACE model)."""
    vace_layers: tuple[int, ...] = field(converter=list_as_tuple, validator=_layers)
    """Main blocks that receive a hint, in order; one VACE block each."""
    vace_in_dim: int = field(validator=integer(1))
    """Channels of the VACE context (96)."""
    sample_steps: int = field(validator=integer(1))
    """Default denoising steps."""
    sample_shift: float = field(validator=positive_number)
    """Default flow shift."""
    sample_guide_scale: float = field(validator=positive_number)
    """Default guidance scale."""
    frame_num: int = field(validator=integer(1))
    """Default frame count."""
    reference_images: int = field(validator=integer(0))
    """Reference images of the README command."""
    default_size: str = field(validator=non_empty_text)
    """Size of the README command, ``'width*height'``."""
    source: str = field(validator=non_empty_text)
    """Where each value comes from."""

    def __attrs_post_init__(self) -> None:
        if self.vace_layers[-1] >= self.transformer.num_layers:
            raise LlmPerfOptError(
                f"{self.model_variant}: vace_layers: must be < num_layers ({self.transformer.num_layers}), "
                f"got {list(self.vace_layers)}"
            )
        self.check_default_size()


def _load(stem: str) -> VaceVariant:
    record: VaceVariant = load_with_section("llm_perf_opt.wan2_1", "vace_configs", stem, "vace", VaceVariant)
    return record


VACE_VARIANTS: Final[Mapping[str, VaceVariant]] = MappingProxyType({s: _load(s) for s in _VARIANT_ORDER})
"""The VACE variants, keyed by ``model_variant``, smallest first."""


def get_vace_variant(name: str) -> VaceVariant:
    """The VACE variant named by ``model_variant`` or ``model_id`` (case ignored).

    An unknown name is an :class:`LlmPerfOptError` that lists the known ones.
    """
    variant: VaceVariant = find_named(VACE_VARIANTS, name, "VACE variant")
    return variant


def _substituted_cost(cost: Cost, mapping: dict[sympy.Symbol, sympy.Expr]) -> Cost:
    return Cost(**{metric: sympy.sympify(expr).subs(mapping) for metric, expr in cost})


def _substituted(node: Module | Repeated, mapping: dict[sympy.Symbol, sympy.Expr]) -> Module | Repeated:
    if isinstance(node, Repeated):
        template = _substituted(node.template, mapping)
        assert isinstance(template, Module)
        return attrs.evolve(node, template=template)
    return attrs.evolve(
        node,
        ops=tuple(attrs.evolve(op, cost=_substituted_cost(op.cost, mapping)) for op in node.ops),
        children=tuple(_substituted(child, mapping) for child in node.children),
        calls=sympy.sympify(node.calls).subs(mapping),
    )


def with_reference_frames(module: Module, reference_images: int) -> Module:
    """``module`` run on a latent with ``reference_images`` more frames in front: ``F → F + 4R``."""
    if isinstance(reference_images, bool) or not isinstance(reference_images, int) or reference_images < 0:
        raise LlmPerfOptError(f"reference_images: must be an integer ≥ 0, got {reference_images!r}")
    if reference_images == 0:
        return module
    result = _substituted(module, {F: F + 4 * reference_images})
    assert isinstance(result, Module)
    return result


def _hint_ops(variant: VaceVariant, impl: Implementation) -> tuple[OpCall, ...]:
    """``x + hints[k]·context_scale`` for one hinted block (the hint is the after_proj output)."""
    numel = B * _tokens(variant.transformer) * variant.transformer.dim
    # hint:[B, Lv, D] · context_scale (one element), then x:[B, Lv, D] + it
    return (
        mul(numel, dtype=impl.matmul_dtype, other_numel=1),
        add(numel, dtype=impl.stream_dtype, other_dtype=impl.matmul_dtype),
    )


def _hinted_blocks(variant: VaceVariant, impl: Implementation, block: Module) -> Module:
    """``blocks``: every ``BaseWanAttentionBlock``; the hinted ones add ``hints[k]·context_scale``
    (official: in the block's forward; diffusers: in the root's, see :func:`declare_vace_dit`)."""
    hint_ops = () if impl.diffusers_dit else _hint_ops(variant, impl)
    children = []
    for index in range(variant.transformer.num_layers):
        hinted = index in variant.vace_layers
        children.append(
            attrs.evolve(
                block,
                name=str(index),
                class_name="BaseWanAttentionBlock",
                params={**block.params, "block_id": variant.vace_layers.index(index) if hinted else None},
                ops=block.ops + hint_ops if hinted else block.ops,
            )
        )
    return Module(name="blocks", class_name="ModuleList", stage=STAGE, children=tuple(children))


def _vace_blocks(variant: VaceVariant, impl: Implementation, block: Module) -> Module:
    """``vace_blocks``: a ``WanAttentionBlock`` each on the context stream, plus its projections."""
    dim = variant.transformer.dim
    rows = B * _tokens(variant.transformer)
    stream = impl.stream_dtype
    children = []
    for block_id in range(len(variant.vace_layers)):
        extra: list[Module] = []
        ops = block.ops
        if block_id == 0:
            extra.append(_linear("before_proj", impl, rows, dim, dim, x_dtype=stream))
            # c = before_proj(c) + x
            ops = (add(rows * dim, dtype=impl.matmul_dtype, other_dtype=stream), *ops)
        extra.append(_linear("after_proj", impl, rows, dim, dim, x_dtype=stream))
        children.append(
            attrs.evolve(
                block,
                name=str(block_id),
                class_name="VaceWanAttentionBlock",
                params={**block.params, "block_id": block_id},
                children=(*block.children, *extra),
                ops=ops,
            )
        )
    return Module(name="vace_blocks", class_name="ModuleList", stage=STAGE, children=tuple(children))


@functools.cache
def declare_vace_dit(variant: VaceVariant, impl: Implementation, reference_images: int = 0) -> Module:
    """The whole ``VaceWanModel`` of ``variant`` as ``impl`` runs it: one forward on ``B`` videos whose
    latent has ``reference_images`` extra frames in front."""
    base = declare_dit(variant.transformer, impl)
    repeated = next(child for child in base.children if isinstance(child, Repeated))
    context = attrs.evolve(variant.transformer, in_dim=variant.vace_in_dim)
    vace_patch = attrs.evolve(_patch_embedding(context, impl), name="vace_patch_embedding")
    children: list[Module | Repeated] = []
    for child in base.children:
        if child is repeated:
            children.append(_hinted_blocks(variant, impl, repeated.template))
            children.append(_vace_blocks(variant, impl, repeated.template))
        else:
            children.append(child)
    children.insert(1, vace_patch)
    ops = base.ops
    if impl.diffusers_dit:
        layers = len(variant.vace_layers)
        tokens = _tokens(variant.transformer)
        numel = B * tokens * variant.transformer.dim
        # WanVACETransformer3DModel.forward leaves the patch tokens transposed (no .contiguous() copy)
        # and concatenates the control tokens with their (empty) padding: one copy, even of one token
        patch_copy = clone(_more_than_one(tokens) * numel, dtype=BF16)
        ops = (
            # control_hidden_states_scale = new_ones(len(vace_layers))
            new_ones(layers, dtype=impl.matmul_dtype),
            cat([numel], dtype=BF16),
            *(op for op in base.ops if op != patch_copy),
            # each hint after its block
            *(_hint_ops(variant, impl) * layers),
        )
    root = attrs.evolve(
        base,
        class_name="VaceWanModel",
        params={
            **base.params,
            "model_type": "vace",
            "vace_layers": list(variant.vace_layers),
            "vace_in_dim": variant.vace_in_dim,
        },
        children=tuple(children),
        ops=ops,
    )
    return with_reference_frames(root, reference_images)
