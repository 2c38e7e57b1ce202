"""Grids: validated axes, chunked files equal to one evaluation, labelled results, nothing lost on failure."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.report.grid import FIELDS, GridAxes, GridRequest, evaluate_labelled, iter_chunks, write_grid
from llm_perf_opt.symbolic.cost import simplify_expr
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.implementation import get_implementation
from llm_perf_opt.wan2_1.variants import get_variant

pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
pytest.importorskip("xarray")
pytest.importorskip("dask")
pytest.importorskip("netCDF4")
import pandas as pd
import xarray as xr

COLUMNS = (("pipeline", "flops"), ("diffusion", "bytes_read"), ("vae", "params"))


def _request(columns: tuple[tuple[str, str], ...] = COLUMNS, **axes: list[int]) -> GridRequest:
    values = {
        "batch": [1, 2],
        "frames": [1, 17, 81],
        "height": [480, 720],
        "width": [832],
        "steps": [4, 50],
        "text_len": [512],
    }
    values.update(axes)
    return GridRequest(
        variant=get_variant("t2v-1.3b"),
        implementation=get_implementation("official"),
        guidance=True,
        pad_text=True,
        axes=GridAxes.of(**values),
        columns=columns,
    )


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_labelled_values_equal_exact_evaluation_at_sampled_points() -> None:
    """The Dataset's value at a point equals the root expression evaluated exactly there."""
    request = _request()
    dataset = evaluate_labelled(request).to_xarray()
    assert dataset["pipeline:flops"].dims == ("batch", "frames", "height", "steps")
    assert int(dataset["width"]) == 832 and dataset.attrs["variant"] == "t2v-1.3b"
    assert dataset["pipeline:flops"].attrs["units"] == "FLOP"
    expression = simplify_expr(request.tree()["pipeline"].aggregate.flops)
    for batch, frames, height, steps in ((1, 1, 480, 4), (2, 81, 720, 50), (2, 17, 480, 4)):
        point = Workload(batch=batch, frames=frames, height=height, width=832, steps=steps, text_len=512)
        exact = int(expression.subs(point.subs()))
        value = dataset["pipeline:flops"].sel(batch=batch, frames=frames, height=height, steps=steps)
        assert float(value) == pytest.approx(exact, rel=1e-13)


def test_dataframe_has_one_row_per_point_in_row_major_order() -> None:
    """The DataFrame lists the 24 points batch-slowest, like the CSV, with every field as a column."""
    frame = evaluate_labelled(_request()).to_dataframe()
    assert list(frame.columns) == [*FIELDS, "pipeline:flops", "diffusion:bytes_read", "vae:params"]
    assert len(frame) == 24
    points, columns = next(iter_chunks(_request()))
    assert np.array_equal(frame["frames"].to_numpy(), points["frames"])
    assert np.array_equal(frame["pipeline:flops"].to_numpy(), columns[0])


def test_chunks_change_nothing(tmp_path: Path) -> None:
    """A CSV written 5 points at a time is byte-identical to one written in one chunk."""
    write_grid(_request(), tmp_path / "one.csv", chunk_points=1 << 18)
    write_grid(_request(), tmp_path / "many.csv", chunk_points=5)
    assert (tmp_path / "one.csv").read_bytes() == (tmp_path / "many.csv").read_bytes()
    header = (tmp_path / "one.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "batch,frames,height,width,steps,text_len,pipeline:flops,diffusion:bytes_read,vae:params"


def test_parquet_and_netcdf_read_back_equal(tmp_path: Path) -> None:
    """Parquet reads back as the DataFrame, netCDF as the Dataset."""
    labelled = evaluate_labelled(_request())
    write_grid(_request(), tmp_path / "g.parquet", "parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "g.parquet"), labelled.to_dataframe())
    write_grid(_request(), tmp_path / "g.nc", "netcdf", chunk_points=7)
    with xr.open_dataset(tmp_path / "g.nc", engine="netcdf4") as back:
        xr.testing.assert_equal(back.load(), labelled.to_xarray())
        assert back.attrs["variant"] == "t2v-1.3b"
    assert _entries(tmp_path) == ["g.nc", "g.parquet"]


def test_dask_path_equals_numpy_on_a_chunked_ten_million_point_grid() -> None:
    """10⁷ points (1000 frames × 100 heights × 100 widths) chunked by dask equal the numpy path."""
    axes = {"batch": [1], "steps": [50], "frames": list(range(1, 1001))}
    axes["height"] = axes["width"] = list(range(16, 1601, 16))
    request = _request(columns=(("pipeline", "flops"),), **axes)
    assert request.axes.size == 10**7
    lazy = evaluate_labelled(request, chunks=(250, 100, 100))
    array = lazy.values[0]
    assert array.chunks == ((250,) * 4, (100,), (100,))
    eager = evaluate_labelled(request).values[0]
    assert np.array_equal(array.compute(), eager)


def test_a_failed_grid_leaves_the_existing_file_and_writes_nothing(tmp_path: Path) -> None:
    """An unknown module fails before the output is opened: the old file keeps its data, no temporary."""
    out = tmp_path / "grid.csv"
    out.write_text("precious\n", encoding="utf-8")
    stream = io.BytesIO()
    for target, sink in ((out, None), (None, stream)):
        with pytest.raises(LlmPerfOptError, match=r"^module_id: no module 'diffusion\.nope'"):
            write_grid(_request(columns=(("diffusion.nope", "flops"),)), target, stream=sink)
    assert out.read_text(encoding="utf-8") == "precious\n"
    assert stream.getvalue() == b""
    assert _entries(tmp_path) == ["grid.csv"]
    with pytest.raises(LlmPerfOptError, match=r"^format: unknown format 'xlsx'"):
        write_grid(_request(), out, "xlsx")
    with pytest.raises(LlmPerfOptError, match=r"^out: .* is a directory"):
        write_grid(_request(), tmp_path)


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        (
            {"height": [480, 17, 500, 720]},
            r"^height: 2 of 4 values are not an integer in 16…16384, .*; first: 17$",
        ),
        (
            {"frames": [81.0, float("nan")]},
            r"^frames: 1 of 2 values are not an integer in 1…4093; first: nan$",
        ),
        ({"frames": [81.5]}, r"^frames: 1 of 1 values are not an integer in 1…4093; first: 81\.5$"),
        ({"text_len": [513]}, r"^text_len: 1 of 1 values are not an integer in 0…512; first: 513$"),
        ({"batch": [True]}, r"^batch: must be numbers"),
        ({"steps": []}, r"^steps: must be a non-empty list"),
    ],
)
def test_bad_axes_are_one_error_naming_field_first_value_and_count(
    axes: dict[str, list[object]], message: str
) -> None:
    """Every axis is validated vectorised, before any evaluation."""
    with pytest.raises(LlmPerfOptError, match=message):
        _request(**axes)  # type: ignore[arg-type]


def test_options_are_not_coerced() -> None:
    """guidance="no" is an error, not guidance on; an unpadded prompt on I2V must be 512 tokens."""
    good = _request()
    with pytest.raises(TypeError, match="guidance"):
        GridRequest(
            variant=good.variant,
            implementation=good.implementation,
            guidance="no",  # type: ignore[arg-type]
            pad_text=True,
            axes=good.axes,
            columns=COLUMNS,
        )
    with pytest.raises(LlmPerfOptError, match=r"^text_len: i2v-14b-480p splits its context"):
        GridRequest(
            variant=get_variant("i2v-14b-480p"),
            implementation=good.implementation,
            guidance=True,
            pad_text=False,
            axes=GridAxes.of(**{**good.axes.axes(), "text_len": [64, 512]}),
            columns=COLUMNS,
        )


def test_progress_bar_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Asked for, the bar is drawn on stderr and nothing on stdout."""
    write_grid(_request(), tmp_path / "g.csv", progress=True)
    captured = capsys.readouterr()
    assert "grid" in captured.err and "24" in captured.err and captured.out == ""


def test_a_full_device_is_one_error(tmp_path: Path) -> None:
    """Writing to /dev/full, as a path or as the output stream, is one error naming the output."""
    with pytest.raises(LlmPerfOptError, match=r"^out: cannot write '/dev/full': No space left on device"):
        write_grid(_request(), "/dev/full")
    with (
        open("/dev/full", "wb", buffering=0) as full,
        pytest.raises(LlmPerfOptError, match=r"^out: cannot write to standard output: No space left"),
    ):
        write_grid(_request(), None, stream=full)
