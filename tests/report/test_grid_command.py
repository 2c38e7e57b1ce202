"""The grid command's handler, through a throwaway parser: files, standard output, bad input."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.report.grid_command import register
from llm_perf_opt.wan2_1.evaluate import evaluate_dit

pytest.importorskip("pyarrow")
pytest.importorskip("netCDF4")
pytest.importorskip("xarray")
pytest.importorskip("dask")


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="llm-perf-opt")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["grid", *argv])
    return int(args.func(args))


BASE = (
    "--variant",
    "t2v-1.3b",
    "--frames",
    "17,81",
    "--height",
    "480",
    "--width",
    "832,1280",
    "--steps",
    "1",
)


def test_csv_file_matches_exact_values(tmp_path: Path) -> None:
    """One row per point with the transformer's FLOPs, equal to the exact evaluation."""
    out = tmp_path / "grid.csv"
    assert _run(*BASE, "--no-guidance", "--module", "diffusion", "--out", str(out)) == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [(r["frames"], r["width"]) for r in rows] == [
        ("17", "832"),
        ("17", "1280"),
        ("81", "832"),
        ("81", "1280"),
    ]
    for row in rows:
        exact = evaluate_dit("t2v-1.3b", frames=int(row["frames"]), height=480, width=int(row["width"]))
        assert float(row["diffusion:flops"]) == pytest.approx(exact.metrics["diffusion"]["flops"], rel=1e-12)


def test_standard_output_and_suffix_formats(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """Without --out the CSV goes to stdout; .parquet and .nc imply their formats."""
    assert _run(*BASE) == 0
    lines = capsysbinary.readouterr().out.decode().splitlines()
    assert lines[0] == "batch,frames,height,width,steps,text_len,pipeline:flops" and len(lines) == 5
    assert _run(*BASE, "--out", str(tmp_path / "g.parquet")) == 0
    assert (tmp_path / "g.parquet").read_bytes()[:4] == b"PAR1"
    assert _run(*BASE, "--out", str(tmp_path / "g.nc")) == 0
    assert (tmp_path / "g.nc").read_bytes()[:4] == b"\x89HDF"


BAD = [
    (("--frames", "1_000"), r"^--frames: must be an integer written in ASCII digits"),
    (("--height", "+480"), r"^--height: must be an integer written in ASCII digits"),
    (("--width", "８３２"), r"^--width: must be an integer written in ASCII digits"),
    (("--frames", "9" * 400), r"^--frames: an integer of 400 digits is out of range"),
    (("--text-len", "5000", "--no-pad-text"), r"^text_len: 1 of 1 values are not an integer in 0…512"),
    (("--height", "480,17"), r"^height: 1 of 2 values are not .*; first: 17"),
    (("--module", "diffusion.nope"), r"^module_id: no module 'diffusion\.nope'"),
    (("--format", "netcdf"), r"^--format: netcdf needs --out FILE"),
    (("--chunk-points", "0"), r"^--chunk-points: must be an integer ≥ 1"),
    (
        (
            "--frames",
            ",".join(["81"] * 2000),
            "--height",
            ",".join(["480"] * 1000),
            "--width",
            ",".join(["832"] * 1000),
        ),
        r"^grid: 2000000000 points",
    ),
]


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_input_is_one_error_and_leaves_the_output_alone(
    tmp_path: Path, extra: tuple[str, ...], message: str
) -> None:
    """Each bad option is one error naming it; the existing output file keeps its data."""
    out = tmp_path / "grid.csv"
    out.write_text("precious\n", encoding="utf-8")
    argv = [*BASE, *extra] if "--format" in extra else [*BASE, *extra, "--out", str(out)]
    with pytest.raises(LlmPerfOptError, match=message):
        _run(*argv)
    assert out.read_text(encoding="utf-8") == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.csv"]


def test_out_problems_are_errors(tmp_path: Path) -> None:
    """--out naming a directory or a file in a missing directory is one error naming --out's path."""
    with pytest.raises(LlmPerfOptError, match=r"^out: .* is a directory"):
        _run(*BASE, "--out", str(tmp_path))
    with pytest.raises(LlmPerfOptError, match=r"^out: the directory of .* does not exist"):
        _run(*BASE, "--out", str(tmp_path / "missing" / "g.csv"))
