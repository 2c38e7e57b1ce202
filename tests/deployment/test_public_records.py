"""The public timing records: the stack calibration schema, sources, no duplicates, none fitted."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from llm_perf_opt.deployment.stacks import get_stack
from llm_perf_opt.hardware import ACCELERATORS, get_accelerator

_DOC: dict[str, Any] = json.loads(
    resources.files("llm_perf_opt.deployment.stacks").joinpath("public_records.json").read_text("utf-8")
)
_RECORDS: list[dict[str, Any]] = _DOC["records"]
_FIELDS = {
    "id",
    "row",
    "source",
    "variant",
    "task",
    "width",
    "height",
    "frames",
    "steps",
    "cfg",
    "gpu",
    "gpu_count",
    "parallel",
    "stack",
    "preset",
    "attention_kernel",
    "precision",
    "what_timed",
    "seconds",
    "peak_memory_gb",
    "confidence",
    "fitted",
    "notes",
}
_ADDED_NAMES = {key for device in ACCELERATORS.values() for key in (device.name, *device.aliases)}


def test_the_count_matches_and_ids_are_unique() -> None:
    """The stated count is the number of records and no id repeats."""
    assert _DOC["count"] == len(_RECORDS)
    assert len({r["id"] for r in _RECORDS}) == len(_RECORDS)


@pytest.mark.parametrize("record", _RECORDS, ids=[r["id"] for r in _RECORDS])
def test_each_record_is_complete_sourced_and_not_fitted(record: dict[str, Any]) -> None:
    """Every record has the schema's fields, a source, a known preset and GPU, and is not fitted."""
    assert set(record) == _FIELDS
    assert record["fitted"] is False
    assert record["source"] and record["row"]
    assert record["what_timed"] in {"end_to_end", "dit_only", "per_step", "one_forward"}
    assert record["confidence"] in {"high", "medium", "low"}
    assert record["seconds"] > 0 and record["steps"] >= 1 and record["gpu_count"] >= 1
    assert get_stack(record["preset"]).name == record["preset"]
    name = record["gpu"].lower().replace(" ", "-")
    if name in _ADDED_NAMES:
        return
    assert get_accelerator(record["gpu"], ACCELERATORS)


def test_distilled_records_run_without_guidance() -> None:
    """The 4-step distilled rows are the ones with 4 steps, and they run without CFG."""
    distilled = [r for r in _RECORDS if "distill" in r["id"]]
    assert distilled and all(r["steps"] == 4 and r["cfg"] is False for r in distilled)
