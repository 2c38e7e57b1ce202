"""The command line end to end: reports for every standard profile, comparisons, grids, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from llm_perf_opt.cli import main
from llm_perf_opt.contracts import openapi_path
from llm_perf_opt.wan2_1.evaluate import evaluate_dit
from llm_perf_opt.wan2_1.workloads import PROFILES

DOCUMENT = yaml.safe_load(openapi_path().read_text(encoding="utf-8"))


def _schema(name: str) -> dict[str, object]:
    return {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}


def _report(out: Path, *args: str) -> tuple[int, Path | None]:
    status = main(["report", "--out", str(out), *args])
    folders = sorted(out.iterdir()) if out.exists() else []
    return status, folders[-1] if folders else None


@pytest.mark.parametrize("profile", list(PROFILES))
def test_report_for_every_standard_profile(
    profile: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files are written, report.json validates, the summary has 10 modules and 5 categories."""
    status, folder = _report(tmp_path / "a", "--variant", "t2v-14b", "--profile", profile)
    assert status == 0 and folder is not None
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    jsonschema.validate(report, _schema("Wan2_1AnalyticModel"))
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    jsonschema.validate(summary, _schema("Wan2_1AnalyticReportSummary"))
    assert len(summary["top_modules"]) == 10
    markdown = (folder / "summary.md").read_text(encoding="utf-8")
    modules = markdown.split("## Top 10 modules by FLOPs")[1].split("##")[0]
    categories = markdown.split("## Top 5 operator categories")[1].split("##")[0]
    assert sum(line.startswith("| `") for line in modules.splitlines()) == 10
    assert sum(line.startswith("| ") for line in categories.splitlines()) == 2 + 5
    out = capsys.readouterr().out
    assert "top modules by FLOPs" in out and str(folder) in out
    # identical inputs, another folder: the same bytes
    _, again = _report(tmp_path / "b", "--variant", "t2v-14b", "--profile", profile)
    assert again is not None
    assert (again / "report.json").read_bytes() == (folder / "report.json").read_bytes()


def test_identical_report_is_reused_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second identical run reuses the folder; --force-rebuild rebuilds it."""
    args = ("--variant", "t2v-1.3b", "--profile", "wan2-1-ci-tiny")
    _report(tmp_path, *args)
    assert "written" in capsys.readouterr().out
    _report(tmp_path, *args)
    assert "reused" in capsys.readouterr().out
    _report(tmp_path, *args, "--force-rebuild")
    assert "written" in capsys.readouterr().out
    assert len(list(tmp_path.iterdir())) == 1


def test_compare_two_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two workloads side by side: totals, the modules that moved, the categories."""
    _, small = _report(tmp_path / "small", "--variant", "t2v-14b", "--profile", "wan2-1-720p")
    _, large = _report(
        tmp_path / "large", "--variant", "t2v-14b", "--profile", "wan2-1-720p", "--set", "num_frames=81"
    )
    capsys.readouterr()
    assert main(["compare", str(small), str(large / "report.json")]) == 0
    out = capsys.readouterr().out
    # DiT 100 × 522.39 T (16 frames) or 6,523.44 T (81 frames), umT5 2 × 4.84 T,
    # VAE decode 104.6 T or 639.2 T
    assert "| FLOPs (T) | 52,353.5254 | 652,992.5670 |" in out
    assert "`diffusion.blocks.*.self_attn.ops`" in out


def test_grid_to_csv_matches_exact_values(tmp_path: Path) -> None:
    """The grid command writes one row per point with the module's figures, equal to exact evaluation."""
    out = tmp_path / "grid.csv"
    args = ["grid", "--variant", "t2v-1.3b", "--frames", "17,81", "--height", "480", "--width", "832,1280"]
    assert main([*args, "--steps", "1", "--no-guidance", "--module", "diffusion", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 4
    for row in rows:
        exact = evaluate_dit("t2v-1.3b", frames=int(row["frames"]), height=480, width=int(row["width"]))
        assert float(row["diffusion:flops"]) == pytest.approx(exact.metrics["diffusion"]["flops"], rel=1e-12)


BAD_ARGUMENTS = [
    (["--variant", "t2v-15b", "--profile", "wan2-1-720p"], "model_variant: unknown variant 't2v-15b'"),
    (["--variant", "t2v-14b", "--profile", "wan2-1-4k"], "workload_profile_id: unknown profile 'wan2-1-4k'"),
    (
        ["--variant", "t2v-14b", "--profile", "wan2-1-720p", "--set", "num_frames=0"],
        "overrides.num_frames: must be ≥ 1, got 0",
    ),
    (
        ["--variant", "t2v-14b", "--profile", "wan2-1-720p", "--set", "batch_size=-2"],
        "overrides.batch_size: must be ≥ 1, got -2",
    ),
    (
        ["--variant", "t2v-14b", "--profile", "wan2-1-720p", "--set", "height=abc"],
        "overrides.height: must be an integer ≥ 1, got 'abc'",
    ),
    (
        ["--variant", "t2v-14b", "--profile", "wan2-1-720p", "--set", "height=500"],
        "height: must be a multiple of 16",
    ),
    (
        ["--variant", "t2v-14b", "--profile", "wan2-1-720p", "--set", "fps=16"],
        "overrides.fps: unknown override",
    ),
    (["--variant", "t2v-14b", "--profile", "wan2-1-720p", "--set", "frames"], "--set: expected FIELD=VALUE"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGUMENTS, ids=[m for _, m in BAD_ARGUMENTS])
def test_bad_input_is_one_line_exit_2_nothing_written(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad argument is a one-line error naming the field, exit status 2, and no file."""
    status, folder = _report(tmp_path, *args)
    err = capsys.readouterr().err
    assert status == 2
    assert folder is None
    assert err.count("\n") == 1
    assert err.startswith("llm-perf-opt: error: " + message)


def test_formula_and_latex_name_the_whatif_symbols(capsys: pytest.CaptureFixture[str]) -> None:
    """The transformer's formula carries ρ, k and τ by name; a step cache's module has its formula."""
    assert (
        main(["formula", "--variant", "t2v-1.3b", "--module", "diffusion.blocks.0.self_attn", "--latex"]) == 0
    )
    latex = capsys.readouterr().out
    for name in (r"\mathrm{attention\_density}", r"\mathrm{reused\_steps}", r"\mathrm{guided\_fraction}"):
        assert name in latex
    module = ["--module", "step_cache.apply_residual", "--metric", "vector_flops"]
    assert main(["formula", "--variant", "t2v-1.3b", "--step-cache", "teacache", *module]) == 0
    assert "reused_steps" in capsys.readouterr().out
    assert main(["formula", "--variant", "t2v-1.3b", *module]) == 2
    assert "no module 'step_cache.apply_residual'" in capsys.readouterr().err


def test_report_states_its_whatifs_and_refuses_bad_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report with sparse attention and a step cache says so in its notes and differs in id; a
    density of 2 is an error naming the field."""
    run = ("--variant", "t2v-1.3b", "--profile", "wan2-1-official-480p")
    status, plain = _report(tmp_path / "a", *run)
    whatifs = ("--attention-density", "1/4", "--sparse-attention", "radial", "--reused-steps", "10")
    status_whatif, folder = _report(tmp_path / "b", *run, *whatifs, "--step-cache", "teacache")
    assert status == status_whatif == 0 and plain is not None and folder is not None
    assert plain.name != folder.name
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert (
        "what-if sparse attention: self-attention computes ρ = 1/4 of its scores, pattern radial"
        in summary["notes"]
    )
    assert "what-if step cache: 10 steps' transformer forwards reused" in summary["notes"]
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    plain_report = json.loads((plain / "report.json").read_text(encoding="utf-8"))

    def root_flops(document: dict[str, list[dict[str, object]]]) -> float:
        return float(
            next(m["total_flops_tflops"] for m in document["module_metrics"] if m["module_id"] == "pipeline")
        )  # type: ignore[arg-type]

    assert root_flops(report) < root_flops(plain_report)
    capsys.readouterr()
    assert _report(tmp_path / "c", *run, "--attention-density", "2")[0] == 2
    assert "attention_density: expected a fraction in (0, 1]" in capsys.readouterr().err
