"""Grids of whole runs: validated axes, chunked evaluation in bounded memory, labelled results and
files written atomically.

A grid is the Cartesian product of one axis of values per workload field (:class:`GridAxes`),
and optionally per what-if (attention density ρ, reused steps k, guided fraction τ; default the
dense, uncached, fully guided run, and then not written as columns),
evaluated for some ``(module_id, metric)`` columns of the pipeline tree (:class:`GridRequest`).
Only those columns' expressions are compiled
(:func:`~llm_perf_opt.symbolic.compiler.compile_columns`). Points are visited in row-major order
over the fields (``batch`` slowest, then the workload's, then the what-ifs'), in chunks of
:data:`DEFAULT_CHUNK_POINTS`, so memory stays bounded whatever the grid's size.

Everything is checked before anything is written: the axes (vectorised, see
:func:`validate_workload_arrays`), the columns (compiled first) and the output path. Files go
through :mod:`llm_perf_opt.files`: a grid that fails leaves an existing file as it was.

Values are float64: exact for integers below 2⁵³ (about 9·10¹⁵); larger figures carry float64's
relative rounding of about 10⁻¹⁶, and a labelled grid says so in its ``float64_exact`` attribute.
The optional ``grids`` extra (pandas, pyarrow, xarray, dask, netCDF4, tqdm) is needed for
Parquet, netCDF, labelled results and the progress bar; CSV needs pyarrow too.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import IO, Any, Final

import numpy as np
import numpy.typing as npt
from attrs import field, frozen, validators

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.files import atomic_output, atomic_path, check_output_file
from llm_perf_opt.report.analysis import AnyVariant, variant_tree
from llm_perf_opt.symbolic.compiler import Column, ColumnEvaluator, compile_columns
from llm_perf_opt.symbolic.cost import METRICS
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.symbolic.whatif import check_whatifs
from llm_perf_opt.wan2_1.geometry import PADDED_TEXT_LEN
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.limits import validate_workload_arrays
from llm_perf_opt.wan2_1.vace import VaceVariant
from llm_perf_opt.wan2_1.variants import WanVariant
from llm_perf_opt.wan2_2.geometry import check_frame_size
from llm_perf_opt.wan2_2.variants import Wan22Variant

__all__ = [
    "DEFAULT_CHUNK_POINTS",
    "FIELDS",
    "FORMATS",
    "MAX_POINTS",
    "METRIC_UNITS",
    "WHATIF_DEFAULTS",
    "GridAxes",
    "GridRequest",
    "LabelledGrid",
    "evaluate_labelled",
    "iter_chunks",
    "validate_workload_arrays",
    "write_grid",
]

FIELDS: Final = ("batch", "frames", "height", "width", "steps", "text_len")
"""The workload fields of a grid, in row order (the first varies slowest)."""
WHATIF_DEFAULTS: Final[Mapping[str, float | int]] = {
    "attention_density": 1.0,
    "reused_steps": 0,
    "guided_fraction": 1.0,
}
"""The what-if fields of a grid, after the workload's in row order, and their default (off) value."""
_FLOAT_FIELDS: Final = frozenset({"attention_density", "guided_fraction"})
"""What-if fields whose values are fractions (float64 columns); the others are integers."""
FORMATS: Final = ("csv", "parquet", "netcdf")
"""File formats :func:`write_grid` writes."""
DEFAULT_CHUNK_POINTS: Final = 1 << 18
"""Points evaluated and written at a time (262144: a few MB per column)."""
MAX_POINTS: Final = 10**9
"""The largest grid accepted (a CSV of about 50 GB; minutes to write)."""
PROGRESS_MIN_POINTS: Final = 1 << 20
"""Grids of at least this many points show a progress bar on a terminal's stderr."""
FLOAT64_EXACT_LIMIT: Final = 2**53
"""Integers up to this magnitude are exact in float64."""
METRIC_UNITS: Final[Mapping[str, str]] = {
    "flops": "FLOP",
    "vector_flops": "FLOP",
    "bytes_read": "byte",
    "bytes_written": "byte",
    "weight_bytes": "byte",
    "params": "parameter",
    "activation_bytes": "byte",
}
"""The unit of each metric of :class:`~llm_perf_opt.symbolic.cost.Cost`."""

IntArray = npt.NDArray[np.int64]


def _axis(values: object) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(values).ravel())


def _float_axis(name: str, values: object) -> tuple[float, ...]:
    array = np.asarray(values)
    if array.dtype.kind not in "iuf" or not np.all(np.isfinite(array)):
        raise LlmPerfOptError(f"{name}: must be a list of numbers, got {values!r}")
    return tuple(float(v) for v in array.ravel())


def _is_axis(instance: object, attribute: Any, value: object) -> None:
    if not isinstance(value, tuple) or not value or not all(type(v) is int for v in value):
        raise LlmPerfOptError(f"{attribute.name}: must be a non-empty tuple of integers, got {value!r}")


def _is_float_axis(instance: object, attribute: Any, value: object) -> None:
    if not isinstance(value, tuple) or not value or not all(type(v) is float for v in value):
        raise LlmPerfOptError(f"{attribute.name}: must be a non-empty tuple of numbers, got {value!r}")


@frozen(kw_only=True)
class GridAxes:
    """The values of each workload field and what-if; the grid is their Cartesian product.

    Build it with :meth:`of`, which validates the values; the fields here are already checked
    tuples of ints (floats for ρ and τ). A what-if left at its default is not a column of the output.
    """

    batch: tuple[int, ...] = field(validator=_is_axis)
    frames: tuple[int, ...] = field(validator=_is_axis)
    height: tuple[int, ...] = field(validator=_is_axis)
    width: tuple[int, ...] = field(validator=_is_axis)
    steps: tuple[int, ...] = field(validator=_is_axis)
    text_len: tuple[int, ...] = field(validator=_is_axis)
    attention_density: tuple[float, ...] = field(default=(1.0,), validator=_is_float_axis)
    reused_steps: tuple[int, ...] = field(default=(0,), validator=_is_axis)
    guided_fraction: tuple[float, ...] = field(default=(1.0,), validator=_is_float_axis)

    @classmethod
    def of(cls, **values: Sequence[float] | npt.ArrayLike) -> GridAxes:
        """Axes from sequences (or 1-D arrays) of values per field, checked by
        :func:`validate_workload_arrays` and :func:`~llm_perf_opt.symbolic.whatif.check_whatifs`;
        every workload field is required, the what-ifs are optional, an empty axis is an error, and
        so is a grid of more than :data:`MAX_POINTS` points."""
        missing = [name for name in FIELDS if name not in values]
        if missing:
            raise LlmPerfOptError(f"{missing[0]}: required axis is missing; fields: {', '.join(FIELDS)}")
        arrays = {}
        for name in (*FIELDS, *WHATIF_DEFAULTS):
            if name not in values:
                continue
            array = np.asarray(values.pop(name))
            if array.ndim != 1 or array.size == 0:
                raise LlmPerfOptError(f"{name}: must be a non-empty list of values, got shape {array.shape}")
            arrays[name] = array
        if values:
            raise LlmPerfOptError(
                f"{sorted(values)[0]}: unknown workload field; accepted: "
                f"{', '.join((*FIELDS, *WHATIF_DEFAULTS))}"
            )
        size = int(np.prod([array.size for array in arrays.values()], dtype=object))
        if size > MAX_POINTS:
            raise LlmPerfOptError(
                f"grid: {size} points ({' × '.join(str(a.size) for a in arrays.values())}) exceed the limit "
                f"of {MAX_POINTS}; split the grid"
            )
        validate_workload_arrays({name: arrays[name] for name in FIELDS})
        whatifs = {name: arrays.get(name, np.asarray([default])) for name, default in WHATIF_DEFAULTS.items()}
        check_whatifs(
            Workload(
                batch=1,
                frames=1,
                height=16,
                width=16,
                steps=np.asarray(arrays["steps"])[:, None],
                text_len=0,
                attention_density=whatifs["attention_density"],
                reused_steps=whatifs["reused_steps"][None, :],
                guided_fraction=whatifs["guided_fraction"],
            )
        )
        axes: dict[str, Any] = {name: _axis(arrays[name]) for name in FIELDS}
        for name, array in arrays.items():
            if name in _FLOAT_FIELDS:
                axes[name] = _float_axis(name, array)
            elif name in WHATIF_DEFAULTS:
                axes[name] = _axis(array)
        return cls(**axes)

    def axes(self) -> dict[str, tuple[float, ...]]:
        """Field → values, in row order: the workload fields, then the what-ifs."""
        return {name: getattr(self, name) for name in (*FIELDS, *WHATIF_DEFAULTS)}

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields written as columns: the workload's, then the what-ifs not at their default."""
        shown = [name for name, default in WHATIF_DEFAULTS.items() if getattr(self, name) != (default,)]
        return (*FIELDS, *shown)

    @property
    def shape(self) -> tuple[int, ...]:
        """Length of each axis, in :data:`FIELDS` order."""
        return tuple(len(values) for values in self.axes().values())

    @property
    def size(self) -> int:
        """Number of points."""
        return int(np.prod(self.shape, dtype=object))

    @property
    def varied(self) -> tuple[str, ...]:
        """The fields with more than one value: the dimensions of a labelled grid."""
        return tuple(name for name, values in self.axes().items() if len(values) > 1)

    def points(self, start: int, stop: int) -> dict[str, npt.NDArray[Any]]:
        """The values of each field for the points ``start`` to ``stop`` (row-major order): int64,
        float64 for ρ and τ."""
        index = np.unravel_index(np.arange(start, stop, dtype=np.int64), self.shape)
        return {
            name: np.asarray(values, dtype=np.float64 if name in _FLOAT_FIELDS else np.int64)[i]
            for (name, values), i in zip(self.axes().items(), index, strict=True)
        }


def _columns(value: object) -> tuple[Column, ...]:
    return tuple((str(module), str(metric)) for module, metric in value)  # type: ignore[attr-defined]


def _check_columns(instance: object, attribute: Any, value: tuple[Column, ...]) -> None:
    if not value:
        raise LlmPerfOptError("columns: at least one (module, metric) column is needed")
    for _, metric in value:
        if metric not in METRICS:
            raise LlmPerfOptError(f"metric: unknown metric {metric!r}, expected one of {', '.join(METRICS)}")


@frozen(kw_only=True)
class GridRequest:
    """A grid of whole runs: which variant, how it runs, the axes and the columns asked for.

    Attributes:
        variant: the variant (Wan2.1, VACE or Wan2.2).
        implementation: the implementation profile the bytes follow.
        guidance: classifier-free guidance on (two transformer forwards per step).
        pad_text: prompts padded to 512 tokens, as both pipelines do (``text_len`` is then only a
            label); off, the prompt runs at its own length.
        axes: the workload values.
        columns: ``(module_id, metric)`` pairs to evaluate, in output order.
        sparse_attention: the sparse-attention pattern whose overhead the attention carries
            (``ideal``: ρ alone; :data:`~llm_perf_opt.symbolic.whatif.SPARSE_PATTERNS`).
        step_cache: the step-cache method whose module the run has (``None``: reuse alone).
    """

    variant: AnyVariant = field(validator=validators.instance_of((WanVariant, VaceVariant, Wan22Variant)))
    implementation: Implementation = field(validator=validators.instance_of(Implementation))
    guidance: bool = field(validator=validators.instance_of(bool))
    pad_text: bool = field(validator=validators.instance_of(bool))
    axes: GridAxes = field(validator=validators.instance_of(GridAxes))
    columns: tuple[Column, ...] = field(converter=_columns, validator=_check_columns)
    sparse_attention: str = field(default="ideal", validator=validators.instance_of(str))
    step_cache: str | None = field(default=None, validator=validators.optional(validators.instance_of(str)))

    def __attrs_post_init__(self) -> None:
        record = self.variant if isinstance(self.variant, WanVariant) else self.variant.transformer
        if isinstance(self.variant, Wan22Variant):
            for height in self.axes.height:
                for width in self.axes.width:
                    check_frame_size(record, height, width)
        if not self.pad_text and record.image_tokens:
            bad = [n for n in self.axes.text_len if n != PADDED_TEXT_LEN]
            if bad:
                raise LlmPerfOptError(
                    f"text_len: {self.variant.model_variant} splits its context at {PADDED_TEXT_LEN} "
                    f"text tokens, so an unpadded prompt must have exactly {PADDED_TEXT_LEN} tokens; "
                    f"{len(bad)} values are not; first: {bad[0]}"
                )

    def tree(self) -> ModuleTree:
        """The pipeline tree the columns come from."""
        return variant_tree(
            self.variant, self.implementation, self.guidance, self.sparse_attention, self.step_cache
        )[0]

    def evaluator(self) -> ColumnEvaluator:
        """The compiled columns (an unknown module id is an error naming it)."""
        return compile_columns(self.tree(), self.columns)

    def attributes(self) -> dict[str, str | int]:
        """What the figures are of, for a labelled grid's attributes."""
        return {
            "variant": self.variant.model_variant,
            "model_id": self.variant.model_id,
            "implementation": self.implementation.name,
            "guidance": int(self.guidance),
            "pad_text": int(self.pad_text),
            "sparse_attention": self.sparse_attention,
            "step_cache": self.step_cache or "none",
        }


def _workload(request: GridRequest, points: Mapping[str, Any]) -> Workload:
    text_len = points["text_len"]
    if request.pad_text:
        text_len = np.full_like(text_len, PADDED_TEXT_LEN) if hasattr(text_len, "shape") else PADDED_TEXT_LEN
    return Workload(
        batch=points["batch"],
        frames=points["frames"],
        height=points["height"],
        width=points["width"],
        steps=points["steps"],
        text_len=text_len,
        attention_density=points["attention_density"],
        reused_steps=points["reused_steps"],
        guided_fraction=points["guided_fraction"],
    )


def iter_chunks(
    request: GridRequest, chunk_points: int = DEFAULT_CHUNK_POINTS
) -> Iterator[tuple[dict[str, npt.NDArray[Any]], tuple[npt.NDArray[np.float64], ...]]]:
    """``(points, columns)`` for consecutive chunks of at most ``chunk_points`` points: the values of
    each field and one float64 array per column, all of the chunk's length."""
    if isinstance(chunk_points, bool) or not isinstance(chunk_points, int) or chunk_points < 1:
        raise LlmPerfOptError(f"chunk_points: must be an integer ≥ 1, got {chunk_points!r}")
    evaluator = request.evaluator()
    size = request.axes.size
    for start in range(0, size, chunk_points):
        stop = min(size, start + chunk_points)
        points = request.axes.points(start, stop)
        workload = _workload(request, {k: v.astype(np.float64) for k, v in points.items()})
        outputs = evaluator.evaluate_arrays(*workload.inputs())
        yield (
            points,
            tuple(np.broadcast_to(np.asarray(o, dtype=np.float64), (stop - start,)) for o in outputs),
        )


@frozen(kw_only=True)
class LabelledGrid:
    """A grid's columns as arrays with one dimension per varied field (see :func:`evaluate_labelled`).

    Attributes:
        request: what was evaluated.
        values: one array per column, of shape ``[len(axis) for axis in request.axes.varied]``;
            numpy arrays, or dask arrays evaluated chunk by chunk when computed.
    """

    request: GridRequest
    values: tuple[Any, ...]

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset``: one variable per column named ``module:metric``, one dimension per
        varied field with its values as coordinate, the fixed fields as scalar coordinates, and
        attributes naming the variant, the profile, the unit of each variable and whether float64
        holds it exactly."""
        import xarray as xr

        axes = self.request.axes.axes()
        dims = self.request.axes.varied

        def typed(name: str) -> Any:
            return np.float64 if name in _FLOAT_FIELDS else np.int64

        coords: dict[str, Any] = {name: (name, np.asarray(axes[name], dtype=typed(name))) for name in dims}
        coords.update(
            {
                name: typed(name)(values[0])
                for name, values in axes.items()
                if name not in dims and name in self.request.axes.fields
            }
        )
        variables = {}
        for (module, metric), array in zip(self.request.columns, self.values, strict=True):
            attrs: dict[str, str | int] = {
                "module_id": module,
                "metric": metric,
                "units": METRIC_UNITS[metric],
            }
            if not hasattr(array, "__dask_graph__"):
                attrs["float64_exact"] = int(bool(np.all(np.abs(array) <= FLOAT64_EXACT_LIMIT)))
            variables[f"{module}:{metric}"] = (dims, array, attrs)
        return xr.Dataset(variables, coords=coords, attrs=self.request.attributes())

    def to_dataframe(self) -> Any:
        """A pandas DataFrame with one row per point: the fields, then one column per column."""
        frame = self.to_xarray().to_dataframe().reset_index()
        names = [f"{module}:{metric}" for module, metric in self.request.columns]
        return frame[[*self.request.axes.fields, *names]]


def evaluate_labelled(request: GridRequest, *, chunks: int | Sequence[int] | None = None) -> LabelledGrid:
    """Evaluate a grid as arrays over its varied fields.

    With ``chunks`` (dask's chunk sizes along the varied dimensions) the arrays are dask arrays and
    nothing is evaluated until they are computed, one chunk at a time; without, numpy arrays.
    """
    axes = request.axes.axes()
    dims = request.axes.varied
    shape = tuple(len(axes[name]) for name in dims)
    evaluator = request.evaluator()
    mesh: dict[str, Any] = {}
    for name, axis in axes.items():
        if name in dims:
            position = dims.index(name)
            mesh[name] = np.asarray(axis, dtype=np.float64).reshape(
                [len(axis) if i == position else 1 for i in range(len(dims))]
            )
        else:
            mesh[name] = np.float64(axis[0])
    if chunks is not None:
        da: Any = importlib.import_module("dask.array")
        if not dims:
            raise LlmPerfOptError("chunks: a grid of one point has no dimension to chunk")
        sizes = (chunks,) * len(dims) if isinstance(chunks, int) else tuple(chunks)
        if len(sizes) != len(dims) or not all(isinstance(c, int) and c >= 1 for c in sizes):
            raise LlmPerfOptError(
                f"chunks: must be one integer ≥ 1 or one per varied field ({', '.join(dims)}), got {chunks!r}"
            )

        def lazy(value: Any) -> Any:
            array = np.asarray(value)
            own = tuple(size if length > 1 else 1 for size, length in zip(sizes, array.shape, strict=False))
            return da.broadcast_to(da.from_array(array, chunks=own), shape, chunks=sizes)

        mesh = {name: lazy(value) for name, value in mesh.items()}
    result = evaluator.evaluate(_workload(request, mesh))
    arrays: tuple[Any, ...] = tuple(result[column] for column in request.columns)
    if chunks is None:
        arrays = tuple(np.broadcast_to(a, shape) if a.shape != shape else a for a in arrays)
    return LabelledGrid(request=request, values=arrays)


def _progress(total: int, enabled: bool | None) -> Any:
    if enabled is False or (enabled is None and (total < PROGRESS_MIN_POINTS or not sys.stderr.isatty())):
        return nullcontext(None)
    from tqdm import tqdm

    return tqdm(total=total, unit="points", unit_scale=True, file=sys.stderr, desc="grid")


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise LlmPerfOptError(f"format: unknown format {fmt!r}; accepted: {', '.join(FORMATS)}")
    return fmt


def write_grid(
    request: GridRequest,
    out: str | Path | None,
    fmt: str = "csv",
    *,
    chunk_points: int = DEFAULT_CHUNK_POINTS,
    progress: bool | None = None,
    stream: IO[bytes] | None = None,
) -> int:
    """Write a grid to ``out`` (or to ``stream``, default standard output, when ``out`` is ``None``)
    as CSV, Parquet or netCDF, chunk by chunk; return the number of points written.

    The format, the columns and the output path are checked before anything is opened; the file is
    replaced only once complete. CSV and Parquet have one row per point (the six fields, the what-ifs
    not at their default, then one column per ``module:metric``); netCDF holds the labelled grid of
    :meth:`LabelledGrid.to_xarray`.
    ``progress`` ``None`` shows a bar on stderr for grids of at least a million points when stderr
    is a terminal.
    """
    _check_format(fmt)
    if out is not None:
        out = check_output_file(out)
    elif fmt == "netcdf":
        raise LlmPerfOptError("out: netCDF needs a file; give an output path")
    if isinstance(chunk_points, bool) or not isinstance(chunk_points, int) or chunk_points < 1:
        raise LlmPerfOptError(f"chunk_points: must be an integer ≥ 1, got {chunk_points!r}")
    request.evaluator()
    if fmt == "netcdf":
        assert out is not None
        return _write_netcdf(request, Path(out), chunk_points, progress)
    if out is not None:
        with atomic_output(out, binary=True) as sink:
            _write_rows(request, sink, fmt, chunk_points, progress)
        return request.axes.size
    sink = stream or sys.stdout.buffer
    try:
        _write_rows(request, sink, fmt, chunk_points, progress)
        sink.flush()
    except BrokenPipeError:
        raise
    except OSError as error:
        raise LlmPerfOptError(f"out: cannot write to standard output: {error.strerror or error}") from None
    return request.axes.size


def _write_rows(
    request: GridRequest, sink: IO[bytes], fmt: str, chunk_points: int, progress: bool | None
) -> None:
    import pyarrow as pa

    fields = request.axes.fields
    names = [f"{module}:{metric}" for module, metric in request.columns]
    schema = pa.schema(
        [
            *(pa.field(name, pa.float64() if name in _FLOAT_FIELDS else pa.int64()) for name in fields),
            *(pa.field(n, pa.float64()) for n in names),
        ]
    )
    if fmt == "csv":
        import pyarrow.csv as pacsv

        writer: Any = pacsv.CSVWriter(
            sink, schema, write_options=pacsv.WriteOptions(quoting_header="none", batch_size=chunk_points)
        )
    else:
        import pyarrow.parquet as pq

        writer = pq.ParquetWriter(sink, schema)
    with _progress(request.axes.size, progress) as bar:
        for points, columns in iter_chunks(request, chunk_points):
            arrays = [*(points[name] for name in fields), *columns]
            writer.write_table(pa.Table.from_arrays([pa.array(a) for a in arrays], schema=schema))
            if bar is not None:
                bar.update(len(arrays[0]))
    writer.close()


def _write_netcdf(request: GridRequest, out: Path, chunk_points: int, progress: bool | None) -> int:
    dims = request.axes.varied
    shape = [len(request.axes.axes()[name]) for name in dims]
    chunks: list[int] = []
    remaining = chunk_points
    for length in reversed(shape):
        chunks.insert(0, max(1, min(length, remaining)))
        remaining = max(1, remaining // length)
    labelled = evaluate_labelled(request, chunks=tuple(chunks) if dims else None)
    dataset = labelled.to_xarray()
    size = request.axes.size
    show = progress is True or (progress is None and size >= PROGRESS_MIN_POINTS and sys.stderr.isatty())
    if show:
        from tqdm.dask import TqdmCallback

        callback: Any = TqdmCallback(desc="grid", file=sys.stderr)
    else:
        callback = nullcontext()
    with atomic_path(out) as temp, callback:
        dataset.to_netcdf(temp, engine="netcdf4", format="NETCDF4")
    return size
