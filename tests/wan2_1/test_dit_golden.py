"""The analytic transformer against the stored reference records, id by id, without torch."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.wan2_1.check import compare_with_record

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "dit"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))


def _record(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def test_every_variant_and_standard_workload_has_a_golden_file() -> None:
    """Five variants at three workloads, plus 1280×720 for the four 14B variants."""
    assert len(GOLDEN_FILES) == 19


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_exact_agreement_with_golden_record(path: Path) -> None:
    """FLOPs, parameters and eager bytes of every module id, and attention-op bytes, equal the reference."""
    rows = compare_with_record(_record(path))
    mismatches = [row for row in rows if not row.matches]
    assert not mismatches, mismatches[:5]
    compared = {row.metric for row in rows}
    assert compared == {
        "flops",
        "params",
        "bytes_read",
        "bytes_written",
        "sdpa_bytes_read",
        "sdpa_bytes_written",
        "module_bytes_read",
        "module_bytes_written",
    }


def test_a_wrong_module_byte_count_is_caught() -> None:
    """Two bytes more read by one RMS norm of the record show up on exactly that id."""
    record = copy.deepcopy(_record(GOLDEN_FILES[0]))
    record["modules"]["diffusion.blocks.7.cross_attn.norm_k"]["module_bytes"][0] += 2
    mismatches = [(row.module_id, row.metric) for row in compare_with_record(record) if not row.matches]
    assert mismatches == [("diffusion.blocks.7.cross_attn.norm_k", "module_bytes_read")]


def test_a_wrong_figure_is_caught() -> None:
    """One FLOP more on one module of the record shows up as exactly that mismatch."""
    record = copy.deepcopy(_record(GOLDEN_FILES[0]))
    record["modules"]["diffusion.blocks.3.ffn.0"]["flops"] += 1
    record["modules"]["diffusion.blocks.3.self_attn"]["sdpa_bytes"][0] += 2
    mismatches = [(row.module_id, row.metric) for row in compare_with_record(record) if not row.matches]
    assert mismatches == [
        ("diffusion.blocks.3.ffn.0", "flops"),
        ("diffusion.blocks.3.self_attn", "sdpa_bytes_read"),
    ]


def test_a_module_missing_from_the_record_is_an_error() -> None:
    """Every analytic module must exist in the reference record."""
    record = copy.deepcopy(_record(GOLDEN_FILES[0]))
    del record["modules"]["diffusion.head.head"]
    with pytest.raises(LlmPerfOptError, match=r"diffusion\.head\.head: analytic module missing"):
        compare_with_record(record)
