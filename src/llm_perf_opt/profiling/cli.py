"""The ``profile`` command: import a trace against a report, show a stored comparison, fit factors.

``register(subparsers)`` adds ``profile import TRACE --report DIR --device D`` (import, compare, store
under the report's folder as ``profiles/<profile_run_id>.json`` and print) and ``profile compare
--report DIR --profile-run-id ID`` (print a stored comparison), each with
``set_defaults(func=handler)``, and ``profile fit TRACE --device D --frames … --out FILE`` (fit the
efficiency factors to the trace and write an override file for ``--efficiencies``); a handler
returns the exit status and raises :class:`~llm_perf_opt.errors.LlmPerfOptError` for bad input.
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

__all__ = ["compare_command", "fit_command", "import_command", "register"]


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


def _stage_trees(args: argparse.Namespace, stages: set[str]) -> list[tuple[Any, Any]]:
    """The trees and workloads of the traced stages (transformer forward, VAE decode) of the run."""
    from llm_perf_opt.wan2_1.evaluate import dit_tree, resolve_vae_workload, resolve_workload, vae_tree
    from llm_perf_opt.wan2_1.implementation import get_implementation
    from llm_perf_opt.wan2_1.variants import get_variant

    implementation = get_implementation(args.implementation)
    size = {"frames": args.frames, "height": args.height, "width": args.width}
    trees = []
    if "diffusion" in stages:
        variant = get_variant(args.variant)
        workload, _ = resolve_workload(variant, batch=args.batch, text_len=args.text_len, **size)
        trees.append((dit_tree(variant, implementation), workload))
    if "vae" in stages:
        workload, _ = resolve_vae_workload(batch=args.batch, **size)
        trees.append((vae_tree(implementation, encodes=0, decodes=1), workload))
    return trees


def fit_command(args: argparse.Namespace) -> int:
    """Fit efficiency factors to ``args.trace`` and write them as an override file ``args.out``."""
    from llm_perf_opt.errors import LlmPerfOptError
    from llm_perf_opt.profiling.calibrate import (
        canonical_device,
        draft_fit,
        fit_samples,
        write_efficiency_override,
    )

    trace = import_trace(args.trace)
    stages = {t.module_id for t in trace.modules if t.calls and "." not in t.module_id} & {"diffusion", "vae"}
    if not stages:
        raise LlmPerfOptError(f"trace: {args.trace}: no range of 'diffusion' or 'vae' to fit to")
    samples = tuple(
        sample
        for tree, workload in _stage_trees(args, stages)
        for sample in fit_samples(trace, tree, workload, args.device, attention_kernel=args.attention_kernel)
    )
    fit = draft_fit(samples, canonical_device(args.device))
    basis = f"fitted to {trace.source} ({fit.samples} module × op-class samples) by llm-perf-opt profile fit"
    path = write_efficiency_override(fit, args.out, basis=basis)
    print(f"{'op class':<12} {'samples':>7} {'measured s':>11} {'predicted s':>11} {'rms ln':>7}")
    for row in fit.residuals:
        print(
            f"{row.op_class:<12} {row.samples:>7} {row.measured_seconds:>11.4f} "
            f"{row.predicted_seconds:>11.4f} {row.rms_log_residual:>7.3f}"
        )
    print("factors: " + ", ".join(f"{k}={v:.4g}" for k, v in fit.factors.items()))
    if fit.undetermined:
        print(f"not determined by this trace (left at the start value): {', '.join(fit.undetermined)}")
    print(f"efficiency override for {fit.device} written: {path} (an --efficiencies override file)")
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
    fitted = commands.add_parser(
        "fit", help="fit efficiency factors to a trace and write them as an --efficiencies override file"
    )
    fitted.add_argument("trace", type=Path, help="annotated trace of a transformer forward and/or VAE decode")
    fitted.add_argument(
        "--device", required=True, help=f"device of the trace (a table name, or {HOST_DEVICE!r})"
    )
    fitted.add_argument("--variant", default="t2v-14b", help="the traced transformer's variant (t2v-14b)")
    fitted.add_argument("--implementation", default="diffusers", help="implementation profile (diffusers)")
    fitted.add_argument("--batch", type=int, default=1, help="videos per call (1)")
    fitted.add_argument("--frames", type=int, required=True, help="video frames of the traced run")
    fitted.add_argument("--height", type=int, required=True, help="video height in pixels")
    fitted.add_argument("--width", type=int, required=True, help="video width in pixels")
    fitted.add_argument("--text-len", type=int, default=512, help="text tokens (512, padded)")
    fitted.add_argument("--attention-kernel", default="sdpa", help="attention kernel of the run (sdpa)")
    fitted.add_argument("--out", type=Path, required=True, help="override file to write")
    fitted.set_defaults(func=fit_command)
