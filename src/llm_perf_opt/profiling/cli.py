"""The ``profile`` command: import a trace against a report, show a stored comparison, fit factors.

``register(subparsers)`` adds ``profile import TRACE --report DIR --device D`` (import, compare, store
under the report's folder as ``profiles/<profile_run_id>.json`` and print) and ``profile compare
--report DIR --profile-run-id ID`` (print a stored comparison), each with
``set_defaults(func=handler)``, and ``profile fit TRACE --device D --frames … --out FILE`` (fit the
deployment's efficiency factors to the trace with the engine's fit, print the residuals per op class
and write an override file for ``--efficiencies``); a handler
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

__all__ = ["compare_command", "fit_command", "format_fit", "import_command", "register"]


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


def _traced_model(args: argparse.Namespace) -> Any:
    """The compiled run of the traced deployment: one GPU (or the host CPU), weights resident."""
    from llm_perf_opt.deployment.engine import run_model
    from llm_perf_opt.hardware.efficiency import EFFICIENCIES, load_efficiencies
    from llm_perf_opt.models import build_deployment
    from llm_perf_opt.profiling.calibrate import host_accelerator, host_efficiencies

    table = EFFICIENCIES if args.efficiencies is None else load_efficiencies(args.efficiencies)
    if args.device == HOST_DEVICE:
        accelerator: Any = host_accelerator()
        table = host_efficiencies(table)
    else:
        accelerator = args.device
    deployment = build_deployment(
        args.variant,
        implementation=args.implementation,
        accelerator=accelerator,
        gpus=1,
        offload="none",
        attention_kernel=args.attention_kernel,
        precision=args.precision,
        efficiencies=table,
    )
    return run_model(deployment)


def fit_command(args: argparse.Namespace) -> int:
    """Fit the deployment's efficiency factors to the traces ``args.trace`` (of one workload) with the
    engine's fit and write them as an override file ``args.out``."""
    from llm_perf_opt.errors import LlmPerfOptError
    from llm_perf_opt.profiling.calibrate import TracedRun, fit_traces, write_efficiency_override
    from llm_perf_opt.wan2_1.evaluate import resolve_workload
    from llm_perf_opt.wan2_1.variants import get_variant

    model = _traced_model(args)
    tree = model.tree
    stages = {node.id for node in tree if node.parent_id == tree.root_id}
    workload, _ = resolve_workload(
        get_variant(args.variant),
        batch=args.batch,
        frames=args.frames,
        height=args.height,
        width=args.width,
        text_len=args.text_len,
        pad_text=args.text_len == 512,
    )
    runs = []
    for path in args.trace:
        trace = import_trace(path)
        traced = sorted(stages & {t.module_id for t in trace.modules if t.calls})
        if not traced:
            raise LlmPerfOptError(
                f"trace: {path}: no range of a stage of the run ({', '.join(sorted(stages))}) to fit to"
            )
        runs.append(TracedRun(trace=trace, model=model, workloads=dict.fromkeys(traced, workload)))
    fit = fit_traces(runs)
    basis = (
        f"fitted to {fit.source} ({len(fit.units)} module ranges) by llm-perf-opt profile fit "
        "(the engine's least-squares fit)"
    )
    path = write_efficiency_override(fit, args.out, basis=basis)
    print(format_fit(fit))
    print(f"efficiency override for {fit.device} written: {path} (an --efficiencies override file)")
    return 0


def format_fit(fit: Any) -> str:
    """The residuals per op class and the factors of a :class:`~.calibrate.TraceFit`, as text."""
    lines = [
        f"{'op class':<12} {'units':>5} {'measured s':>11} {'predicted s':>11} {'rms ln':>7} {'max |ln|':>8}"
    ]
    for row in fit.residuals:
        lines.append(
            f"{row.op_class:<12} {row.units:>5} {row.measured_seconds:>11.4g} "
            f"{row.predicted_seconds:>11.4g} {row.rms_log_residual:>7.3f} {row.largest_log_residual:>8.3f}"
        )
    lines.append(
        "factors (prior → fitted): "
        + ", ".join(f"{k} {fit.priors[k]:.4g} → {v:.4g}" for k, v in fit.factors.items())
    )
    if fit.at_bound:
        lines.append(f"at a bound: {', '.join(fit.at_bound)}")
    if fit.not_binding:
        lines.append(f"not binding at the fit (left where the prior pull did): {', '.join(fit.not_binding)}")
    if fit.undetermined:
        lines.append(f"not determined by this trace (not fitted, not written): {', '.join(fit.undetermined)}")
    if fit.unpredicted_seconds:
        lines.append(f"measured time of ranges with no declared work: {fit.unpredicted_seconds:.4f} s")
    if fit.unmeasured:
        lines.append(f"modules with work but no measured time (left out): {', '.join(fit.unmeasured)}")
    return "\n".join(lines)


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
    fitted.add_argument(
        "trace", type=Path, nargs="+", help="annotated traces of transformer forwards and/or VAE decodes"
    )
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
    fitted.add_argument("--precision", default="bf16", help="tensor precision of the run (bf16)")
    fitted.add_argument(
        "--efficiencies", type=Path, help="efficiency-factor override file the fit starts from (JSON)"
    )
    fitted.add_argument("--out", type=Path, required=True, help="override file to write")
    fitted.set_defaults(func=fit_command)
