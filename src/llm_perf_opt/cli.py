"""The ``llm-perf-opt`` command line.

Commands:
    report     what a workload costs, stage by stage and module by module: report.json, summary.md
    compare    what moved between two reports
    grid       any module's figures over a grid of workloads, as CSV
    dit        what one diffusion-transformer forward costs, module by module
    formula    one module's cost formula, as text or LaTeX
    latex      every module's formulas as one LaTeX document
    variants   list the Wan2.1 variants
    profiles   list the workload profiles

Bad input is one line on stderr naming the field, the value and what is accepted, exit status 2.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from llm_perf_opt.contracts import Wan2_1AnalyticModel, Wan2_1AnalyticRequest, structure
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import ACCELERATORS
from llm_perf_opt.hardware.calibration import calibration_table
from llm_perf_opt.report.analysis import RunOptions
from llm_perf_opt.report.compare import compare_reports, comparison_markdown
from llm_perf_opt.report.files import REPORT_FILE, RunResult, read_report, run
from llm_perf_opt.report.summary import format_si
from llm_perf_opt.symbolic.compiler import compile_tree
from llm_perf_opt.symbolic.cost import METRICS
from llm_perf_opt.symbolic.formula import formula, latex_document, pretty, to_latex
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.evaluate import DitEvaluation, dit_tree, evaluate_dit, resolve_workload
from llm_perf_opt.wan2_1.geometry import PADDED_TEXT_LEN
from llm_perf_opt.wan2_1.implementation import IMPLEMENTATIONS, get_implementation
from llm_perf_opt.wan2_1.pipeline import pipeline_tree
from llm_perf_opt.wan2_1.variants import VARIANTS, get_variant
from llm_perf_opt.wan2_1.workloads import PROFILES, default_steps

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors in the library's one-line form."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise LlmPerfOptError(message)


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _add_variant(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", required=True, help="model_variant or model_id, e.g. t2v-14b")
    parser.add_argument(
        "--implementation",
        default="official",
        choices=sorted(IMPLEMENTATIONS),
        help="implementation profile the bytes follow (default: official)",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--implementation",
        default="official",
        choices=sorted(IMPLEMENTATIONS),
        help="implementation profile the bytes follow (default: official)",
    )
    parser.add_argument("--no-guidance", action="store_true", help="one transformer forward per step")
    parser.add_argument(
        "--no-pad-text",
        action="store_true",
        help="do not pad the prompt to 512 tokens (trimming implementations)",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="llm-perf-opt", description="What Wan2.1 video generation costs, without running it."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    report = commands.add_parser("report", help="report of one variant under one workload profile")
    report.add_argument("--variant", required=True, help="model_variant or model_id, e.g. t2v-14b")
    report.add_argument("--profile", required=True, help="workload profile id, e.g. wan2-1-720p")
    report.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a workload field: batch_size, num_frames, height, width, "
        "num_inference_steps or text_len",
    )
    report.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default ./reports)")
    report.add_argument(
        "--force-rebuild", action="store_true", help="rebuild even if an identical report exists"
    )
    report.add_argument("--profile-run-id", help="id of a measured profiling run, recorded in the report")
    _add_run_options(report)
    report.add_argument("--device", help="predict times on this accelerator (see `llm-perf-opt devices`)")
    report.add_argument("--gpus", type=_integer, default=1, help="devices in the run (default 1)")
    report.add_argument(
        "--attention-kernel", default="fa2", help="fused attention kernel: fa2 (default), fa3 or sdpa"
    )
    report.add_argument(
        "--offload",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--offload_model of generate.py (default: on with one GPU, off with more)",
    )
    report.add_argument("--t5-cpu", action="store_true", help="run the text encoder on the host CPU")

    compare = commands.add_parser("compare", help="what moved between two reports")
    compare.add_argument("before", type=Path, help="report folder (or its report.json)")
    compare.add_argument("after", type=Path, help="report folder (or its report.json)")

    grid = commands.add_parser("grid", help="figures over a grid of workloads, as CSV")
    grid.add_argument("--variant", required=True, help="model_variant or model_id, e.g. t2v-14b")
    for name, default in (
        ("batch", "1"),
        ("frames", "81"),
        ("height", "480"),
        ("width", "832"),
        ("steps", None),
        ("text-len", "512"),
    ):
        grid.add_argument(
            f"--{name}",
            default=default,
            help="comma-separated values"
            + (f" (default {default})" if default else " (default: task default)"),
        )
    grid.add_argument("--module", action="append", help="module id (repeatable; default the whole pipeline)")
    grid.add_argument("--metric", action="append", choices=METRICS, help="metric (repeatable; default flops)")
    grid.add_argument("--out", type=Path, help="CSV file (default: standard output)")
    _add_run_options(grid)

    commands.add_parser("variants", help="list the Wan2.1 variants")
    commands.add_parser("profiles", help="list the workload profiles")
    commands.add_parser("devices", help="list the accelerators of the time model")
    commands.add_parser("calibration", help="the time model against the published measurements")

    dit = commands.add_parser("dit", help="cost of one diffusion-transformer forward, module by module")
    _add_variant(dit)
    dit.add_argument("--batch", type=_integer, default=1, help="videos per forward (default 1)")
    dit.add_argument("--frames", type=_integer, default=81, help="output frames (default 81)")
    dit.add_argument("--height", type=_integer, default=480, help="output height in pixels (default 480)")
    dit.add_argument("--width", type=_integer, default=832, help="output width in pixels (default 832)")
    dit.add_argument("--text-len", type=_integer, default=512, help="prompt tokens (default 512)")
    dit.add_argument(
        "--no-pad-text",
        action="store_true",
        help="do not pad the prompt to 512 tokens (trimming implementations)",
    )

    show = commands.add_parser("formula", help="one module's cost formula")
    _add_variant(show)
    show.add_argument("--module", required=True, help="module id, e.g. diffusion.blocks.0.self_attn")
    show.add_argument("--metric", default="flops", choices=METRICS, help="metric (default flops)")
    show.add_argument("--latex", action="store_true", help="print LaTeX instead of text")

    latex = commands.add_parser("latex", help="every module's formulas as one LaTeX document")
    _add_variant(latex)
    latex.add_argument("--metric", action="append", choices=METRICS, help="metrics to include (default all)")
    return parser


def _dit_rows(evaluation: DitEvaluation) -> list[tuple[str, str, dict[str, int], int]]:
    """Rows at the depth a reader compares: top-level modules, and one block's parts × N blocks."""
    tree = dit_tree(evaluation.variant, evaluation.implementation)
    metrics = evaluation.metrics
    rows: list[tuple[str, str, dict[str, int], int]] = []
    for node in tree:
        depth = node.id.count(".")
        if depth == 1:
            rows.append((node.id, node.class_name, metrics[node.id], 1))
        blocks = tree[node.parent_id].parent_id if node.parent_id and depth == 3 else None
        if blocks is not None and node.id.split(".")[2] == "0" and tree[blocks].repetition == "for":
            count = tree[blocks].repetition_count or 1
            shown = node.id.replace(".0.", ".*.", 1)
            rows.append((shown, node.class_name, {m: v * count for m, v in metrics[node.id].items()}, count))
    return rows


def _print_dit(evaluation: DitEvaluation) -> None:
    variant, workload = evaluation.variant, evaluation.workload
    total = evaluation.metrics["diffusion"]
    print(
        f"{variant.model_id} ({variant.model_variant}), implementation {evaluation.implementation.name}: "
        f"one transformer forward, batch {workload.batch}, {workload.frames} frames, "
        f"{workload.height}×{workload.width}, {workload.text_len} text tokens"
    )
    header = (
        f"{'module':<36} {'class':<22} {'FLOPs':>13} {'share':>7} {'vector FLOPs':>14} "
        f"{'bytes r+w':>12} {'params':>10}"
    )
    print(header)
    print("-" * len(header))
    rows = [("diffusion", "WanModel", total, 1), *_dit_rows(evaluation)]
    for module_id, class_name, values, count in rows:
        share = values["flops"] / total["flops"] if total["flops"] else 0.0
        label = module_id if count == 1 else f"{module_id} (×{count})"
        moved = values["bytes_read"] + values["bytes_written"]
        print(
            f"{label:<36} {class_name:<22} {format_si(values['flops'], 'FLOP'):>13} {share:>7.1%} "
            f"{format_si(values['vector_flops'], 'FLOP'):>14} {format_si(moved, 'B'):>12} "
            f"{format_si(values['params'], ''):>10}"
        )
    print()
    print(
        f"exact FLOPs: {total['flops']:,}   parameters: {total['params']:,}   "
        f"weight bytes: {total['weight_bytes']:,}"
    )
    for note in evaluation.notes:
        print(f"note: {note}")


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        implementation=args.implementation,
        guidance=not args.no_guidance,
        pad_text=not args.no_pad_text,
        device=getattr(args, "device", None),
        gpus=getattr(args, "gpus", 1),
        attention_kernel=getattr(args, "attention_kernel", "fa2"),
        offload=getattr(args, "offload", None),
        t5_cpu=getattr(args, "t5_cpu", False),
    )


def _overrides(assignments: list[str]) -> dict[str, object] | None:
    overrides: dict[str, object] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep:
            raise LlmPerfOptError(f"--set: expected FIELD=VALUE, got {assignment!r}")
        try:
            overrides[key.strip()] = int(text, 10)
        except ValueError:
            overrides[key.strip()] = text
    return overrides or None


def _print_report(result: RunResult) -> None:
    summary = result.summary
    model = result.model
    work = model.workload
    state = "reused" if result.reused else "written"
    print(
        f"{model.model.model_id}, profile {work.profile_id}: {work.batch_size} × {work.num_frames} frames at "
        f"{work.height}×{work.width}, {work.num_inference_steps} steps, {work.text_len} text tokens"
    )
    root = model.module_metrics[0]
    if summary.predicted_total_time_ms:
        print(f"predicted time: {summary.predicted_total_time_ms / 1e3:,.1f} s")
    print(
        f"total: {format_si(root.total_flops_tflops * 1e12, 'FLOP')}, "
        f"{format_si(root.total_io_tb * 1e12, 'B')} moved, "
        f"weights {format_si(root.memory_weights_gb * 1e9, 'B')}"
    )
    print()
    print(f"{'top modules by FLOPs':<44} {'stage':<13} {'FLOPs':>13} {'share':>7}")
    for row in summary.top_modules:
        flops = format_si((row.total_flops_tflops or 0.0) * 1e12, "FLOP")
        print(f"{row.module_id:<44} {row.stage:<13} {flops:>13} {row.share_of_model_flops:>7.1%}")
    print()
    print(f"{'operator categories':<44} {'FLOPs':>13} {'bytes':>12}")
    for category in sorted(root.operator_breakdown, key=lambda c: (-c.flops_tflops, -c.io_tb))[:5]:
        print(
            f"{category.category_id:<44} {format_si(category.flops_tflops * 1e12, 'FLOP'):>13} "
            f"{format_si(category.io_tb * 1e12, 'B'):>12}"
        )
    print()
    print(f"report {model.report_id} {state}: {result.folder}")


def _read_model(path: Path) -> Wan2_1AnalyticModel:
    folder = path.parent if path.name == REPORT_FILE else path
    return read_report(folder)[0]


def _values(field: str, text: str | None) -> list[int] | None:
    if text is None:
        return None
    values = []
    for item in text.split(","):
        try:
            values.append(int(item, 10))
        except ValueError:
            raise LlmPerfOptError(f"{field}: must be comma-separated integers, got {item!r}") from None
    return values


def _grid(args: argparse.Namespace) -> None:
    variant = get_variant(args.variant)
    options = _options(args)
    fields: dict[str, list[int]] = {
        "batch": _values("batch", args.batch) or [1],
        "frames": _values("frames", args.frames) or [81],
        "height": _values("height", args.height) or [480],
        "width": _values("width", args.width) or [832],
        "steps": _values("steps", args.steps) or [default_steps(variant)],
        "text_len": _values("text_len", args.text_len) or [PADDED_TEXT_LEN],
    }
    points = list(itertools.product(*fields.values()))
    for batch, frames, height, width, steps, text_len in points:
        resolve_workload(
            variant,
            batch=batch,
            frames=frames,
            height=height,
            width=width,
            steps=steps,
            text_len=text_len,
            pad_text=options.pad_text,
        )
    columns = np.array(points, dtype=np.int64).T
    text_len = columns[5] if not options.pad_text else np.full_like(columns[5], PADDED_TEXT_LEN)
    workload = Workload(
        batch=columns[0],
        frames=columns[1],
        height=columns[2],
        width=columns[3],
        steps=columns[4],
        text_len=text_len,
    )
    tree = pipeline_tree(variant, get_implementation(options.implementation), options.guidance)
    result = compile_tree(tree).evaluate(workload)
    modules = args.module or [tree.root_id]
    metrics = args.metric or ["flops"]
    stream = args.out.open("w", encoding="utf-8", newline="") if args.out else sys.stdout
    try:
        writer = csv.writer(stream)
        writer.writerow([*fields, *(f"{module}:{metric}" for module in modules for metric in metrics)])
        arrays = [result[module, metric] for module in modules for metric in metrics]
        for index, point in enumerate(points):
            writer.writerow([*point, *(f"{array[index]:.17g}" for array in arrays)])
    finally:
        if args.out:
            stream.close()


def _run(args: argparse.Namespace) -> None:
    if args.command == "report":
        request = structure(
            {
                "model_id": get_variant(args.variant).model_id,
                "model_variant": get_variant(args.variant).model_variant,
                "workload_profile_id": args.profile,
                "overrides": _overrides(args.set),
                "profile_run_id": args.profile_run_id,
                "force_rebuild": args.force_rebuild,
            },
            Wan2_1AnalyticRequest,
        )
        _print_report(run(request, args.out, _options(args)))
        return
    if args.command == "compare":
        print(comparison_markdown(compare_reports(_read_model(args.before), _read_model(args.after))), end="")
        return
    if args.command == "grid":
        _grid(args)
        return
    if args.command == "devices":
        for accelerator in ACCELERATORS.values():
            precisions = ", ".join(f"{p} {t:g}" for p, t in accelerator.peak_tflops.items())
            print(
                f"{accelerator.name:<12} {accelerator.memory_gb:>5g} GB "
                f"{accelerator.memory_bandwidth_tbps:>5g} TB/s  dense TFLOP/s: {precisions}"
            )
        return
    if args.command == "calibration":
        print(calibration_table().text())
        return
    if args.command == "profiles":
        for profile in PROFILES.values():
            steps = profile.num_inference_steps or "task default"
            print(
                f"{profile.profile_id:<22} batch {profile.batch_size}, {profile.num_frames:>3} frames, "
                f"{profile.height}×{profile.width}, steps {steps}, text {profile.text_len}: "
                f"{profile.description}"
            )
        return
    if args.command == "variants":
        for variant in VARIANTS.values():
            print(
                f"{variant.model_variant:<14} {variant.model_id:<22} {variant.model_type:<6} "
                f"dim {variant.dim:>5} ffn {variant.ffn_dim:>6} heads {variant.num_heads:>3} "
                f"layers {variant.num_layers:>3} image tokens {variant.image_tokens:>3} "
                f"{variant.config_path}"
            )
        return
    variant = get_variant(args.variant)
    implementation = get_implementation(args.implementation)
    if args.command == "dit":
        evaluation = evaluate_dit(
            variant,
            batch=args.batch,
            frames=args.frames,
            height=args.height,
            width=args.width,
            text_len=args.text_len,
            pad_text=not args.no_pad_text,
            implementation=implementation,
        )
        _print_dit(evaluation)
    elif args.command == "formula":
        tree = pipeline_tree(variant, implementation, True)
        expr = formula(tree, args.module, args.metric)
        print(to_latex(expr) if args.latex else pretty(expr))
    elif args.command == "latex":
        print(latex_document(pipeline_tree(variant, implementation, True), args.metric or METRICS), end="")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llm-perf-opt`` command; returns the exit status."""
    try:
        _run(_build_parser().parse_args(argv))
    except LlmPerfOptError as error:
        print(f"llm-perf-opt: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader (``| head``) stopped reading: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
