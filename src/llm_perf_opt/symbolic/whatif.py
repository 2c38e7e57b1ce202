"""Algorithmic what-ifs as symbols in the formulas: sparse attention, step-cache reuse, CFG truncation.

Three symbols (:mod:`.symbols`) enter the cost expressions the way the workload symbols do, and
their defaults give today's figures exactly:

- ``attention_density`` ρ ∈ (0, 1]: a sparse-attention kernel computes ρ of the attention scores.
  :func:`with_attention_density` rewrites a declaration: every attention-class op (the registry's
  ``op_class``) of the chosen modules costs ``⌊ρ·flops⌋`` FLOPs and ``⌊ρ·vector_flops⌋`` element-wise
  FLOPs, plus the named overhead of a :class:`SparsePattern`.
- ``reused_steps`` k ∈ [0, S): a step cache (TeaCache, MagCache, FBCache) reuses the transformer
  output of k steps; :func:`dit_forwards` counts the forwards that still run.
- ``guided_fraction`` τ ∈ [0, 1]: classifier-free guidance runs on the first ``⌊τ·S⌋`` steps only
  (:func:`guided_steps`), the rule of diffusers' ``ClassifierFreeGuidance`` guider.

Where the k reused steps fall matters only when guidance is truncated (which forwards of a step are
skipped) and for a family that splits steps between transformers: they are counted as the *last*
k steps, so the computed steps are the first ``S − k`` (an approximation: caches spread the reused
steps over the middle and late steps and keep the first ones computed).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Final

import attrs
import numpy as np
import sympy
from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.module import Module, Repeated
from llm_perf_opt.symbolic.primitives import PRIMITIVES, VECTOR_FLOPS_PER_ELEMENT, OpCall, OpClass
from llm_perf_opt.symbolic.symbols import S, Workload, attention_density, guided_fraction, reused_steps

__all__ = [
    "SPARSE_PATTERNS",
    "WHATIFS_OFF",
    "SparsePattern",
    "WhatIfs",
    "check_whatifs",
    "computed_steps",
    "dit_forwards",
    "exact_whatifs",
    "guided_forwards",
    "guided_steps",
    "sparse_attention_cost",
    "with_attention_density",
]


WHATIFS_OFF: Final[dict[sympy.Symbol, sympy.Integer]] = {
    attention_density: sympy.Integer(1),
    reused_steps: sympy.Integer(0),
    guided_fraction: sympy.Integer(1),
}
"""Each what-if symbol's value when it is off (dense, no reuse, guidance on every step), for
``expr.subs(WHATIFS_OFF)``."""


# ─── validation ──────────────────────────────────────────────────────────────────────────────────


def _as_array(value: Any) -> np.ndarray[Any, Any]:
    return np.asarray(value, dtype=np.float64)


def _shown(value: Any, bad: np.ndarray[Any, Any]) -> str:
    """A scalar as written; of an array, the first bad value and how many are bad."""
    if np.ndim(value) == 0:
        return repr(value)
    first = float(np.broadcast_to(np.asarray(value), bad.shape)[bad].flat[0])
    shown = str(int(first)) if first.is_integer() else repr(first)
    return f"{shown} ({int(bad.sum())} of {bad.size} values)"


def check_whatifs(workload: Workload) -> None:
    """Raise naming the field unless ρ ∈ (0, 1], k is a whole number in [0, S) and τ ∈ [0, 1]
    (element-wise for arrays). Lazy (dask) values are not computed for it: a lazy grid's axes are
    checked where they are built (:meth:`~llm_perf_opt.report.grid.GridAxes.of`)."""
    if any(hasattr(value, "__dask_graph__") for value in (workload.steps, *workload.whatifs())):
        return
    density = _as_array(workload.attention_density)
    bad = ~((density > 0) & (density <= 1))
    if bad.any():
        raise LlmPerfOptError(
            f"attention_density: expected a fraction in (0, 1] of the attention scores computed, "
            f"got {_shown(workload.attention_density, bad)}"
        )
    if isinstance(workload.reused_steps, bool):
        raise LlmPerfOptError(
            f"reused_steps: expected a whole number of steps, got {workload.reused_steps!r}"
        )
    reused = _as_array(workload.reused_steps)
    bad = reused != np.floor(reused)
    if bad.any():
        raise LlmPerfOptError(
            f"reused_steps: expected a whole number of steps, got {_shown(workload.reused_steps, bad)}"
        )
    steps = _as_array(workload.steps)
    bad = ~((reused >= 0) & (reused < steps))
    if bad.any():
        step_values = np.broadcast_to(steps, bad.shape)[bad].flat[0]
        raise LlmPerfOptError(
            f"reused_steps: expected 0 ≤ reused_steps < steps ({int(step_values)}) reused steps, "
            f"got {_shown(np.broadcast_to(reused, bad.shape) if reused.ndim else workload.reused_steps, bad)}"
        )
    fraction = _as_array(workload.guided_fraction)
    bad = ~((fraction >= 0) & (fraction <= 1))
    if bad.any():
        raise LlmPerfOptError(
            f"guided_fraction: expected a fraction in [0, 1] of the steps with guidance, "
            f"got {_shown(workload.guided_fraction, bad)}"
        )


def _exact(name: str, value: object) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction | np.integer | np.floating):
        raise LlmPerfOptError(
            f"workload.{name}: exact evaluation needs one number, got {value!r}; use evaluate() for arrays"
        )
    if isinstance(value, float | np.floating):
        # the decimal the user wrote (0.3 is 3/10, not the nearest binary double)
        return Fraction(str(float(value)))
    return Fraction(int(value)) if isinstance(value, np.integer) else Fraction(value)


def exact_whatifs(workload: Workload) -> list[Fraction]:
    """ρ, k, τ as exact fractions for the exact evaluator (a float is read as the decimal it prints)."""
    names = ("attention_density", "reused_steps", "guided_fraction")
    return [_exact(name, value) for name, value in zip(names, workload.whatifs(), strict=True)]


# ─── steps and forwards ──────────────────────────────────────────────────────────────────────────

_ZERO: Final = sympy.Integer(0)


def guided_steps(steps: sympy.Expr = S) -> sympy.Expr:
    """Steps with guidance, ``⌊τ·steps⌋``: the first ones, as diffusers' ``ClassifierFreeGuidance``
    guider enables guidance on steps ``int(start·N) ≤ i < int(stop·N)`` (start 0, stop τ;
    ``diffusers/guiders/classifier_free_guidance.py``, diffusers 0.42)."""
    return sympy.floor(guided_fraction * steps)


def computed_steps(steps: sympy.Expr = S) -> sympy.Expr:
    """Steps whose transformer forwards run: ``steps − k`` (the reused ones are served by the cache)."""
    return steps - reused_steps


def _steps_below(end: sympy.Expr, first: sympy.Expr, count: sympy.Expr) -> sympy.Expr:
    """Steps of ``[first, first + count)`` below step ``end`` (``end`` itself for the whole run:
    0 ≤ end ≤ S always holds)."""
    if first == 0 and count == S:
        return end
    return sympy.Max(0, sympy.Min(end, first + count) - first)


def guided_forwards(first: sympy.Expr, count: sympy.Expr) -> sympy.Expr:
    """Computed, guided steps among the ``count`` steps that start at step ``first``: the steps of
    ``[first, first + count)`` below both ``⌊τ·S⌋`` (guided) and ``S − k`` (computed)."""
    return _steps_below(sympy.Min(guided_steps(), computed_steps()), first, count)


def dit_forwards(*, guidance: bool, first: sympy.Expr = _ZERO, count: sympy.Expr = S) -> sympy.Expr:
    """Transformer forwards of the ``count`` steps from step ``first`` (default: the whole run): one
    per computed step, a second (unconditional) one per computed, guided step.

    At k = 0 and τ = 1 this is ``2·count`` with guidance, ``count`` without; with guidance on all
    steps (τ = 1) a reuse of k steps removes exactly ``2·k`` forwards of the run.
    """
    computed = _steps_below(computed_steps(), first, count)
    if not guidance:
        return computed
    return computed + guided_forwards(first, count)


# ─── one value: the what-ifs of a run ─────────────────────────────────────────────────────────────


def _to_fraction(name: str, value: object) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        raise LlmPerfOptError(f"{name}: expected a number, got {value!r}")
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)


def _attention_density(value: object) -> Fraction:
    return _to_fraction("attention_density", value)


def _guided_fraction(value: object) -> Fraction:
    return _to_fraction("guided_fraction", value)


def _check_reused(_instance: object, _attribute: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LlmPerfOptError(f"reused_steps: expected a whole number of steps ≥ 0, got {value!r}")


def _check_pattern(_instance: object, _attribute: object, value: str) -> None:
    if value not in SPARSE_PATTERNS:
        raise LlmPerfOptError(
            f"sparse_attention: unknown pattern {value!r}, expected one of {', '.join(SPARSE_PATTERNS)}"
        )


def _check_cache(_instance: object, _attribute: object, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value):
        raise LlmPerfOptError(f"step_cache: expected a step-cache method's name or None, got {value!r}")


@frozen(kw_only=True)
class WhatIfs:
    """The what-ifs of one run, as one value: ρ, k, τ and the methods whose overheads it carries.

    The values (ρ, k, τ) are the workload's (:meth:`applied`); the methods pick the tree (the
    pattern of every self-attention core, the step cache's module, which the model family checks by
    name). The range of k against the steps is checked once the workload is known.

    Attributes:
        attention_density: ρ ∈ (0, 1], exact (a float is read as the decimal it prints).
        reused_steps: k ≥ 0 steps whose transformer forwards are reused.
        guided_fraction: τ ∈ [0, 1], exact.
        sparse_attention: the pattern of :data:`SPARSE_PATTERNS` (``ideal``: ρ alone).
        step_cache: the step-cache method (``None``: reuse alone, no check cost).
    """

    attention_density: Fraction = field(default=Fraction(1), converter=_attention_density)
    reused_steps: int = field(default=0, validator=_check_reused)
    guided_fraction: Fraction = field(default=Fraction(1), converter=_guided_fraction)
    sparse_attention: str = field(default="ideal", validator=_check_pattern)
    step_cache: str | None = field(default=None, validator=_check_cache)

    def __attrs_post_init__(self) -> None:
        check_whatifs(
            Workload(
                batch=1,
                frames=1,
                height=1,
                width=1,
                steps=self.reused_steps + 1,
                text_len=0,
                attention_density=self.attention_density,
                guided_fraction=self.guided_fraction,
            )
        )

    @property
    def off(self) -> bool:
        """Whether the run is today's: dense, uncached, fully guided, no method named."""
        return self == WhatIfs()

    def applied(self, workload: Workload) -> Workload:
        """``workload`` with these values of ρ, k, τ, checked against its steps."""
        result = attrs.evolve(
            workload,
            attention_density=self.attention_density,
            reused_steps=self.reused_steps,
            guided_fraction=self.guided_fraction,
        )
        check_whatifs(result)
        return result

    def notes(self) -> tuple[str, ...]:
        """What a report states: each what-if that is on, with its method."""
        notes = []
        if self.attention_density != 1 or self.sparse_attention != "ideal":
            notes.append(
                f"what-if sparse attention: self-attention computes ρ = {self.attention_density} of its "
                f"scores, pattern {self.sparse_attention} (its mask or index and selection added)"
            )
        if self.reused_steps or self.step_cache is not None:
            method = self.step_cache or "no named method (reuse alone, no check cost)"
            notes.append(
                f"what-if step cache: {self.reused_steps} steps' transformer forwards reused "
                f"(counted as the last steps), method {method}"
            )
        if self.guided_fraction != 1:
            notes.append(
                f"what-if CFG truncation: guidance on the first ⌊τ·steps⌋ steps, τ = {self.guided_fraction}"
            )
        return tuple(notes)


# ─── sparse attention ────────────────────────────────────────────────────────────────────────────


@frozen(kw_only=True)
class SparsePattern:
    """A sparse-attention method's named overhead on top of the ρ-scaled attention.

    Attributes:
        name: the pattern's name.
        block_q: query tokens per block of the block-sparse layout.
        block_k: key tokens per block.
        index_bytes_per_block: bytes the kernel reads per (query block, key block) entry of its
            mask or index: per dense entry for a block mask (``dense_index``), per computed block
            for a sparse index.
        dense_index: whether the mask has an entry per block pair (a boolean block mask) rather
            than per computed block (an index list).
        selection_flops_ratio: FLOPs of choosing the blocks per dense-attention FLOP (VSA's coarse
            attention over pooled blocks: ``1/(block_q·block_k)``).
        source: where the figures come from.
        approximate: what the overhead leaves out.
    """

    name: str
    block_q: int
    block_k: int
    index_bytes_per_block: int
    dense_index: bool
    selection_flops_ratio: Fraction
    source: str
    approximate: str


SPARSE_PATTERNS: Final[dict[str, SparsePattern]] = {
    pattern.name: pattern
    for pattern in (
        SparsePattern(
            name="ideal",
            block_q=1,
            block_k=1,
            index_bytes_per_block=0,
            dense_index=True,
            selection_flops_ratio=Fraction(0),
            source="no method: ρ alone",
            approximate="no mask, no selection: a lower bound of any sparse kernel",
        ),
        SparsePattern(
            name="radial",
            block_q=128,
            block_k=128,
            index_bytes_per_block=1,
            dense_index=True,
            selection_flops_ratio=Fraction(0),
            source=(
                "Radial Attention (arXiv 2506.19852; mit-han-lab/radial-attention, ported as "
                "LightX2V's radial_attn with block_size=128): a static boolean block mask, built once"
            ),
            approximate="the mask's construction (once per shape) is not counted",
        ),
        SparsePattern(
            name="svg",
            block_q=128,
            block_k=128,
            index_bytes_per_block=1,
            dense_index=True,
            selection_flops_ratio=Fraction(0),
            source=(
                "Sparse-VideoGen (arXiv 2502.01776; svg-project/Sparse-VideoGen "
                "scripts/wan_t2v_inference.sh: --num_sampled_rows 64 --sparsity 0.25): per head a "
                "spatial or temporal block mask chosen by online profiling"
            ),
            approximate=(
                "the online profiling (64 sampled query rows against all keys under both masks, about "
                "3·64/Sq of the dense attention: 0.6% at 32,760 tokens) and the token-layout "
                "permutation are not counted; the dense first steps and layers "
                "(--first_times_fp, --first_layers_fp) are not modelled"
            ),
        ),
        SparsePattern(
            name="vsa",
            block_q=64,
            block_k=64,
            index_bytes_per_block=4,
            dense_index=False,
            selection_flops_ratio=Fraction(1, 64 * 64),
            source=(
                "Video Sparse Attention (arXiv 2505.13389; FastVideo's VSA backend, "
                "VSA_TILE_SIZE = (4, 4, 4): 64-token cubes): coarse attention over mean-pooled cubes, "
                "top-k key cubes per query cube (int32 indices), block-sparse fine attention"
            ),
            approximate=(
                "the pooling, the top-k and the coarse output's gated sum are not counted; the coarse "
                "attention is counted as ρ-free dense attention over pooled tokens"
            ),
        ),
    )
}
"""The sparse-attention methods' overheads, by name (``ideal``: ρ alone)."""


def _pattern(name: str) -> SparsePattern:
    try:
        return SPARSE_PATTERNS[name]
    except KeyError:
        raise LlmPerfOptError(
            f"sparse_attention: unknown pattern {name!r}, expected one of {', '.join(SPARSE_PATTERNS)}"
        ) from None


def sparse_attention_cost(dense: Cost, pattern: SparsePattern) -> Cost:
    """The cost of one attention op computing ρ of its scores, from its dense cost.

    FLOPs and element-wise FLOPs (the scores' scale and softmax) are ``⌊ρ·dense⌋`` plus the pattern's
    selection FLOPs; bytes read gain the mask or index, counted per block of scores as
    ``⌈B·H·Sq·Sk/(block_q·block_k)⌉`` entries (times ρ for an index of computed blocks). The q, k, v
    reads and the output write stay: under the read-once convention every tile is still read once.
    """
    # the score count B·H·Sq·Sk, from the fused attention's per-score element-wise work
    scores = dense.vector_flops / VECTOR_FLOPS_PER_ELEMENT["attention_score"]
    blocks = sympy.ceiling(scores / (pattern.block_q * pattern.block_k))
    entries = blocks if pattern.dense_index else sympy.ceiling(attention_density * blocks)
    ratio = sympy.Rational(pattern.selection_flops_ratio.numerator, pattern.selection_flops_ratio.denominator)
    return attrs.evolve(
        dense,
        flops=sympy.floor(attention_density * dense.flops) + sympy.ceiling(ratio * dense.flops),
        vector_flops=sympy.floor(attention_density * dense.vector_flops),
        bytes_read=dense.bytes_read + pattern.index_bytes_per_block * entries,
    )


def _is_attention(call: OpCall) -> bool:
    entry = PRIMITIVES.get(call.primitive)
    return entry is not None and entry.op_class is OpClass.ATTENTION


def with_attention_density(
    declaration: Module, pattern: str = "ideal", *, where: Callable[[Module], bool]
) -> Module:
    """``declaration`` with the attention-class ops of every module ``where`` accepts costed by
    :func:`sparse_attention_cost` under ``pattern``; shared sub-declarations (a repeated block's
    template) are rewritten once and stay shared. Nothing else changes: ids, calls, other ops.
    """
    chosen = _pattern(pattern)
    result = _rewrite(declaration, chosen, where, {})
    assert isinstance(result, Module)
    return result


def _rewrite(
    item: Module | Repeated,
    pattern: SparsePattern,
    where: Callable[[Module], bool],
    memo: dict[int, tuple[Module | Repeated, Module | Repeated]],
) -> Module | Repeated:
    found = memo.get(id(item))
    if found is not None:
        return found[1]
    result: Module | Repeated
    if isinstance(item, Repeated):
        template = _rewrite(item.template, pattern, where, memo)
        assert isinstance(template, Module)
        result = item if template is item.template else attrs.evolve(item, template=template)
    else:
        ops = item.ops
        if where(item) and any(_is_attention(call) for call in ops):
            ops = tuple(_sparse_call(call, pattern) if _is_attention(call) else call for call in ops)
        children = tuple(_rewrite(child, pattern, where, memo) for child in item.children)
        unchanged = ops is item.ops and all(
            new is old for new, old in zip(children, item.children, strict=True)
        )
        result = item if unchanged else attrs.evolve(item, ops=ops, children=children)
    memo[id(item)] = (item, result)
    return result


@functools.lru_cache(maxsize=4096)
def _sparse_call(call: OpCall, pattern: SparsePattern) -> OpCall:
    return attrs.evolve(call, cost=sparse_attention_cost(call.cost, pattern))
