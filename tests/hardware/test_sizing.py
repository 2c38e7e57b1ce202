"""Sizing queries: answers that fit with the next size up not fitting, monotone in the budgets,
and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.sizing import (
    estimate_run,
    fewest_devices,
    largest_frames,
    largest_resolution,
    resolution_candidates,
    splits,
)


def test_largest_frames_fits_and_the_next_count_does_not() -> None:
    """The answer is 4k+1 frames that meet the time budget; 4 frames more do not."""
    answer = largest_frames("t2v-1.3b", "h100", 1, height=480, width=832, time_budget_s=120)
    assert (answer.answer - 1) % 4 == 0
    assert answer.at_answer.seconds <= 120 < answer.beyond.seconds  # type: ignore[union-attr]
    assert answer.beyond is not None and answer.beyond.frames == answer.answer + 4
    assert answer.limited_by == "time"
    check = estimate_run("t2v-1.3b", "h100", 1, frames=answer.answer, height=480, width=832)
    assert check.seconds == pytest.approx(answer.at_answer.seconds, rel=1e-9)


def test_a_bigger_budget_never_gives_fewer_frames() -> None:
    """Frame answers grow (weakly) with the time budget and with the memory budget."""
    by_time = [
        largest_frames("t2v-1.3b", "h100", 1, height=480, width=832, time_budget_s=budget).answer
        for budget in (60, 120, 240, 480)
    ]
    assert by_time == sorted(by_time) and by_time[0] < by_time[-1]
    by_memory = [
        largest_frames(
            "t2v-1.3b", "rtx4090", 1, height=480, width=832, memory_budget_gb=budget, t5_cpu=True
        ).answer
        for budget in (10, 14, 18, 22)
    ]
    assert by_memory == sorted(by_memory) and by_memory[0] < by_memory[-1]


def test_memory_limits_the_frames_on_a_small_card() -> None:
    """On one RTX 4090 with umT5 on the CPU and a 12 GB budget the 1.3B model is limited by memory."""
    answer = largest_frames("t2v-1.3b", "rtx4090", 1, height=480, width=832, memory_budget_gb=12, t5_cpu=True)
    assert answer.limited_by == "memory"
    assert answer.at_answer.peak_memory_gb <= 12 < answer.beyond.peak_memory_gb  # type: ignore[union-attr]


def test_largest_resolution_fits_and_the_next_height_does_not() -> None:
    """The answer is a multiple of 16 whose run meets the budget; the next height up does not."""
    answer = largest_resolution("t2v-14b", "h100", 8, time_budget_s=300)
    assert answer.answer % 16 == 0 and answer.at_answer.width % 16 == 0
    assert answer.at_answer.width / answer.at_answer.height == pytest.approx(16 / 9, abs=0.05)
    assert answer.at_answer.seconds <= 300 < answer.beyond.seconds  # type: ignore[union-attr]
    larger = largest_resolution("t2v-14b", "h100", 8, time_budget_s=600)
    assert larger.answer >= answer.answer


def test_resolution_candidates_keep_the_aspect() -> None:
    """Heights step by 16; widths follow the aspect, rounded to a multiple of 16."""
    heights, widths = resolution_candidates((16, 9), 720)
    assert heights[-1] == 720 and widths[-1] == 1280
    assert (widths % 16 == 0).all() and np.all(np.diff(widths) >= 0)


def test_fewest_devices_meets_the_budget_and_one_count_fewer_does_not() -> None:
    """The answer's run meets the budget; the count before it does not; a looser budget never
    needs more devices."""
    answer = fewest_devices("t2v-14b", "h100", time_budget_s=600)
    assert answer.answer == 4
    assert answer.at_answer.seconds <= 600 < answer.beyond.seconds  # type: ignore[union-attr]
    assert [figures.gpus for figures in answer.tried] == [1, 2, 4]
    counts = [
        fewest_devices("t2v-14b", "h100", time_budget_s=budget).answer for budget in (300, 600, 1200, 2400)
    ]
    assert counts == sorted(counts, reverse=True)


def test_splits_follow_the_heads() -> None:
    """Every Ulysses × ring split keeps the heads divisible by the Ulysses degree."""
    assert [(p.ulysses, p.ring) for p in splits(12, 8)] == [(4, 2), (2, 4), (1, 8)]
    assert [(p.ulysses, p.ring) for p in splits(40, 8)] == [(8, 1), (4, 2), (2, 4), (1, 8)]


def test_what_does_not_fit_is_an_error() -> None:
    """14B in fp32 on one 24 GB card fits no video; no device count meets an impossible budget."""
    with pytest.raises(LlmPerfOptError, match="frames: not even 1 frame of 832x480 fits on 1 rtx4090"):
        largest_frames("t2v-14b", "rtx4090", 1, height=480, width=832)
    with pytest.raises(LlmPerfOptError, match="device_counts: no count of 1, 2, 4, 8 h100-sxm meets 10 s"):
        fewest_devices("t2v-14b", "h100", time_budget_s=10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_budget_s": -1}, "time_budget_s: must be a number > 0, got -1"),
        ({"time_budget_s": math.nan}, "time_budget_s: must be a number > 0"),
        ({"memory_budget_gb": 0}, "memory_budget_gb: must be a number > 0, got 0"),
        ({"height": 470}, "height: must be a multiple of 16"),
        ({"steps": 0}, "steps: must be an integer ≥ 1, got 0"),
        ({"max_frames": 0}, "max_frames: must be an integer ≥ 1, got 0"),
    ],
)
def test_bad_queries_are_rejected(kwargs: dict[str, object], message: str) -> None:
    """Bad budgets, sizes and limits raise errors naming the field and the value."""
    query: dict[str, object] = {"height": 480, "width": 832, **kwargs}
    with pytest.raises(LlmPerfOptError, match=message):
        largest_frames("t2v-1.3b", "h100", 1, **query)  # type: ignore[arg-type]


def test_bad_aspect_is_rejected() -> None:
    """An aspect ratio must be two positive integers."""
    with pytest.raises(LlmPerfOptError, match=r"aspect: must be \(width, height\)"):
        largest_resolution("t2v-1.3b", "h100", 1, aspect=(16, 0))
