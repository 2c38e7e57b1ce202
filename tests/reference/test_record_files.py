"""Saved records given to the reference commands: a missing, malformed or wrong-shaped file is one error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from llm_perf_opt.reference.__main__ import main

GOLDEN = Path(__file__).parents[1] / "golden" / "dit" / "t2v-1.3b__b1_f4_256x256_l64.json"
ARGS = ["compare", "--variant", "t2v-1.3b", "--frames", "4", "--height", "256", "--width", "256"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "error: --record: cannot read .*No such file"),
        (b"\xff\xfe", "error: --record: cannot read .*not UTF-8"),
        (b"[" * 100_000, "error: --record: cannot read .*nested too deeply"),
        (b"[1, 2]", "error: --record: .* is not a saved reference record"),
        (
            b'{"workload": {}, "totals": {}, "modules": {}}',
            "error: --record: .* is not a valid reference record",
        ),
    ],
)
def test_bad_records_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    """Each bad record file exits 2 with one line on stderr naming --record."""
    path = tmp_path / "record.json"
    if content is not None:
        path.write_bytes(content)
    assert main([*ARGS, "--record", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.match(message, err)


def test_the_golden_record_still_compares(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid saved record compares as before (exit 0)."""
    path = tmp_path / "record.json"
    path.write_text(json.dumps(json.loads(GOLDEN.read_text(encoding="utf-8"))), encoding="utf-8")
    assert main([*ARGS, "--record", str(path), "--depth", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(" 0 mismatches")
