"""The plot command: each kind writes its figure; bad options are one error naming the option."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.plots import _model, cli
from llm_perf_opt.plots._model import CalibrationPoint
from llm_perf_opt.plots.cli import KINDS, register


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise LlmPerfOptError(message)


def _run(argv: list[str]) -> int:
    parser = _Parser(prog="llm-perf-opt")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


TINY = ["--variant", "t2v-1.3b", "--profile", "wan2-1-ci-tiny"]
CASES = {
    "breakdown": [
        "--variant",
        "t2v-1.3b",
        "--profile",
        "wan2-1-official-480p",
        "--device",
        "h100",
        "--top",
        "5",
    ],
    "scaling": [*TINY],
    "roofline": [*TINY, "--device", "a100"],
    "multi-gpu": [*TINY, "--gpu-counts", "1,2"],
    "deployments": [*TINY, "--devices", "h100,a100", "--gpu-counts", "1,2"],
    "calibration": [],
}


def test_every_kind_has_a_case() -> None:
    """The test table covers every kind of figure."""
    assert set(CASES) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_writes_its_file(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``plot KIND --out FILE`` writes a non-empty file and says where."""
    if kind == "calibration":  # the table itself is checked in test_figures; keep this one quick
        points = (
            CalibrationPoint(id="C4", setup="s", measured_seconds=4.6, predicted_seconds=4.5, fitted=True),
        )
        monkeypatch.setattr(_model, "calibration_points", lambda: points)
    out = tmp_path / f"{kind}.svg"
    assert _run(["plot", kind, *CASES[kind], "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert f"figure written: {out}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plot", "roofline", "--out", "x.pdf"], r"--out: .*'\.pdf'; accepted: \.png, \.svg"),
        (["plot", "roofline", "--out", "missing/x.png"], "--out: the folder 'missing' does not exist"),
        (["plot", "scaling", "--frames", "0", "--out", "x.png"], "--frames: must be an integer ≥ 1, got 0"),
        (["plot", "breakdown", "--gpus", "0", "--out", "x.png"], "--gpus: must be an integer ≥ 1, got 0"),
        (["plot", "multi-gpu", "--gpu-counts", "4,2", "--out", "x.png"], "gpus: GPU counts must increase"),
        (["plot", "roofline", "--device", "tpu", "--out", "x.png"], "tpu"),
        (["plot", "roofline", "--frames", "x", "--out", "x.png"], "must be an integer, got 'x'"),
        (["plot", "deployments", "--devices", "h100,H100", "--out", "x.png"], "devices: each device once"),
    ],
)
def test_bad_options_are_one_error(
    argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bad option raises one LlmPerfOptError naming it, and writes nothing."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LlmPerfOptError, match=message):
        _run(argv)
    assert list(tmp_path.iterdir()) == []


def test_register_needs_no_matplotlib() -> None:
    """Importing the command and registering it imports no matplotlib (the plots extra is optional)."""
    code = (
        "import argparse, sys\n"
        "from llm_perf_opt.plots.cli import register\n"
        "register(argparse.ArgumentParser().add_subparsers())\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_without_matplotlib_the_plot_command_says_which_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without matplotlib a plot is one error naming the plots extra, and writes nothing."""
    monkeypatch.setattr(cli, "matplotlib_installed", lambda: False)
    with pytest.raises(
        LlmPerfOptError, match=r"plot: drawing figures needs matplotlib; install the plots extra"
    ):
        _run(["plot", "calibration", "--out", str(tmp_path / "c.png")])
    assert list(tmp_path.iterdir()) == []
