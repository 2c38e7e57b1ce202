"""The ``profile`` command: import a trace against a report, show a stored comparison.

``register(subparsers)`` adds ``profile import TRACE --report DIR --device D`` (import, compare, store
under the report's folder as ``profiles/<profile_run_id>.json`` and print) and ``profile compare
--report DIR --profile-run-id ID`` (print a stored comparison), each with
``set_defaults(func=handler)``; a handler returns the exit status and raises
:class:`~llm_perf_opt.errors.LlmPerfOptError` for bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llm_perf_opt.profiling.compare import (
    HOST_DEVICE,
    compare,
    device_roofline,
    format_comparison,
    read_comparison,
    write_comparison,
)
from llm_perf_opt.profiling.trace import import_trace

__all__ = ["compare_command", "import_command", "register"]


def _report(folder: Path) -> Any:
    from llm_perf_opt.report.files import read_report

    return read_report(folder)[0]


def import_command(args: argparse.Namespace) -> int:
    """Import ``args.trace``, compare it with the report in ``args.report``, store and print it."""
    report = _report(args.report)
    comparison = compare(
        import_trace(args.trace),
        report,
        device_roofline(args.device, args.precision),
        profile_run_id=args.profile_run_id,
    )
    path = write_comparison(args.report, comparison)
    print(format_comparison(comparison))
    print(f"\ncomparison {comparison.profile_run_id} written: {path}")
    return 0


def compare_command(args: argparse.Namespace) -> int:
    """Print the stored comparison ``args.profile_run_id`` of the report in ``args.report``."""
    print(format_comparison(read_comparison(args.report, args.profile_run_id)))
    return 0


def register(subparsers: Any) -> None:
    """Add ``profile import`` and ``profile compare`` to a command line's sub-parsers."""
    profile = subparsers.add_parser("profile", help="measured against predicted: import a profiler trace")
    commands = profile.add_subparsers(dest="profile_command", required=True, metavar="COMMAND")
    imported = commands.add_parser(
        "import", help="attribute a trace to module ids and compare it with a report made with a device"
    )
    imported.add_argument(
        "trace", type=Path, help="torch.profiler Chrome trace (.json, .json.gz) or nsys .sqlite"
    )
    imported.add_argument("--report", type=Path, required=True, help="report folder made with --device")
    imported.add_argument(
        "--device", required=True, help=f"device the trace was measured on (a table name, or {HOST_DEVICE!r})"
    )
    imported.add_argument("--precision", default="bf16", help="precision of the roofline's peak (bf16)")
    imported.add_argument(
        "--profile-run-id", help="id to store it under (default: the report's profile_run_id)"
    )
    imported.set_defaults(func=import_command)
    shown = commands.add_parser("compare", help="show a stored measured-against-predicted comparison")
    shown.add_argument("--report", type=Path, required=True, help="report folder")
    shown.add_argument("--profile-run-id", required=True, help="id of the stored comparison")
    shown.set_defaults(func=compare_command)
