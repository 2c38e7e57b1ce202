"""The ``grid`` command: any module's figures over a grid of whole runs, as CSV, Parquet or netCDF.

``llm-perf-opt grid --variant t2v-14b --frames 17,33,81 --height 480,720 --width 832,1280
[--module pipeline] [--metric flops] [--out grid.parquet] [--format parquet]`` writes one row per
point (CSV, Parquet) or one labelled grid (netCDF) through :func:`~llm_perf_opt.report.grid.write_grid`:
every value is parsed strictly (:func:`~llm_perf_opt.parsing.parse_int_list`) and validated, the
columns are compiled and the output path is checked before anything is written, and the file is
replaced only once complete. :func:`register` adds the command to a command line's sub-parsers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import find_variant
from llm_perf_opt.parsing import parse_int, parse_int_list
from llm_perf_opt.report.grid import DEFAULT_CHUNK_POINTS, FIELDS, FORMATS, GridAxes, GridRequest, write_grid
from llm_perf_opt.symbolic.cost import METRICS
from llm_perf_opt.wan2_1.geometry import PADDED_TEXT_LEN
from llm_perf_opt.wan2_1.implementation import IMPLEMENTATIONS, get_implementation
from llm_perf_opt.wan2_1.pipeline import PIPELINE_ID
from llm_perf_opt.wan2_1.vace import VaceVariant
from llm_perf_opt.wan2_1.workloads import default_steps
from llm_perf_opt.wan2_2.variants import Wan22Variant

__all__ = ["grid_request", "handle_grid", "register"]

_DEFAULTS: Final = {
    "batch": "1",
    "frames": "81",
    "height": "480",
    "width": "832",
    "text_len": str(PADDED_TEXT_LEN),
}
"""Default axis of each field (``steps``: the variant's task default)."""
_SUFFIX_FORMATS: Final = {".csv": "csv", ".parquet": "parquet", ".nc": "netcdf"}
"""The format an output file's suffix implies when ``--format`` is not given."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``grid`` command to ``subparsers``; its handler is :func:`handle_grid`."""
    grid = subparsers.add_parser("grid", help="figures over a grid of workloads, as CSV, Parquet or netCDF")
    grid.add_argument("--variant", required=True, help="model_variant or model_id, e.g. t2v-14b")
    for name in FIELDS:
        default = _DEFAULTS.get(name)
        grid.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=default,
            help="comma-separated values"
            + (f" (default {default})" if default else " (default: task default)"),
        )
    grid.add_argument(
        "--module", action="append", help=f"module id (repeatable; default the whole run, {PIPELINE_ID!r})"
    )
    grid.add_argument("--metric", action="append", choices=METRICS, help="metric (repeatable; default flops)")
    grid.add_argument("--out", type=Path, help="output file (default: standard output, CSV or Parquet)")
    grid.add_argument(
        "--format",
        choices=FORMATS,
        help="file format (default: from the --out suffix .csv/.parquet/.nc, else csv)",
    )
    grid.add_argument(
        "--implementation",
        default="official",
        choices=sorted(IMPLEMENTATIONS),
        help="implementation profile the bytes follow (default: official)",
    )
    grid.add_argument("--no-guidance", action="store_true", help="one transformer forward per step")
    grid.add_argument(
        "--no-pad-text",
        action="store_true",
        help="do not pad the prompt to 512 tokens (trimming implementations)",
    )
    grid.add_argument(
        "--chunk-points",
        default=str(DEFAULT_CHUNK_POINTS),
        help=f"points per chunk (default {DEFAULT_CHUNK_POINTS})",
    )
    grid.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: for a million points or more, on a terminal)",
    )
    grid.set_defaults(func=handle_grid)


def grid_request(args: argparse.Namespace) -> GridRequest:
    """The validated :class:`GridRequest` of parsed ``grid`` arguments."""
    variant = find_variant(args.variant)
    texts = {name: getattr(args, name) for name in FIELDS}
    if texts["steps"] is None:
        own = (
            variant.sample_steps
            if isinstance(variant, Wan22Variant | VaceVariant)
            else default_steps(variant)
        )
        texts["steps"] = str(own)
    axes = GridAxes.of(
        **{name: parse_int_list(f"--{name.replace('_', '-')}", text) for name, text in texts.items()}
    )
    modules = args.module or [PIPELINE_ID]
    metrics = args.metric or ["flops"]
    return GridRequest(
        variant=variant,
        implementation=get_implementation(args.implementation),
        guidance=not args.no_guidance,
        pad_text=not args.no_pad_text,
        axes=axes,
        columns=tuple((module, metric) for module in modules for metric in metrics),
    )


def _format(args: argparse.Namespace) -> str:
    if args.format is not None:
        return str(args.format)
    if args.out is not None:
        return _SUFFIX_FORMATS.get(Path(args.out).suffix.lower(), "csv")
    return "csv"


def handle_grid(args: argparse.Namespace) -> int:
    """Run the ``grid`` command; bad input raises :class:`LlmPerfOptError` before anything is written."""
    request = grid_request(args)
    chunk_points = parse_int("--chunk-points", args.chunk_points)
    if chunk_points < 1:
        raise LlmPerfOptError(f"--chunk-points: must be an integer ≥ 1, got {chunk_points}")
    fmt = _format(args)
    if args.out is None and fmt == "netcdf":
        raise LlmPerfOptError("--format: netcdf needs --out FILE; standard output takes csv or parquet")
    write_grid(request, args.out, fmt, chunk_points=chunk_points, progress=args.progress, stream=None)
    if args.out is None:
        sys.stdout.flush()
    return 0
