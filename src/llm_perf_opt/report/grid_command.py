"""The ``grid`` command: any module's figures over a grid of whole runs, as CSV, Parquet or netCDF.

``llm-perf-opt grid --variant t2v-14b --frames 17,33,81 --height 480,720 --width 832,1280
[--module pipeline] [--metric flops] [--out grid.parquet] [--format parquet]
[--attention-density 0.25,0.5,1] [--reused-steps 0,10,20] [--guided-fraction 0.5,1]
[--sparse-attention vsa] [--step-cache teacache]`` writes one row per
point (CSV, Parquet) or one labelled grid (netCDF) through :func:`~llm_perf_opt.report.grid.write_grid`:
every value is parsed strictly (:func:`~llm_perf_opt.parsing.parse_int_list`) and validated, the
columns are compiled and the output path is checked before anything is written, and the file is
replaced only once complete. :func:`register` adds the command to a command line's sub-parsers.
"""

from __future__ import annotations

import argparse
import re
import sys
from fractions import Fraction
from pathlib import Path
from typing import Final

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import find_variant
from llm_perf_opt.parsing import parse_int, parse_int_list
from llm_perf_opt.report.grid import DEFAULT_CHUNK_POINTS, FIELDS, FORMATS, GridAxes, GridRequest, write_grid
from llm_perf_opt.symbolic.cost import METRICS
from llm_perf_opt.symbolic.whatif import SPARSE_PATTERNS
from llm_perf_opt.wan2_1.geometry import PADDED_TEXT_LEN
from llm_perf_opt.wan2_1.implementation import IMPLEMENTATIONS, get_implementation
from llm_perf_opt.wan2_1.pipeline import PIPELINE_ID, STEP_CACHES
from llm_perf_opt.wan2_1.vace import VaceVariant
from llm_perf_opt.wan2_1.workloads import default_steps
from llm_perf_opt.wan2_2.variants import Wan22Variant

__all__ = ["add_whatif_methods", "grid_request", "handle_grid", "parse_fraction_list", "register"]

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


_FRACTION: Final = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:/[1-9][0-9]*)?", re.ASCII)
"""A fraction as a user writes it: ``0.25``, ``1``, ``1/4``."""


def parse_fraction_list(field: str, text: str) -> list[Fraction]:
    """Comma-separated non-negative fractions (``0.25``, ``1/4``, ``1``), exact, in order; anything
    else is an error naming ``field``."""
    items = text.split(",") if isinstance(text, str) and text else [str(text)]
    values = []
    for item in items:
        if _FRACTION.fullmatch(item) is None or len(item) > 40:
            raise LlmPerfOptError(
                f"{field}: must be comma-separated fractions such as 0.25 or 1/4, got {item!r}"
            )
        values.append(Fraction(item))
    return values


def add_whatif_methods(parser: argparse.ArgumentParser) -> None:
    """The options naming a sparse-attention pattern and a step-cache method (their overheads)."""
    parser.add_argument(
        "--sparse-attention",
        default="ideal",
        choices=sorted(SPARSE_PATTERNS),
        help="sparse-attention pattern whose overhead the attention carries (default ideal: ρ alone)",
    )
    parser.add_argument(
        "--step-cache",
        choices=sorted(STEP_CACHES),
        help="step-cache method whose residual store/reuse and check the run has (default: reuse alone)",
    )


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
        "--attention-density",
        help="what-if ρ ∈ (0, 1]: fraction of attention scores computed, comma-separated (default 1)",
    )
    grid.add_argument(
        "--reused-steps",
        help="what-if k: steps a step cache reuses, 0 ≤ k < steps, comma-separated (default 0)",
    )
    grid.add_argument(
        "--guided-fraction",
        help="what-if τ ∈ [0, 1]: fraction of steps, from the first, with guidance (default 1)",
    )
    add_whatif_methods(grid)
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
    values: dict[str, list[float] | list[int]] = {
        name: parse_int_list(f"--{name.replace('_', '-')}", text) for name, text in texts.items()
    }
    if args.reused_steps is not None:
        values["reused_steps"] = parse_int_list("--reused-steps", args.reused_steps)
    for name in ("attention_density", "guided_fraction"):
        text = getattr(args, name)
        if text is not None:
            values[name] = [float(v) for v in parse_fraction_list(f"--{name.replace('_', '-')}", text)]
    axes = GridAxes.of(**values)
    modules = args.module or [PIPELINE_ID]
    metrics = args.metric or ["flops"]
    return GridRequest(
        variant=variant,
        implementation=get_implementation(args.implementation),
        guidance=not args.no_guidance,
        pad_text=not args.no_pad_text,
        axes=axes,
        columns=tuple((module, metric) for module in modules for metric in metrics),
        sparse_attention=args.sparse_attention,
        step_cache=args.step_cache,
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
