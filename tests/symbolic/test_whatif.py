"""The what-if symbols: sparse attention (ρ), step-cache reuse (k) and CFG truncation (τ)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic import B, F, H, Module, Workload, build_tree, compile_tree
from llm_perf_opt.symbolic.dtypes import BF16
from llm_perf_opt.symbolic.formula import formula, to_latex
from llm_perf_opt.symbolic.primitives import PRIMITIVES, OpClass, scaled_dot_product_attention
from llm_perf_opt.symbolic.symbols import S, attention_density, guided_fraction, reused_steps
from llm_perf_opt.symbolic.whatif import (
    SPARSE_PATTERNS,
    WhatIfs,
    check_whatifs,
    dit_forwards,
    guided_steps,
    sparse_attention_cost,
    with_attention_density,
)

TOKENS = sympy.floor(F / 4) * sympy.floor(H / 16)


def _attention_module() -> Module:
    # q, k, v: [B, 2, tokens, 8]
    core = scaled_dot_product_attention(B, 2, TOKENS, TOKENS, 8, dtype=BF16)
    return Module(name="attn", class_name="Attention", stage="diffusion", ops=(core,))


def _workload(**whatifs: object) -> Workload:
    return Workload(batch=1, frames=81, height=480, width=832, steps=50, text_len=512, **whatifs)  # type: ignore[arg-type]


def test_golden_latex_of_a_sparse_attention_formula() -> None:
    """ρ appears in the LaTeX of a sparse attention core by its name, inside the floor of whole FLOPs."""
    tree = build_tree(with_attention_density(_attention_module(), where=lambda _: True), "toy")
    expr = formula(tree, "toy", "flops")
    # 4·B·2·T²·8 = 64·B·T² with T = ⌊F/4⌋·⌊H/16⌋
    assert to_latex(expr) == (
        r"\left\lfloor{64 \cdot \mathrm{attention\_density} \cdot \mathrm{batch} \cdot "
        r"\left\lfloor{\frac{\mathrm{frames}}{4}}\right\rfloor^{2} \cdot "
        r"\left\lfloor{\frac{\mathrm{height}}{16}}\right\rfloor^{2}}\right\rfloor"
    )
    dense = build_tree(_attention_module(), "toy").root.aggregate.flops
    assert expr.subs(attention_density, 1) == dense


def test_golden_latex_of_the_forwards_of_a_run() -> None:
    """The transformer's forwards with guidance read (S − k) + min(S − k, ⌊τ·S⌋) in LaTeX."""
    assert to_latex(dit_forwards(guidance=True)) == (
        r"- \mathrm{reused\_steps} + \mathrm{steps} + \min\left(- \mathrm{reused\_steps} + "
        r"\mathrm{steps}, \left\lfloor{\mathrm{guided\_fraction} \cdot \mathrm{steps}}\right\rfloor\right)"
    )
    assert to_latex(dit_forwards(guidance=False)) == r"- \mathrm{reused\_steps} + \mathrm{steps}"


def test_modules_not_chosen_and_other_ops_are_untouched() -> None:
    """The transform rewrites only attention-class ops of the modules it is told to, and keeps the
    declaration itself when nothing matches."""
    module = _attention_module()
    assert with_attention_density(module, where=lambda _: False) is module
    rewritten = with_attention_density(module, where=lambda m: m.name == "attn")
    assert rewritten is not module
    assert all(PRIMITIVES[op.primitive].op_class is OpClass.ATTENTION for op in rewritten.ops)


def test_vsa_overhead_is_its_coarse_attention_and_int32_block_index() -> None:
    """VSA adds ⌈dense/4096⌉ coarse-attention FLOPs and 4 bytes per computed 64×64 block of scores."""
    dense = scaled_dot_product_attention(1, 40, 32760, 32760, 128, dtype=BF16).cost
    cost = sparse_attention_cost(dense, SPARSE_PATTERNS["vsa"])
    quarter = cost.flops.subs(attention_density, sympy.Rational(1, 4))
    # 4·1·40·32760²·128 = 21,979,496,448,000 dense FLOPs; a quarter: 5,494,874,112,000;
    # coarse attention over 64-token cubes: dense/4096 = 40·32760²·5 = 5,366,088,000
    assert dense.flops == 21_979_496_448_000
    assert quarter == 5_494_874_112_000 + 5_366_088_000
    # 40·32760² = 42,928,704,000 scores in ⌈·/4096⌉ = 10,480,641 blocks of 64×64;
    # ¼ computed: ⌈2,620,160.25⌉ = 2,620,161 int32 indices
    extra = cost.bytes_read.subs(attention_density, sympy.Rational(1, 4)) - dense.bytes_read
    assert extra == 4 * 2_620_161
    assert cost.bytes_written == dense.bytes_written


def test_a_block_mask_pattern_reads_one_byte_per_block_whatever_the_density() -> None:
    """Radial attention's boolean block mask (128×128 blocks) is read whole at any density."""
    dense = scaled_dot_product_attention(1, 12, 32760, 32760, 128, dtype=BF16).cost
    cost = sparse_attention_cost(dense, SPARSE_PATTERNS["radial"])
    # 12·32760² = 12,878,611,200 scores / 128² = 786,048.05 → 786,049 mask bytes
    assert cost.bytes_read - dense.bytes_read == 786_049


def test_unknown_pattern_is_an_error() -> None:
    """An unknown sparse-attention pattern is an error naming the field and the accepted names."""
    with pytest.raises(LlmPerfOptError, match=r"sparse_attention: unknown pattern 'nope'.*ideal"):
        with_attention_density(_attention_module(), "nope", where=lambda _: True)


def test_forwards_follow_the_guider_rounding_rule() -> None:
    """Guided steps are int(τ·S) (diffusers' guider), so 7 steps at τ = ½ guide 3 and run 10 forwards."""
    values = {S: 7, guided_fraction: sympy.Rational(1, 2), reused_steps: 0}
    assert guided_steps().subs(values) == 3
    assert dit_forwards(guidance=True).subs(values) == 10
    assert dit_forwards(guidance=False).subs(values) == 7


@settings(deadline=None)
@given(steps=st.integers(1, 200), data=st.data(), guidance=st.booleans())
def test_reuse_removes_exactly_its_forwards(steps: int, data: st.DataObject, guidance: bool) -> None:
    """With guidance on every step, k reused steps remove 2·k forwards (k without guidance)."""
    reused = data.draw(st.integers(0, steps - 1))
    values = {S: steps, reused_steps: reused, guided_fraction: 1}
    per_step = 2 if guidance else 1
    assert dit_forwards(guidance=guidance).subs(values) == per_step * (steps - reused)


@settings(deadline=None)
@given(steps=st.integers(1, 200), data=st.data())
def test_split_forwards_add_up_to_the_whole_run(steps: int, data: st.DataObject) -> None:
    """Forwards of the steps before and after any split point add up to the run's, at any k and τ."""
    reused = data.draw(st.integers(0, steps - 1))
    split = data.draw(st.integers(0, steps))
    fraction = data.draw(st.fractions(0, 1, max_denominator=100))
    values = {
        S: steps,
        reused_steps: reused,
        guided_fraction: sympy.Rational(fraction.numerator, fraction.denominator),
    }
    whole = dit_forwards(guidance=True).subs(values)
    first = dit_forwards(guidance=True, count=sympy.Integer(split)).subs(values)
    rest = dit_forwards(guidance=True, first=sympy.Integer(split), count=steps - sympy.Integer(split)).subs(
        values
    )
    assert first + rest == whole
    assert whole == (steps - reused) + min(int(fraction * steps), steps - reused)


@pytest.mark.parametrize(
    ("whatifs", "field"),
    [
        ({"attention_density": 0}, "attention_density"),
        ({"attention_density": 1.5}, "attention_density"),
        ({"attention_density": np.array([0.5, -1.0])}, "attention_density"),
        ({"reused_steps": 50}, "reused_steps"),
        ({"reused_steps": -1}, "reused_steps"),
        ({"reused_steps": 2.5}, "reused_steps"),
        ({"guided_fraction": -0.1}, "guided_fraction"),
        ({"guided_fraction": 2}, "guided_fraction"),
    ],
)
def test_out_of_range_whatifs_are_errors_naming_the_field(whatifs: dict[str, object], field: str) -> None:
    """ρ outside (0, 1], k outside [0, S) or not whole, τ outside [0, 1]: one error naming the field."""
    with pytest.raises(LlmPerfOptError, match=rf"^{field}: expected"):
        check_whatifs(_workload(**whatifs))
    tree = build_tree(_attention_module(), "toy")
    with pytest.raises(LlmPerfOptError, match=rf"^{field}: expected"):
        compile_tree(tree).evaluate(_workload(**whatifs))


def test_exact_evaluation_reads_a_float_as_its_decimal() -> None:
    """0.3 is 3/10 to the exact evaluator, and an array is refused there with the field's name."""
    tree = build_tree(with_attention_density(_attention_module(), where=lambda _: True), "toy")
    evaluator = compile_tree(tree)
    dense = evaluator.evaluate_exact(_workload())["toy"]["flops"]
    assert evaluator.evaluate_exact(_workload(attention_density=0.3))["toy"]["flops"] == dense * 3 // 10
    assert evaluator.evaluate_exact(_workload(attention_density=Fraction(1, 4)))["toy"]["flops"] == dense // 4
    with pytest.raises(
        LlmPerfOptError, match=r"workload\.attention_density: exact evaluation needs one number"
    ):
        evaluator.evaluate_exact(_workload(attention_density=np.array([0.5])))


@settings(max_examples=30, deadline=None)
@given(rho=st.fractions(Fraction(1, 1000), 1, max_denominator=1000), frames=st.integers(1, 400))
def test_grid_equals_exact_at_any_density(rho: Fraction, frames: int) -> None:
    """The numpy evaluator and the exact one agree on ⌊ρ·FLOPs⌋ (to float64's rounding)."""
    tree = build_tree(with_attention_density(_attention_module(), where=lambda _: True), "toy")
    evaluator = compile_tree(tree)
    workload = Workload(
        batch=1, frames=frames, height=480, width=832, steps=1, text_len=0, attention_density=rho
    )
    exact = evaluator.evaluate_exact(workload)["toy"]["flops"]
    grid = Workload(
        batch=1, frames=frames, height=480, width=832, steps=1, text_len=0, attention_density=float(rho)
    )
    assert evaluator.evaluate(grid)["toy", "flops"] == pytest.approx(exact, rel=1e-12, abs=1)


def test_whatifs_value_checks_its_fields_and_applies_to_a_workload() -> None:
    """WhatIfs is one checked value: off by default, applied to a workload it sets ρ, k, τ and checks
    k against the steps; each bad field is an error naming it."""
    assert WhatIfs().off and not WhatIfs(reused_steps=1).off
    applied = WhatIfs(attention_density=0.25, reused_steps=10, guided_fraction=Fraction(1, 2)).applied(
        _workload()
    )
    assert applied.whatifs() == (Fraction(1, 4), 10, Fraction(1, 2))
    for options, field in (
        ({"attention_density": 0}, "attention_density"),
        ({"attention_density": "half"}, "attention_density"),
        ({"reused_steps": -1}, "reused_steps"),
        ({"guided_fraction": 1.5}, "guided_fraction"),
        ({"sparse_attention": "dense"}, "sparse_attention"),
        ({"step_cache": ""}, "step_cache"),
    ):
        with pytest.raises(LlmPerfOptError, match=rf"^{field}: "):
            WhatIfs(**options)  # type: ignore[arg-type]
    with pytest.raises(LlmPerfOptError, match=r"^reused_steps: expected 0 ≤ reused_steps < steps \(50\)"):
        WhatIfs(reused_steps=50).applied(_workload())
    notes = WhatIfs(guided_fraction=0.5, step_cache="teacache").notes()
    assert notes == (
        "what-if step cache: 0 steps' transformer forwards reused (counted as the last steps), "
        "method teacache",
        "what-if CFG truncation: guidance on the first ⌊τ·steps⌋ steps, τ = 1/2",
    )
