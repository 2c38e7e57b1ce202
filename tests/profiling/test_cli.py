"""The ``profile fit`` command: an override file from a trace, and its errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.efficiency import load_efficiencies
from llm_perf_opt.profiling import cli
from tests.profiling.conftest import GOLDEN

SIZE = ["--variant", "t2v-1.3b", "--frames", "5", "--height", "32", "--width", "32", "--text-len", "16"]


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="llm-perf-opt")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


def test_fit_writes_an_override_the_table_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``profile fit`` prints residuals per op class and writes a device override ``--efficiencies`` reads."""
    out = tmp_path / "h100.json"
    trace = str(GOLDEN / "device_trace.json")
    assert _run(["profile", "fit", trace, "--device", "h100", *SIZE, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == [
        "op",
        "class",
        "samples",
        "measured",
        "s",
        "predicted",
        "s",
        "rms",
        "ln",
    ]
    assert any(line.startswith("attention ") for line in printed.splitlines())
    assert f"efficiency override for h100-sxm written: {out}" in printed
    table = load_efficiencies(out)
    assert 0 < table.value("device:h100-sxm", "attention.sdpa") <= 1


def test_fit_rejects_a_trace_without_stage_ranges(tmp_path: Path) -> None:
    """A trace with no transformer or VAE range has nothing to fit and says so."""
    trace = tmp_path / "plain.json"
    trace.write_text(
        '{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::add", "ts": 1, "dur": 2}]}',
        encoding="utf-8",
    )
    with pytest.raises(LlmPerfOptError, match=r"no range of 'diffusion' or 'vae' to fit to"):
        _run(["profile", "fit", str(trace), "--device", "host", *SIZE, "--out", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()
