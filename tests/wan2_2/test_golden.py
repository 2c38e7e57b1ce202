"""The analytic Wan2.2 transformers against the stored reference records, id by id, without torch."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.wan2_2.check import compare_with_record

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "wan2_2"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))


def _record(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def test_every_variant_has_three_golden_workloads_one_with_batch_two() -> None:
    """Three variants × three workloads, each variant with a batch of 2."""
    assert len(GOLDEN_FILES) == 9
    for name in ("ti2v-5b", "t2v-a14b", "i2v-a14b"):
        batches = {_record(p)["workload"]["batch"] for p in GOLDEN_FILES if p.name.startswith(name)}
        assert batches == {1, 2}


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_exact_agreement_with_golden_record(path: Path) -> None:
    """FLOPs, parameters and whole-module eager bytes of every id (of each expert) equal the record."""
    record = _record(path)
    rows = compare_with_record(record)
    mismatches = [row for row in rows if not row.matches]
    assert not mismatches, mismatches[:5]
    assert {row.metric for row in rows} == {
        "flops",
        "params",
        "module_bytes_read",
        "module_bytes_written",
        "bytes_read",
        "bytes_written",
        "sdpa_bytes_read",
        "sdpa_bytes_written",
    }
    prefixes = {row.module_id.split(".")[0] for row in rows}
    expected = {"diffusion"} if record["variant"] == "ti2v-5b" else {"high_noise_model", "low_noise_model"}
    assert prefixes == expected


def test_ti2v_record_has_per_token_timesteps() -> None:
    """The TI2V-5B reference ran one timestep per video token: 2·5·12·20 = 2400 at 17 frames 384×640."""
    record = _record(GOLDEN_DIR / "ti2v-5b__b2_f17_384x640_l512.json")
    assert record["inputs"]["timestep"][1] == [2, 5 * 12 * 20]
    assert record["modules"]["diffusion.time_embedding.0"]["flops"] == 2 * 2 * 1200 * 256 * 3072


def test_per_token_modulation_bytes_are_those_of_every_token() -> None:
    """TI2V-5B's block reads fp32 modulation rows of every token: one byte less on a block is caught."""
    record = copy.deepcopy(_record(GOLDEN_DIR / "ti2v-5b__b2_f17_384x640_l512.json"))
    record["modules"]["diffusion.blocks.3"]["module_bytes"][0] -= 1
    mismatches = [(row.module_id, row.metric) for row in compare_with_record(record) if not row.matches]
    assert mismatches == [("diffusion.blocks.3", "module_bytes_read")]


def test_a_wrong_figure_is_caught_on_both_experts() -> None:
    """One FLOP more on one module of an A14B record is a mismatch of that id in each expert."""
    record = copy.deepcopy(_record(GOLDEN_DIR / "t2v-a14b__b1_f4_256x256_l64.json"))
    record["modules"]["diffusion.blocks.7.ffn.2"]["flops"] += 1
    mismatches = [(row.module_id, row.metric) for row in compare_with_record(record) if not row.matches]
    assert mismatches == [
        ("high_noise_model.blocks.7.ffn.2", "flops"),
        ("low_noise_model.blocks.7.ffn.2", "flops"),
    ]


def test_a_record_of_another_model_is_an_error() -> None:
    """A record whose model_id is not the variant's is refused."""
    record = copy.deepcopy(_record(GOLDEN_FILES[0]))
    record["model_id"] = "wan2.1-t2v-14b"
    with pytest.raises(LlmPerfOptError, match="model_id: the record is of"):
        compare_with_record(record)
