"""Efficiency factors: complete per family, per-device overrides, kernels per family, override files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import FAMILIES, get_accelerator
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, FACTOR_KEYS, load_efficiencies


def test_every_family_has_every_plain_factor_and_a_basis() -> None:
    """Each family lists every non-attention factor, at least one kernel, and why."""
    for family in FAMILIES:
        rows = EFFICIENCIES.families[family]
        assert all(key in rows for key in FACTOR_KEYS if not key.startswith("attention."))
        assert any(key.startswith("attention.") for key in rows)
        assert all(0 < value <= 1 for value in rows.values())
        assert EFFICIENCIES.basis[f"family:{family}"]


def test_device_rows_override_their_family() -> None:
    """H20's own kernel measurements replace the Hopper factors; an H100 keeps the family's."""
    h20 = EFFICIENCIES.for_device(get_accelerator("h20"))
    h100 = EFFICIENCIES.for_device(get_accelerator("h100"))
    # FA3-fp16 ~140 of 148 TFLOP/s on H20 vs the fitted Hopper value
    assert h20.factor("attention.fa3") == 0.95
    assert h100.factor("attention.fa3") == EFFICIENCIES.families["hopper"]["attention.fa3"]
    assert h20.factor("memory_elementwise") == h100.factor("memory_elementwise")


def test_kernels_that_do_not_run_on_a_family_are_errors() -> None:
    """FlashAttention-3 has no factor off Hopper; asking lists the kernels that do run."""
    ada = EFFICIENCIES.for_device(get_accelerator("rtx4090"))
    with pytest.raises(
        LlmPerfOptError,
        match=r"attention_kernel: 'fa3' has no efficiency on rtx4090 \(ada\); kernels for it: sdpa, fa2",
    ):
        ada.factor("attention.fa3")
    assert ada.attention_kernels == ("sdpa", "fa2")


def test_with_values_replaces_cells_and_checks_them() -> None:
    """with_values changes only the named cells and rejects bad scopes, keys and values."""
    table = EFFICIENCIES.with_values({("family:hopper", "matmul"): 0.5, ("device:h200", "link"): 0.9})
    assert table.value("family:hopper", "matmul") == 0.5
    assert table.for_device(get_accelerator("h200")).factor("link") == 0.9
    assert EFFICIENCIES.value("family:hopper", "matmul") != 0.5
    with pytest.raises(LlmPerfOptError, match=r"scope: expected 'family:<"):
        EFFICIENCIES.with_values({("family:volta", "matmul"): 0.5})
    with pytest.raises(LlmPerfOptError, match=r"family:hopper.speed: unknown efficiency factor"):
        EFFICIENCIES.with_values({("family:hopper", "speed"): 0.5})
    with pytest.raises(
        LlmPerfOptError, match=r"family:hopper.matmul: must be a fraction of peak in \(0, 1\], got 1.5"
    ):
        EFFICIENCIES.with_values({("family:hopper", "matmul"): 1.5})


def test_a_file_merges_key_by_key(tmp_path: Path) -> None:
    """A user file may give any subset of factors; the rest keep the shipped values."""
    path = tmp_path / "eff.json"
    path.write_text(
        json.dumps({"families": {"ada": {"factors": {"attention": {"fa2": 0.5}}, "basis": "my kernel"}}}),
        encoding="utf-8",
    )
    table = load_efficiencies(path)
    assert table.value("family:ada", "attention.fa2") == 0.5
    assert table.value("family:ada", "matmul") == EFFICIENCIES.value("family:ada", "matmul")
    assert table.basis["family:ada"] == "my kernel"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"families": {"volta": {"factors": {}}}}, r"families.volta: unknown family"),
        (
            {"families": {"ada": {"factors": {"matmul": 2}}}},
            r"families.ada.factors.matmul: must be a fraction",
        ),
        (
            {"families": {"ada": {"factors": {"speed": 0.5}}}},
            r"families.ada.factors.speed: unknown factor",
        ),
        (
            {"families": {"ada": {"factors": {"attention": {"fa9": 0.5}}}}},
            r"factors.attention.fa9: unknown attention kernel; accepted: sdpa, fa2, fa3",
        ),
        ({"devices": {"h20": {"basis": "x"}}}, r"devices.h20.factors: required field is missing"),
        ({"extra": 1}, r"eff.json: extra: unknown field"),
    ],
)
def test_override_file_errors(tmp_path: Path, data: object, message: str) -> None:
    """Every problem in an efficiency file names the file, the field and the bad value."""
    path = tmp_path / "eff.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LlmPerfOptError, match=message):
        load_efficiencies(path)
