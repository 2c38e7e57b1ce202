"""The documentation's table of predicted time per step is the code's output."""

from __future__ import annotations

from pathlib import Path

from llm_perf_opt.calibration.presets import preset_step_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "stacks.md"
START, END = "<!-- preset-step-table:start -->", "<!-- preset-step-table:end -->"


def test_the_documented_step_table_equals_the_code() -> None:
    """docs/stacks.md shows preset_step_table() for I2V-14B-480P on one and eight H100s, verbatim."""
    text = DOCS.read_text("utf-8")
    shown = text.split(START, 1)[1].split(END, 1)[0].strip()
    table = preset_step_table()
    assert shown == table
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ") for line in table.splitlines()[2:]}
    assert len(rows) == 9
    assert float(rows["lightx2v"][1]) < float(rows["official"][1]) < float(rows["diffusers"][1])
