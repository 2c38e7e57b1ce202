"""The added devices and board powers: same schema as the shipped table, figures that hang together."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from llm_perf_opt.hardware import ACCELERATORS, PRECISIONS, load_accelerators

_FOLDER = resources.files("llm_perf_opt.hardware")
_MORE: list[dict[str, Any]] = json.loads(_FOLDER.joinpath("accelerators_more.json").read_text("utf-8"))[
    "accelerators"
]
_POWER: list[dict[str, Any]] = json.loads(_FOLDER.joinpath("board_power.json").read_text("utf-8"))[
    "board_power"
]
_BY_NAME = {row["name"]: row for row in _MORE}
_NEW_KEYS = ("board_power_w",)
_NEW_RATES = ("int8",)
_NEW_FAMILIES = ("cdna4",)


def _as_today(row: dict[str, Any]) -> dict[str, Any]:
    """The row without what today's loader does not know yet (int8 rates, board power)."""
    trimmed = {key: value for key, value in row.items() if key not in _NEW_KEYS}
    trimmed["peak_tflops"] = {k: v for k, v in row["peak_tflops"].items() if k not in _NEW_RATES}
    return trimmed


def test_the_devices_users_ask_for_are_all_there() -> None:
    """Every device users ask for and the table lacked is added, each once."""
    assert sorted(_BY_NAME) == sorted(
        [
            "rtx4090d",
            "rtx6000-ada",
            "rtx-pro-6000-server",
            "l40",
            "a10",
            "b300",
            "gb300",
            "mi355x",
            "h20-141gb",
        ]
    )


def test_rows_load_with_todays_loader_once_the_new_keys_are_set_aside(tmp_path: Path) -> None:
    """Apart from int8, board_power_w and the cdna4 family, every row is in today's schema."""
    rows = [_as_today(row) for row in _MORE if row["family"] not in _NEW_FAMILIES]
    path = tmp_path / "more.json"
    path.write_text(json.dumps({"schema_version": 1, "accelerators": rows}), encoding="utf-8")
    catalog = load_accelerators(path)
    assert all(row["name"] in catalog for row in rows)
    assert all(set(row["peak_tflops"]) <= {*PRECISIONS, *_NEW_RATES} for row in _MORE)


def test_no_added_name_or_alias_shadows_a_shipped_device() -> None:
    """A new row's name and aliases collide with no shipped device's name or alias."""
    shipped = {key for device in ACCELERATORS.values() for key in (device.name, *device.aliases)}
    for row in _MORE:
        assert not {row["name"], *row["aliases"]} & shipped, row["name"]


@pytest.mark.parametrize("row", _MORE, ids=[row["name"] for row in _MORE])
def test_rates_rise_with_lower_precision_and_every_row_has_power_and_a_source(row: dict[str, Any]) -> None:
    """tf32 ≤ bf16 = fp16 ≤ fp8 ≤ fp4 where present, fp32 is there, board power and source are given."""
    rates = row["peak_tflops"]
    ladder = [rates[p] for p in ("tf32", "bf16", "fp8", "fp4") if p in rates]
    assert ladder == sorted(ladder)
    assert rates["bf16"] == rates["fp16"]
    assert rates["fp32"] > 0
    assert 0 < row["board_power_w"] <= 2000
    assert row["memory_gb"] > 0 and row["memory_bandwidth_tbps"] > 0
    assert len(row["source"]) > 40


def test_derived_figures_follow_their_stated_arithmetic() -> None:
    """The figures derived from another row's are that row's times the stated ratio."""
    # RTX 4090 D: 114 of the 4090's 128 SMs at the same boost clock → 165.2 × 114/128 = 147.1 TFLOP/s.
    assert _BY_NAME["rtx4090d"]["peak_tflops"]["bf16"] == pytest.approx(165.2 * 114 / 128, abs=0.05)
    # H20 141GB: the H20's compute with more and faster memory.
    h20 = ACCELERATORS["h20"]
    assert {k: _BY_NAME["h20-141gb"]["peak_tflops"][k] for k in h20.peak_tflops} == dict(h20.peak_tflops)
    # Blackwell Ultra: dense FP4 is 3 × FP8 (1.5 × Blackwell's 2 ×): 15 PF vs 5 PF on GB300.
    assert _BY_NAME["gb300"]["peak_tflops"]["fp4"] == 3 * _BY_NAME["gb300"]["peak_tflops"]["fp8"]
    # MI355X: 7 xGMI links × 153.6 GB/s bidirectional / 2 = 537.6 GB/s per direction.
    assert _BY_NAME["mi355x"]["link_gbps_per_direction"] == pytest.approx(7 * 153.6 / 2)
    # L40: half the L40S's tensor rates at the same memory (181.05 vs 362.05 BF16).
    assert _BY_NAME["l40"]["peak_tflops"]["fp8"] == 2 * _BY_NAME["l40"]["peak_tflops"]["bf16"] - 0.1


def test_every_shipped_device_has_one_board_power() -> None:
    """board_power.json names each shipped device exactly once with a positive power and a source."""
    assert sorted(row["name"] for row in _POWER) == sorted(ACCELERATORS)
    assert all(0 < row["board_power_w"] <= 2000 and row["source"] for row in _POWER)
