"""The Wan2.1 pipeline with the what-ifs: sparse self-attention, step-cache reuse, CFG truncation."""

from __future__ import annotations

from fractions import Fraction

import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_perf_opt.symbolic import Workload, build_tree, compile_tree
from llm_perf_opt.symbolic.cost import PER_CALL_METRICS
from llm_perf_opt.symbolic.formula import formula, to_latex
from llm_perf_opt.symbolic.primitives import PRIMITIVES, OpClass
from llm_perf_opt.symbolic.symbols import S, attention_density, guided_fraction, reused_steps
from llm_perf_opt.symbolic.whatif import WHATIFS_OFF
from llm_perf_opt.wan2_1.dit import declare_dit
from llm_perf_opt.wan2_1.implementation import get_implementation
from llm_perf_opt.wan2_1.pipeline import cached_residual_bytes, pipeline_tree
from llm_perf_opt.wan2_1.variants import get_variant

VARIANT = get_variant("t2v-1.3b")
OFFICIAL = get_implementation("official")
TREE = pipeline_tree(VARIANT, OFFICIAL, True)
SELF_ATTENTION = "diffusion.blocks.0.self_attn"

workloads = st.builds(
    dict,
    batch=st.integers(1, 3),
    frames=st.integers(0, 40).map(lambda n: 4 * n + 1),
    height=st.integers(1, 60).map(lambda n: 16 * n),
    width=st.integers(1, 80).map(lambda n: 16 * n),
    steps=st.integers(1, 60),
    text_len=st.just(512),
)


def _exact(tree: object, fields: dict[str, int], **whatifs: object) -> dict[str, dict[str, int]]:
    return compile_tree(tree).evaluate_exact(Workload(**fields, **whatifs))  # type: ignore[arg-type]


def _dense_attention_core(fields: dict[str, int]) -> int:
    """The self-attention core's dense FLOPs in one run: its attention-class ops' breakdown at ρ = 1."""
    node = TREE[SELF_ATTENTION]
    values = {**Workload(**fields).subs(), **WHATIFS_OFF}  # type: ignore[arg-type]
    core = sum(
        cost.flops
        for (primitive, _), cost in node.breakdown.items()
        if PRIMITIVES[primitive].op_class is OpClass.ATTENTION
    )
    return int(sympy.sympify(core).subs(values))


@settings(max_examples=25, deadline=None)
@given(fields=workloads)
def test_a_quarter_density_computes_exactly_a_quarter_of_the_attention_core(fields: dict[str, int]) -> None:
    """At ρ = 1/4 each self-attention saves exactly ¾ of its dense core, the run 30 times that."""
    dense = _exact(TREE, fields)
    quarter = _exact(TREE, fields, attention_density=Fraction(1, 4))
    core = _dense_attention_core(fields)
    assert core % 4 == 0
    saved = dense[SELF_ATTENTION]["flops"] - quarter[SELF_ATTENTION]["flops"]
    assert saved == core - core // 4
    assert dense["pipeline"]["flops"] - quarter["pipeline"]["flops"] == VARIANT.num_layers * saved
    assert quarter["diffusion.blocks.0.cross_attn"] == dense["diffusion.blocks.0.cross_attn"]
    assert quarter["text_encoder"] == dense["text_encoder"] and quarter["vae"] == dense["vae"]


@settings(max_examples=25, deadline=None)
@given(fields=workloads, data=st.data())
def test_reusing_k_steps_removes_exactly_their_forwards(fields: dict[str, int], data: st.DataObject) -> None:
    """k reused of S steps scale every transformer module's per-call figures by exactly (S − k)/S."""
    steps = fields["steps"]
    reused = data.draw(st.integers(0, steps - 1))
    base = _exact(TREE, fields)
    cached = _exact(TREE, fields, reused_steps=reused)
    for module_id, figures in base.items():
        for metric in PER_CALL_METRICS:
            if module_id.startswith("diffusion"):
                assert cached[module_id][metric] * steps == figures[metric] * (steps - reused), module_id
            elif module_id != "pipeline":
                assert cached[module_id][metric] == figures[metric], module_id
    one_forward = base["diffusion"]["flops"] // (2 * steps)
    assert base["pipeline"]["flops"] - cached["pipeline"]["flops"] == 2 * reused * one_forward


@settings(max_examples=15, deadline=None)
@given(fields=workloads)
def test_whatifs_off_give_the_dense_uncached_guided_run_module_by_module(fields: dict[str, int]) -> None:
    """At ρ = 1, k = 0, τ = 1 each transformer module is 2·S forwards of the plain declaration."""
    plain = _exact(build_tree(declare_dit(VARIANT, OFFICIAL), "diffusion"), fields)
    run = _exact(TREE, fields, attention_density=1, reused_steps=0, guided_fraction=1)
    forwards = 2 * fields["steps"]
    for module_id, figures in plain.items():
        for metric, value in figures.items():
            expected = value * forwards if metric in PER_CALL_METRICS else value
            assert run[module_id][metric] == expected, (module_id, metric)


@settings(max_examples=15, deadline=None)
@given(fields=workloads)
def test_no_guided_step_is_the_unguided_transformer(fields: dict[str, int]) -> None:
    """τ = 0 runs the transformer and the scheduler exactly as a run without guidance (a distilled,
    CFG-off run), with no guidance combination."""
    truncated = _exact(TREE, fields, guided_fraction=0)
    unguided = _exact(pipeline_tree(VARIANT, OFFICIAL, False), fields)
    for module_id, figures in unguided.items():
        if module_id.startswith(("diffusion", "scheduler")):
            assert truncated[module_id] == figures, module_id
    own = {
        m: truncated["pipeline"][m] - sum(truncated[c][m] for c in TREE["pipeline"].children)
        for m in ("flops", "vector_flops")
    }
    assert own == {"flops": 0, "vector_flops": 0}


def test_guidance_on_the_first_half_of_the_steps() -> None:
    """τ = 1/2 of 50 steps: 25 guided steps, 75 forwards, guidance combined 25 times."""
    fields = {"batch": 1, "frames": 81, "height": 480, "width": 832, "steps": 50, "text_len": 512}
    full = _exact(TREE, fields)
    half = _exact(TREE, fields, guided_fraction=Fraction(1, 2))
    assert half["diffusion"]["flops"] * 100 == full["diffusion"]["flops"] * 75
    assert half["scheduler"] == full["scheduler"]


def test_teacache_stores_and_reuses_the_residual() -> None:
    """TeaCache at 480p, 50 steps, 10 reused: 80 stores and 20 reuses of the fp32 residual (32,760 ×
    1,536 elements), a check on all 100 forwards, and two residuals held (cond and uncond)."""
    tree = pipeline_tree(VARIANT, OFFICIAL, True, "ideal", "teacache")
    fields = {"batch": 1, "frames": 81, "height": 480, "width": 832, "steps": 50, "text_len": 512}
    figures = _exact(tree, fields, reused_steps=10)
    residual = 21 * 30 * 52 * 1536  # latent frames · ⌊60/2⌋ · ⌊104/2⌋ tokens · dim = 50,319,360
    assert figures["step_cache.store_residual"]["vector_flops"] == 80 * residual
    assert figures["step_cache.apply_residual"]["vector_flops"] == 20 * residual
    assert figures["step_cache.apply_residual"]["bytes_written"] == 20 * residual * 4
    assert figures["step_cache.check"]["vector_flops"] == 100 * 2 * 6 * 1536
    held = cached_residual_bytes(VARIANT, OFFICIAL, guidance=True).subs(Workload(**fields).subs())  # type: ignore[arg-type]
    assert held == 2 * residual * 4 == 402_554_880
    plain = _exact(TREE, fields, reused_steps=10)
    assert figures["diffusion"] == plain["diffusion"]


def test_sparse_patterns_change_only_the_self_attention_core() -> None:
    """A pattern adds its overhead to the self-attention cores alone: VSA's coarse FLOPs and index."""
    tree = pipeline_tree(VARIANT, OFFICIAL, True, "vsa")
    fields = {"batch": 1, "frames": 81, "height": 480, "width": 832, "steps": 50, "text_len": 512}
    vsa = _exact(tree, fields, attention_density=Fraction(1, 4))
    ideal = _exact(TREE, fields, attention_density=Fraction(1, 4))
    core = _dense_attention_core(fields)
    # coarse attention over 64-token cubes: dense/4096 per call, summed over 100 forwards
    assert vsa[SELF_ATTENTION]["flops"] - ideal[SELF_ATTENTION]["flops"] == core // 4096
    assert vsa["diffusion.blocks.0.ffn"] == ideal["diffusion.blocks.0.ffn"]


def test_vace_self_attention_is_sparse_and_its_forwards_follow_the_whatifs() -> None:
    """The VACE tree shares the rules: every self-attention core (main and VACE blocks) carries ρ,
    and its transformer runs (S − k) + min(⌊τ·S⌋, S − k) forwards."""
    from llm_perf_opt.wan2_1.vace import get_vace_variant
    from llm_perf_opt.wan2_1.vace_pipeline import pipeline_tree as vace_tree

    tree = vace_tree(get_vace_variant("vace-1.3b"), OFFICIAL, True, 0)
    attentions = [node for node in tree if node.class_name == "WanSelfAttention"]
    assert attentions and all(attention_density in node.aggregate.flops.free_symbols for node in attentions)
    assert {n.id.split(".")[1] for n in attentions} == {"blocks", "vace_blocks"}
    calls = tree["diffusion"].calls.subs({S: 50, reused_steps: 10, guided_fraction: sympy.Rational(1, 2)})
    assert calls == 40 + 25


def test_golden_latex_of_a_self_attention_with_the_whatifs() -> None:
    """T2V-1.3B's self-attention FLOPs per run: projections, ρ times the core, over the forwards."""
    # q, k, v, o: 4·2·B·T·1536² = 73728·B·H·W·lf with T = lf·(H/16)·(W/16), lf = ⌊(F−1)/4⌋+1;
    # core: 4·B·12·T²·128 = (3/32)·B·H²·W²·lf², at density ρ; forwards (S − k) + min(S − k, ⌊τ·S⌋)
    expr = formula(TREE, SELF_ATTENTION, "flops")
    lf = r"\left(\left\lfloor{\frac{\mathrm{frames} - 1}{4}}\right\rfloor + 1\right)"
    assert to_latex(expr) == (
        r"\left(73728 \cdot \mathrm{batch} \cdot \mathrm{height} \cdot \mathrm{width} \cdot " + lf + r" + "
        r"\left\lfloor{\frac{3 \cdot \mathrm{attention\_density} \cdot \mathrm{batch} \cdot "
        r"\mathrm{height}^{2} \cdot \mathrm{width}^{2} \cdot " + lf + r"^{2}}{32}}\right\rfloor\right) \cdot "
        r"\left(- \mathrm{reused\_steps} + \mathrm{steps} + \min\left(- \mathrm{reused\_steps} + "
        r"\mathrm{steps}, \left\lfloor{\mathrm{guided\_fraction} \cdot \mathrm{steps}}"
        r"\right\rfloor\right)\right)"
    )
    assert sympy.expand(expr - TREE[SELF_ATTENTION].aggregate.flops) == 0
