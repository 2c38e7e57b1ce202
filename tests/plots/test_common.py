"""Figures are written whole, as PNG or SVG by the file's suffix; a bad path is one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.plots import save_figure
from llm_perf_opt.plots._common import ModelFigure, figure_run


def _figure() -> Figure:
    figure = Figure()
    figure.subplots().plot([1, 2], [3, 4])
    return figure


@pytest.mark.parametrize(("suffix", "magic"), [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_save_writes_the_format_of_the_suffix(tmp_path: Path, suffix: str, magic: bytes) -> None:
    """A .png file starts with the PNG signature, an .svg file with an XML declaration."""
    path = save_figure(_figure(), tmp_path / f"figure.{suffix}")
    assert path.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [f"figure.{suffix}"]


def test_svg_output_is_reproducible(tmp_path: Path) -> None:
    """The same figure writes the same SVG bytes twice (no date in the file)."""
    first = save_figure(_figure(), tmp_path / "a.svg").read_bytes()
    second = save_figure(_figure(), tmp_path / "b.svg").read_bytes()
    assert first == second


def test_bad_suffix_and_missing_folder_are_errors_and_leave_no_file(tmp_path: Path) -> None:
    """An unknown suffix or a missing folder names the output and what is accepted."""
    with pytest.raises(LlmPerfOptError, match=r"output: .*'\.pdf'; accepted: \.png, \.svg"):
        save_figure(_figure(), tmp_path / "figure.pdf")
    with pytest.raises(LlmPerfOptError, match=r"output: the folder .* does not exist"):
        save_figure(_figure(), tmp_path / "missing" / "figure.png")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails half-way leaves the previous file untouched and no temporary file."""
    target = tmp_path / "figure.png"
    target.write_bytes(b"old")
    figure = _figure()

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(figure, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_figure(figure, target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


def test_figure_run_validates_the_workload() -> None:
    """A height the pipeline rejects is an error naming the height; frames are taken as run."""
    with pytest.raises(LlmPerfOptError, match="height"):
        figure_run("t2v-1.3b", "wan2-1-official-480p", {"height": 481})
    run = figure_run("t2v-1.3b", "wan2-1-official-480p", {"num_frames": 33})
    assert run.workload.frames == 33
    assert run.words == "wan2.1-t2v-1.3b: 33 frames at 832×480, 50 steps"


def test_model_figure_shows_itself_in_a_notebook() -> None:
    """A ModelFigure's notebook representation is a PNG image, with no pyplot involved."""
    figure = ModelFigure()
    figure.subplots().plot([1, 2], [3, 4])
    assert figure._repr_png_().startswith(b"\x89PNG")
