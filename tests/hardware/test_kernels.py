"""Attention kernels and GEMM precisions: rates, materialised scores, quantisation bytes."""

from __future__ import annotations

import pytest
import sympy

from llm_perf_opt.deployment.stacks import KERNEL_FAMILIES_OF
from llm_perf_opt.hardware.accelerators import get_accelerator
from llm_perf_opt.hardware.efficiency import FACTOR_SYMBOLS
from llm_perf_opt.hardware.kernels import (
    ATTENTION_KERNELS,
    GEMM_PRECISIONS,
    KERNEL_FAMILIES,
    KERNELS,
    MATERIALISED_SCORE_BYTES,
)
from llm_perf_opt.hardware.roofline import Maximum, kind_seconds, quantised_matmul_seconds, roofline_rule
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.primitives import VECTOR_FLOPS_PER_ELEMENT

H100 = get_accelerator("h100-sxm")
ETA = {symbol: 0.5 for symbol in FACTOR_SYMBOLS.values()}
FLASH = ("_scaled_dot_product_flash_attention", "bf16")


def _value(expr: sympy.Expr) -> float:
    return float(sympy.sympify(expr).xreplace(ETA).replace(Maximum, sympy.Max))


def test_the_stack_vocabulary_is_the_kernel_registry() -> None:
    """The stack records accept exactly the registry's kernels, on the families it names."""
    assert tuple(KERNEL_FAMILIES_OF) == ATTENTION_KERNELS
    for kernel in KERNELS.values():
        assert set(kernel.families) <= set(KERNEL_FAMILIES)
        assert KERNEL_FAMILIES_OF[kernel.name] == kernel.families


def test_sage_attention_runs_its_two_products_at_two_rates() -> None:
    """SageAttention2 on H100: half the FLOPs at the int8 peak and half at the fp8 peak, at its factor."""
    cost = Cost(flops=4 * 10**15, bytes_read=10**9, bytes_written=10**8)
    seconds = _value(kind_seconds(cost, roofline_rule(FLASH, "sage-int8-fp8"), H100))
    expected = (2e15 / (H100.peak_flops("int8") * 0.5)) + (2e15 / (H100.peak_flops("fp8") * 0.5))
    assert seconds == pytest.approx(expected, rel=1e-12)
    plain = _value(kind_seconds(cost, roofline_rule(FLASH, "fa3"), H100))
    assert plain == pytest.approx(4e15 / (H100.peak_flops("bf16") * 0.5), rel=1e-12)


def test_math_attention_moves_its_scores_through_memory() -> None:
    """The math path adds 8 bytes per score element at the element-wise bandwidth."""
    scores = 10**10
    cost = Cost(
        flops=4 * 128 * scores,
        vector_flops=VECTOR_FLOPS_PER_ELEMENT["attention_score"] * scores,
        bytes_read=10**9,
    )
    fused = _value(kind_seconds(cost, roofline_rule(FLASH, "sdpa-flash"), H100))
    math = _value(kind_seconds(cost, roofline_rule(FLASH, "sdpa-math"), H100))
    added = MATERIALISED_SCORE_BYTES * scores / (H100.memory_bandwidth * 0.5)
    assert math - fused == pytest.approx(added, rel=1e-9)


def test_fp8_gemms_read_half_the_bytes_and_pay_for_quantising() -> None:
    """fp8 per channel: the GEMM at the fp8 rate reads fp8 operands; quantising reads the bf16
    activations once and writes them in fp8 at the element-wise bandwidth."""
    activations = Cost(flops=2 * 10**12, bytes_read=4 * 10**8, bytes_written=10**8)
    weights = sympy.Integer(2 * 10**8)
    rule = roofline_rule(("addmm", "bf16"), "fa2", gemm_precision="fp8-per-channel")
    assert rule.precision == "fp8"
    seconds = _value(quantised_matmul_seconds(activations, weights, rule, H100, "fp8-per-channel", "fp8"))
    gemm = max(2e12 / (H100.peak_flops("fp8") * 0.5), (2e8 + 1e8 + 1e8) / (H100.memory_bandwidth * 0.5))
    quantise = 4e8 * 1.5 / (H100.memory_bandwidth * 0.5)
    assert seconds == pytest.approx(gemm + quantise, rel=1e-12)


def test_bf16_with_bf16_storage_is_the_plain_roofline() -> None:
    """The quantised path at bf16 changes nothing."""
    activations = Cost(flops=2 * 10**12, bytes_read=4 * 10**8, bytes_written=10**8)
    weights = sympy.Integer(2 * 10**8)
    rule = roofline_rule(("addmm", "bf16"), "fa2")
    whole = Cost(flops=activations.flops, bytes_read=activations.bytes_read + weights, bytes_written=10**8)
    assert _value(
        quantised_matmul_seconds(activations, weights, rule, H100, "bf16", "bf16")
    ) == pytest.approx(_value(kind_seconds(whole, rule, H100)), rel=1e-12)


def test_upcast_storage_casts_every_weight_per_use() -> None:
    """fp8 held, bf16 computed: the GEMM reads bf16 weights and a cast reads 1 and writes 2 bytes each."""
    activations = Cost(flops=10**9, bytes_read=10**6, bytes_written=10**6)
    weights = sympy.Integer(2 * 10**9)
    rule = roofline_rule(("addmm", "bf16"), "fa2")
    upcast = _value(quantised_matmul_seconds(activations, weights, rule, H100, "bf16", "fp8-upcast-bf16"))
    plain = _value(quantised_matmul_seconds(activations, weights, rule, H100, "bf16", "bf16"))
    assert upcast - plain == pytest.approx(1.5 * 2e9 / (H100.memory_bandwidth * 0.5), rel=1e-12)


def test_every_gemm_precision_reads_no_more_than_bf16() -> None:
    """Quantised operands are at most 2 bytes; only quantised ones pay a quantising pass."""
    for gemm in GEMM_PRECISIONS.values():
        assert 0 < gemm.operand_bytes <= 2
        assert (gemm.quantise_reads > 0) == (gemm.operand_bytes < 2)
