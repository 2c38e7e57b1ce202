"""Measured against predicted: the golden trace against a real report, stored and shown by the command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from llm_perf_opt.contracts.models import Wan2_1AnalyticModel, Wan2_1AnalyticRequest
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import build_deployment
from llm_perf_opt.profiling import cli
from llm_perf_opt.profiling.compare import (
    DeviceRoofline,
    compare,
    comparison_path,
    device_roofline,
    read_comparison,
    write_comparison,
)
from llm_perf_opt.profiling.trace import import_trace
from llm_perf_opt.report.analysis import RunOptions
from llm_perf_opt.report.files import run
from llm_perf_opt.wan2_1.variants import get_variant
from tests.profiling.conftest import GOLDEN

H100 = device_roofline("h100")


@pytest.fixture(scope="module")
def report_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real report of T2V-1.3B at the CI-tiny workload on an H100, with a profile_run_id."""
    request = Wan2_1AnalyticRequest(
        model_id=get_variant("t2v-1.3b").model_id,
        model_variant="t2v-1.3b",
        workload_profile_id="wan2-1-ci-tiny",
        profile_run_id="h100-run-1",
    )
    options = RunOptions(deployment=build_deployment("t2v-1.3b", accelerator="h100"))
    return run(request, tmp_path_factory.mktemp("reports"), options).folder


@pytest.fixture(scope="module")
def report(report_folder: Path) -> Wan2_1AnalyticModel:
    """The report behind :func:`report_folder`."""
    from llm_perf_opt.report.files import read_report

    return read_report(report_folder)[0]


def test_predicted_figures_are_scaled_to_the_measured_calls(report: Wan2_1AnalyticModel) -> None:
    """A module's prediction is the report's time over its calls times the calls the trace measured."""
    comparison = compare(import_trace(GOLDEN / "device_trace.json"), report, H100)
    assert comparison.profile_run_id == "h100-run-1"  # the report's own
    snapshot = next(s for s in report.module_metrics if s.module_id == "diffusion.blocks.0.self_attn")
    row = next(r for r in comparison.modules if r.module_id == "diffusion.blocks.0.self_attn")
    assert snapshot.calls == 2  # one guided step: two forwards
    assert row.calls_measured == 2
    assert row.predicted_ms == pytest.approx(snapshot.total_time_ms)
    assert row.measured_ms == 0.5  # 300 + 200 µs of kernels
    assert row.ratio == pytest.approx(0.5 / snapshot.total_time_ms)
    assert row.gap_ms == pytest.approx(0.5 - snapshot.total_time_ms)
    assert row.achieved_tflops == pytest.approx(snapshot.total_flops_tflops / 0.5e-3)
    assert row.achieved_tbps == pytest.approx(snapshot.total_io_tb / 0.5e-3)
    ffn0 = next(r for r in comparison.modules if r.module_id == "diffusion.blocks.0.ffn.0")
    half = next(s for s in report.module_metrics if s.module_id == "diffusion.blocks.0.ffn.0")
    assert ffn0.predicted_ms == pytest.approx(half.total_time_ms / 2)  # 1 of the report's 2 calls
    assert [s.stage for s in comparison.stages] == ["diffusion"]
    assert set(comparison.top_gaps) == {
        "diffusion.blocks.0.self_attn",
        "diffusion.blocks.0.ffn.0",
        "diffusion.blocks.0.ffn.1",
    }
    # the hand-written shapes are not T2V-1.3B's: the comparison says the trace is of another config
    assert "diffusion.blocks.0.self_attn" in comparison.flops_mismatches
    assert any("another workload or configuration" in note for note in comparison.notes)


def test_roofline_fraction_follows_the_arithmetic_intensity() -> None:
    """Compute-bound work is held against the peak, memory-bound work against intensity × bandwidth."""
    device = DeviceRoofline(name="d", precision="bf16", peak_flops=1e15, memory_bandwidth=1e12)
    assert device.fraction(flops=5e14, traffic=1e9, seconds=1.0) == pytest.approx(0.5)  # 500 FLOP/B
    assert device.fraction(flops=1e13, traffic=1e12, seconds=1.0) == pytest.approx(1.0)  # 10 FLOP/B: 1e13
    assert device.fraction(flops=0, traffic=5e11, seconds=1.0) == pytest.approx(0.5)
    host = device_roofline("host")
    assert (host.peak_flops, host.memory_bandwidth) == (1.0e12, 100e9)


def test_comparison_round_trips_through_its_file(report: Wan2_1AnalyticModel, report_folder: Path) -> None:
    """A stored comparison reads back equal, under profiles/<profile_run_id>.json, with no partial file."""
    comparison = compare(import_trace(GOLDEN / "device_trace.json"), report, H100, profile_run_id="golden")
    path = write_comparison(report_folder, comparison)
    assert path == comparison_path(report_folder, "golden") == report_folder / "profiles" / "golden.json"
    assert read_comparison(report_folder, "golden") == comparison
    assert sorted(p.name for p in path.parent.iterdir()) == ["golden.json"]
    assert json.loads(path.read_text(encoding="utf-8"))["trace"]["work_us"] == 675


def test_bad_inputs_are_clear_errors(report: Wan2_1AnalyticModel, report_folder: Path) -> None:
    """A bad run id, a missing comparison and a report without times name what is wrong."""
    trace = import_trace(GOLDEN / "device_trace.json")
    with pytest.raises(LlmPerfOptError, match=r"^profile_run_id: must be 1-128 letters, .* got '\.\./x'"):
        compare(trace, report, H100, profile_run_id="../x")
    with pytest.raises(LlmPerfOptError, match=r"^profile_run_id: cannot read .*nothing\.json"):
        read_comparison(report_folder, "nothing")
    untimed = Wan2_1AnalyticModel(
        **{
            **{f: getattr(report, f) for f in ("report_id", "model", "workload", "modules")},
            "operator_categories": report.operator_categories,
            "module_metrics": [m for m in report.module_metrics if m.total_time_ms == 0],
        }
    )
    with pytest.raises(LlmPerfOptError, match="has no predicted times \\(made without a device\\)"):
        compare(trace, untimed, H100, profile_run_id="x")
    with pytest.raises(LlmPerfOptError, match=r"^accelerator: unknown device 'tpu'"):
        device_roofline("tpu")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llm-perf-opt")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_profile_import_and_compare_commands(report_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``profile import`` stores and prints the comparison, ``profile compare`` prints the stored one."""
    argv = ["profile", "import", str(GOLDEN / "device_trace.json"), "--report", str(report_folder)]
    args = _parser().parse_args([*argv, "--device", "h100"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "profile h100-run-1 against report t2v-1.3b__wan2-1-ci-tiny__" in printed
    assert "diffusion.blocks.0.self_attn" in printed
    assert (report_folder / "profiles" / "h100-run-1.json").is_file()
    args = _parser().parse_args(
        ["profile", "compare", "--report", str(report_folder), "--profile-run-id", "h100-run-1"]
    )
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == printed.splitlines()[-3]
