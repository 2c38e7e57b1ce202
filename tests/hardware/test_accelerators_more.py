"""The devices users asked for and board powers: in the one shipped table, figures that hang together."""

from __future__ import annotations

import pytest

from llm_perf_opt.hardware import ACCELERATORS, EFFICIENCIES
from llm_perf_opt.hardware.accelerators import Accelerator

ADDED = (
    "rtx4090d",
    "rtx6000-ada",
    "rtx-pro-6000-server",
    "l40",
    "a10",
    "b300",
    "gb300",
    "mi355x",
    "h20-141gb",
)


def test_the_devices_users_ask_for_are_all_there() -> None:
    """Every device users asked for is in the table, once, with the efficiency factors of its family."""
    for name in ADDED:
        device = ACCELERATORS[name]
        assert EFFICIENCIES.for_device(device).factor("matmul") > 0


@pytest.mark.parametrize("device", list(ACCELERATORS.values()), ids=list(ACCELERATORS))
def test_rates_rise_with_lower_precision_and_every_row_has_power_and_a_source(device: Accelerator) -> None:
    """tf32 ≤ bf16 = fp16 ≤ fp8 ≤ fp4 where present, fp32 is there, board power and source are given."""
    rates = device.peak_tflops
    ladder = [rates[p] for p in ("tf32", "bf16", "fp8", "fp4") if p in rates]
    assert ladder == sorted(ladder)
    assert rates["bf16"] == rates["fp16"]
    assert rates["fp32"] > 0
    assert device.board_power_w is not None and 0 < device.board_power_w <= 2000
    assert len(device.source) > 40


def test_derived_figures_follow_their_stated_arithmetic() -> None:
    """The figures derived from another row's are that row's times the stated ratio."""
    # RTX 4090 D: 114 of the 4090's 128 SMs at the same boost clock → 165.2 × 114/128 = 147.1 TFLOP/s.
    assert ACCELERATORS["rtx4090d"].peak_tflops["bf16"] == pytest.approx(165.2 * 114 / 128, abs=0.05)
    # H20 141GB: the H20's compute with more and faster memory.
    h20, big = ACCELERATORS["h20"], ACCELERATORS["h20-141gb"]
    assert {k: big.peak_tflops[k] for k in h20.peak_tflops} == dict(h20.peak_tflops)
    # Blackwell Ultra: dense FP4 is 3 × FP8 (1.5 × Blackwell's 2 ×): 15 PF vs 5 PF on GB300.
    assert ACCELERATORS["gb300"].peak_tflops["fp4"] == 3 * ACCELERATORS["gb300"].peak_tflops["fp8"]
    # MI355X: 7 xGMI links × 153.6 GB/s bidirectional / 2 = 537.6 GB/s per direction.
    assert ACCELERATORS["mi355x"].link_gbps_per_direction == pytest.approx(7 * 153.6 / 2)


def test_precision_a_device_lacks_is_an_error_listing_what_it_has() -> None:
    """fp8 on an A10 (Ampere) is an error that lists the A10's precisions."""
    from llm_perf_opt.errors import LlmPerfOptError

    with pytest.raises(
        LlmPerfOptError, match=r"precision: a10 has no 'fp8' rate; supported: fp32, tf32, bf16"
    ):
        ACCELERATORS["a10"].peak_flops("fp8")
