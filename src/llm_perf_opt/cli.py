"""The ``llm-perf-opt`` command line.

Commands:
    report     what a workload costs, stage by stage and module by module: report.json, summary.md
    estimate   the time and memory of one run on a deployment, stage by stage
    size       the most frames, the largest resolution or the fewest devices within a budget
    calibration  the time model against the published measurements (--fit refits the factors)
    compare    what moved between two reports
    grid       any module's figures over a grid of workloads, as CSV
    dit        what one diffusion-transformer forward costs, module by module
    formula    one module's cost formula, as text or LaTeX
    latex      every module's formulas as one LaTeX document
    variants   list the Wan2.1 and Wan2.2 variants
    profiles   list the workload profiles

Bad input is one line on stderr naming the field, the value and what is accepted, exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from llm_perf_opt.calibration import calibration_table, fit_efficiencies
from llm_perf_opt.calibration.public import public_records, public_table
from llm_perf_opt.contracts import Wan2_1AnalyticModel, Wan2_1AnalyticRequest, structure
from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.sizing import DEVICE_COUNTS, fewest_devices, largest_frames, largest_resolution
from llm_perf_opt.deployment.stacks import STACK_NAMES, Stack, load_stack
from llm_perf_opt.deployment.stacks.record import FUSED_CHAINS
from llm_perf_opt.deployment.value import OFFLOADS, VAE_DECODES, Deployment, Parallelism
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import ACCELERATORS, get_accelerator, load_accelerators
from llm_perf_opt.hardware.efficiency import ATTENTION_KERNELS, EFFICIENCIES, load_efficiencies
from llm_perf_opt.hardware.kernels import GEMM_PRECISIONS, WEIGHT_STORAGE_BYTES
from llm_perf_opt.models import build_deployment, find_variant
from llm_perf_opt.parsing import parse_int
from llm_perf_opt.plots.cli import register as register_plot
from llm_perf_opt.profiling.cli import register as register_profile
from llm_perf_opt.report.analysis import RunOptions, request_workload, variant_tree
from llm_perf_opt.report.compare import compare_reports, comparison_markdown
from llm_perf_opt.report.compare_deployments import register as register_compare_deployments
from llm_perf_opt.report.files import REPORT_FILE, RunResult, read_report, run
from llm_perf_opt.report.grid_command import add_whatif_methods, parse_fraction_list
from llm_perf_opt.report.grid_command import register as register_grid
from llm_perf_opt.report.summary import format_si
from llm_perf_opt.service.cli import register as register_serve
from llm_perf_opt.symbolic.cost import METRICS
from llm_perf_opt.symbolic.formula import formula, latex_document, pretty, to_latex
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.symbolic.whatif import WhatIfs
from llm_perf_opt.wan2_1.evaluate import DitEvaluation, dit_tree, evaluate_dit
from llm_perf_opt.wan2_1.implementation import IMPLEMENTATIONS, get_implementation
from llm_perf_opt.wan2_1.vace import VaceVariant
from llm_perf_opt.wan2_1.variants import VARIANTS, get_variant
from llm_perf_opt.wan2_1.workloads import PROFILES, default_steps
from llm_perf_opt.wan2_2.variants import VARIANTS as WAN2_2_VARIANTS
from llm_perf_opt.wan2_2.variants import Wan22Variant

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors in the library's one-line form."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise LlmPerfOptError(message)


def _integer(text: str) -> int:
    """An integer option: ASCII digits only (``1_000``, ``+9`` and non-ASCII digits are rejected)."""
    try:
        return parse_int("value", text)
    except LlmPerfOptError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("value: ")) from None


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
        default=None,
        choices=sorted(IMPLEMENTATIONS),
        help="implementation profile the bytes follow (default: official, or the stack's)",
    )
    parser.add_argument("--no-guidance", action="store_true", help="one transformer forward per step")
    parser.add_argument(
        "--no-pad-text",
        action="store_true",
        help="do not pad the prompt to 512 tokens (trimming implementations)",
    )


def _add_whatifs(parser: argparse.ArgumentParser) -> None:
    """The what-ifs of a run: ρ, k, τ and the methods whose overheads the run carries."""
    parser.add_argument(
        "--attention-density",
        default="1",
        help="what-if ρ ∈ (0, 1]: fraction of self-attention scores computed, e.g. 0.25 or 1/4 (default 1)",
    )
    parser.add_argument(
        "--reused-steps",
        type=_integer,
        default=0,
        help="what-if k: steps whose transformer forwards a step cache reuses, 0 ≤ k < steps (default 0)",
    )
    parser.add_argument(
        "--guided-fraction",
        default="1",
        help="what-if τ ∈ [0, 1]: fraction of steps, from the first, with guidance (default 1)",
    )
    add_whatif_methods(parser)


def _one_fraction(field: str, text: str) -> Fraction:
    values = parse_fraction_list(field, text)
    if len(values) != 1:
        raise LlmPerfOptError(f"{field}: expected one value, got {text!r}")
    return values[0]


def _add_deployment(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """The options of a deployment, spelled the same in every command."""
    parser.add_argument(
        "--device", required=required, help="accelerator to predict on (see `llm-perf-opt devices`)"
    )
    parser.add_argument("--gpus", type=_integer, default=None, help="devices in the run (default 1)")
    parser.add_argument("--ulysses", type=_integer, default=None, help="Ulysses degree (default: the recipe)")
    parser.add_argument("--ring", type=_integer, default=None, help="ring degree (default: the recipe)")
    parser.add_argument(
        "--fsdp", action=argparse.BooleanOptionalAction, default=None, help="FSDP of the transformer"
    )
    parser.add_argument(
        "--attention-kernel",
        default=None,
        help=f"fused attention kernel: {', '.join(ATTENTION_KERNELS)} (default fa2)",
    )
    parser.add_argument(
        "--offload",
        default=None,
        help=f"where weights wait: {', '.join(OFFLOADS)} (default: model with one GPU, none with more)",
    )
    parser.add_argument(
        "--t5-cpu", action="store_true", default=None, help="run the text encoder on the host CPU"
    )
    parser.add_argument(
        "--convert-model-dtype",
        action="store_true",
        default=None,
        help="Wan2.2: hold the transformers in bf16 (generate.py --convert_model_dtype)",
    )
    parser.add_argument(
        "--image", action="store_true", default=None, help="TI2V-5B: image-to-video (generate.py --image)"
    )
    parser.add_argument("--precision", default=None, help="tensor precision of bf16 matmuls (default bf16)")
    parser.add_argument(
        "--stack",
        default=None,
        help=f"inference stack: {', '.join(STACK_NAMES)}, or a stack JSON file; its choices are the "
        "defaults the other options override (default: the official code as generate.py runs it)",
    )
    parser.add_argument(
        "--gemm-precision",
        default=None,
        help=f"precision of the transformer's linear layers: {', '.join(GEMM_PRECISIONS)} (default bf16)",
    )
    parser.add_argument(
        "--weight-storage",
        default=None,
        help=f"how the transformer's weights are held: {', '.join(WEIGHT_STORAGE_BYTES)} "
        "(default: the GEMM precision's)",
    )
    parser.add_argument(
        "--fuse",
        default=None,
        help=f"comma-separated element-wise chains run as one kernel each: {', '.join(FUSED_CHAINS)}; "
        "'none' for eager",
    )
    parser.add_argument(
        "--cuda-graphs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="replay steps from CUDA graphs",
    )
    parser.add_argument(
        "--vae-decode",
        default=None,
        choices=VAE_DECODES,
        help="decode on rank 0 (whole) or split over the GPUs (parallel; default: the stack's)",
    )
    parser.add_argument(
        "--cfg-parallel",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the two guidance forwards at once on two halves of the GPUs",
    )
    parser.add_argument(
        "--efficiencies", type=Path, default=None, help="efficiency-factor override file (JSON)"
    )
    parser.add_argument("--devices-file", type=Path, default=None, help="accelerator override file (JSON)")


_DEVICE_OPTIONS = (
    ("gpus", "--gpus"),
    ("ulysses", "--ulysses"),
    ("ring", "--ring"),
    ("fsdp", "--fsdp"),
    ("attention_kernel", "--attention-kernel"),
    ("offload", "--offload"),
    ("t5_cpu", "--t5-cpu"),
    ("convert_model_dtype", "--convert-model-dtype"),
    ("image", "--image"),
    ("precision", "--precision"),
    ("stack", "--stack"),
    ("gemm_precision", "--gemm-precision"),
    ("weight_storage", "--weight-storage"),
    ("fuse", "--fuse"),
    ("cuda_graphs", "--cuda-graphs"),
    ("vae_decode", "--vae-decode"),
    ("cfg_parallel", "--cfg-parallel"),
    ("efficiencies", "--efficiencies"),
    ("devices_file", "--devices-file"),
)


def _deployment(args: argparse.Namespace, *, gpus: int | None = None) -> Deployment | None:
    """The deployment the options describe (``None`` without ``--device``; the device options are
    then an error)."""
    if args.device is None:
        given = [flag for name, flag in _DEVICE_OPTIONS if getattr(args, name, None) is not None]
        if given:
            raise LlmPerfOptError(f"{given[0]}: needs --device (the accelerator to predict on)")
        return None
    catalog = ACCELERATORS if args.devices_file is None else load_accelerators(args.devices_file)
    accelerator = get_accelerator(args.device, catalog)
    count = gpus if gpus is not None else (args.gpus if args.gpus is not None else 1)
    parallelism = None
    if args.ulysses is not None or args.ring is not None or args.fsdp is not None:
        cfg = 2 if args.cfg_parallel else 1
        parallelism = Parallelism(
            ulysses=1 if args.ulysses is None else args.ulysses,
            ring=1 if args.ring is None else args.ring,
            fsdp=bool(args.fsdp) if args.fsdp is not None else count > cfg,
            cfg=cfg,
        )
    extra: dict[str, object] = {
        name: True for name in ("convert_model_dtype", "image") if getattr(args, name) is not None
    }
    if getattr(args, "sparse_attention", "ideal") != "ideal":
        extra["sparse_attention"] = args.sparse_attention
    if getattr(args, "step_cache", None) is not None:
        extra["step_cache"] = args.step_cache
    return build_deployment(
        args.variant,
        stack=_stack(args.stack),
        implementation=args.implementation,
        accelerator=accelerator,
        gpus=count,
        parallelism=parallelism,
        offload=args.offload,
        t5_cpu=args.t5_cpu,
        attention_kernel=args.attention_kernel,
        precision=args.precision or "bf16",
        gemm_precision=args.gemm_precision,
        weight_storage=args.weight_storage,
        fused_chains=_chains(args.fuse),
        cuda_graphs=args.cuda_graphs,
        vae_decode=args.vae_decode,
        cfg_parallel=args.cfg_parallel,
        guidance=not args.no_guidance,
        efficiencies=EFFICIENCIES if args.efficiencies is None else load_efficiencies(args.efficiencies),
        **extra,
    )


def _stack(value: str | None) -> Stack | str | None:
    """``--stack``: a preset name, or a path to a stack JSON file (one ending in ``.json``)."""
    if value is None or not value.endswith(".json"):
        return value
    return load_stack(value)


def _chains(value: str | None) -> tuple[str, ...] | None:
    """``--fuse``: comma-separated chain names, ``none`` for none."""
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    if names == ("none",):
        return ()
    unknown = [name for name in names if name not in FUSED_CHAINS]
    if unknown or not names:
        raise LlmPerfOptError(
            f"--fuse: unknown chain {unknown[0] if unknown else value!r}; accepted: "
            f"{', '.join(FUSED_CHAINS)} or none"
        )
    return names


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
    _add_whatifs(report)
    _add_deployment(report)
    report.set_defaults(func=_report)

    estimate = commands.add_parser("estimate", help="time and memory of one run on a deployment")
    estimate.add_argument("--variant", required=True, help="model_variant or model_id, e.g. t2v-14b")
    estimate.add_argument("--profile", required=True, help="workload profile id, e.g. wan2-1-official-720p")
    estimate.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="override a workload field"
    )
    _add_run_options(estimate)
    _add_whatifs(estimate)
    _add_deployment(estimate, required=True)
    estimate.set_defaults(func=_estimate)

    size = commands.add_parser(
        "size", help="the most frames, largest resolution or fewest devices in a budget"
    )
    size.add_argument("question", choices=("frames", "resolution", "devices"), help="what to size")
    size.add_argument("--variant", required=True, help="model_variant or model_id, e.g. t2v-14b")
    size.add_argument("--frames", type=_integer, default=81, help="frames (resolution, devices; default 81)")
    size.add_argument("--height", type=_integer, default=720, help="height (frames, devices; default 720)")
    size.add_argument("--width", type=_integer, default=1280, help="width (frames, devices; default 1280)")
    size.add_argument("--steps", type=_integer, default=None, help="sampling steps (default: the task's)")
    size.add_argument("--time-budget", type=float, default=None, help="seconds per video")
    size.add_argument("--memory-budget", type=float, default=None, help="GB per device (default: its memory)")
    _add_run_options(size)
    _add_deployment(size, required=True)
    size.set_defaults(func=_size)

    compare = commands.add_parser("compare", help="what moved between two reports")
    compare.add_argument("before", type=Path, help="report folder (or its report.json)")
    compare.add_argument("after", type=Path, help="report folder (or its report.json)")
    compare.set_defaults(func=_compare)

    register_grid(commands)  # type: ignore[arg-type]  # a subclass of ArgumentParser
    register_compare_deployments(commands)
    register_profile(commands)
    register_serve(commands)
    register_plot(commands)

    commands.add_parser("variants", help="list the Wan2.1 and Wan2.2 variants").set_defaults(func=_variants)
    commands.add_parser("profiles", help="list the workload profiles").set_defaults(func=_profiles)
    commands.add_parser("devices", help="list the accelerators of the time model").set_defaults(func=_devices)
    calibration = commands.add_parser("calibration", help="the time model against the published measurements")
    calibration.add_argument("--fit", action="store_true", help="refit the free factors and show the fit")
    calibration.add_argument(
        "--public",
        action="store_true",
        help="also predict the public stack timings (none fitted) and show their errors",
    )
    calibration.set_defaults(func=_calibration)

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
    dit.set_defaults(func=_dit)

    show = commands.add_parser("formula", help="one module's cost formula")
    _add_variant(show)
    show.add_argument("--module", required=True, help="module id, e.g. diffusion.blocks.0.self_attn")
    show.add_argument("--metric", default="flops", choices=METRICS, help="metric (default flops)")
    show.add_argument("--latex", action="store_true", help="print LaTeX instead of text")
    _add_formula_options(show)
    show.set_defaults(func=_formula)

    latex = commands.add_parser("latex", help="every module's formulas as one LaTeX document")
    _add_variant(latex)
    latex.add_argument("--metric", action="append", choices=METRICS, help="metrics to include (default all)")
    _add_formula_options(latex)
    latex.set_defaults(func=_latex)
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
    root = dit_tree(evaluation.variant, evaluation.implementation).root
    rows = [(root.id, root.class_name, total, 1), *_dit_rows(evaluation)]
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
    deployment = _deployment(args) if hasattr(args, "device") else None
    return RunOptions(
        implementation=deployment.implementation.name
        if deployment is not None
        else (args.implementation or "official"),
        guidance=not args.no_guidance,
        pad_text=not args.no_pad_text,
        deployment=deployment,
        whatifs=_whatifs(args),
    )


def _whatifs(args: argparse.Namespace) -> WhatIfs:
    return WhatIfs(
        attention_density=_one_fraction("--attention-density", args.attention_density),
        reused_steps=args.reused_steps,
        guided_fraction=_one_fraction("--guided-fraction", args.guided_fraction),
        sparse_attention=args.sparse_attention,
        step_cache=args.step_cache,
    )


def _overrides(assignments: list[str]) -> dict[str, object] | None:
    overrides: dict[str, object] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        if not sep:
            raise LlmPerfOptError(f"--set: expected FIELD=VALUE, got {assignment!r}")
        try:
            overrides[key.strip()] = parse_int(f"--set {key.strip()}", text)
        except LlmPerfOptError:
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


def _request(args: argparse.Namespace) -> Wan2_1AnalyticRequest:
    variant = find_variant(args.variant)
    return structure(
        {
            "model_id": variant.model_id,
            "model_variant": variant.model_variant,
            "workload_profile_id": args.profile,
            "overrides": _overrides(args.set),
            "profile_run_id": getattr(args, "profile_run_id", None),
            "force_rebuild": getattr(args, "force_rebuild", False),
        },
        Wan2_1AnalyticRequest,
    )


def _report(args: argparse.Namespace) -> None:
    _print_report(run(_request(args), args.out, _options(args)))


def _estimate(args: argparse.Namespace) -> None:
    variant = find_variant(args.variant)
    deployment = _deployment(args)
    assert deployment is not None  # --device is required
    profile, workload, _, notes = request_workload(_request(args), variant, not args.no_pad_text)
    whatifs = _whatifs(args)
    workload = whatifs.applied(workload)
    values = run_model(deployment).evaluate_point(workload)
    notes = [*whatifs.notes(), *notes]
    total = values["total"]
    print(
        f"{variant.model_id} on {deployment.gpus} × {deployment.accelerator.name} [{deployment.flags}]: "
        f"{profile.batch_size} × {profile.num_frames} frames at {profile.height}×{profile.width}, "
        f"{profile.num_inference_steps} steps"
    )
    print(f"predicted time: {total:,.1f} s")
    for stage in deployment.family.stages:
        seconds = values[f"stage.{stage}"]
        if seconds:
            print(f"  {stage:<14} {seconds:>10.2f} s {seconds / total:>7.1%}")
    loads = {name.removeprefix("load."): v for name, v in values.items() if name.startswith("load.")}
    for name, seconds in loads.items():
        print(f"  load {name:<34} {seconds:>8.2f} s before overlap")
    peak = values["peak_memory"]
    capacity = deployment.accelerator.memory_bytes
    verdict = "fits" if peak <= capacity else "DOES NOT FIT"
    print(f"peak memory per device: {peak / 1e9:.2f} GB ({verdict} the device's {capacity / 1e9:.1f} GB)")
    for name, value in values.items():
        if name.startswith("phase.") and value:
            print(f"  {name.removeprefix('phase.'):<14} {value / 1e9:>8.2f} GB")
    for note in notes:
        print(f"note: {note}")


def _size(args: argparse.Namespace) -> None:
    variant = find_variant(args.variant)
    if args.steps is not None:
        steps = args.steps
    else:
        steps = (
            variant.sample_steps
            if isinstance(variant, Wan22Variant | VaceVariant)
            else default_steps(variant)
        )
    if args.question == "devices":
        if args.gpus is not None:
            raise LlmPerfOptError("--gpus: size devices tries 1, 2, 4 and 8 GPUs itself; leave --gpus out")
        deployments = []
        for count in DEVICE_COUNTS:
            try:
                deployments.append(_deployment(args, gpus=count))
            except LlmPerfOptError:
                continue
        answer = fewest_devices(
            [d for d in deployments if d is not None],
            frames=args.frames,
            height=args.height,
            width=args.width,
            steps=steps,
            time_budget_s=args.time_budget,
            memory_budget_gb=args.memory_budget,
        )
    else:
        deployment = _deployment(args)
        assert deployment is not None  # --device is required
        if args.question == "frames":
            answer = largest_frames(
                deployment,
                height=args.height,
                width=args.width,
                steps=steps,
                time_budget_s=args.time_budget,
                memory_budget_gb=args.memory_budget,
            )
        else:
            answer = largest_resolution(
                deployment,
                frames=args.frames,
                steps=steps,
                time_budget_s=args.time_budget,
                memory_budget_gb=args.memory_budget,
            )
    print(answer.text())


def _compare(args: argparse.Namespace) -> None:
    print(comparison_markdown(compare_reports(_read_model(args.before), _read_model(args.after))), end="")


def _devices(args: argparse.Namespace) -> None:
    del args
    for accelerator in ACCELERATORS.values():
        precisions = ", ".join(f"{p} {t:g}" for p, t in accelerator.peak_tflops.items())
        power = "" if accelerator.board_power_w is None else f"{accelerator.board_power_w:>6g} W"
        print(
            f"{accelerator.name:<20} {accelerator.memory_gb:>5g} GB "
            f"{accelerator.memory_bandwidth_tbps:>5g} TB/s {power:>8}  dense TFLOP/s: {precisions}"
        )


def _calibration(args: argparse.Namespace) -> None:
    table = EFFICIENCIES
    if args.fit:
        result = fit_efficiencies()
        for name, value in result.values.items():
            print(f"{name:<32} prior {result.priors[name]:.3f}  fitted {value:.3f}")
        table = result.table
    print(calibration_table(table).text())
    if args.public:
        print()
        print("Public stack timings (not fitted):")
        print(public_table(table).text())
        for record_id, reason in public_records().skipped.items():
            print(f"not predicted: {record_id}: {reason}")


def _profiles(args: argparse.Namespace) -> None:
    del args
    for profile in PROFILES.values():
        steps = profile.num_inference_steps or "task default"
        print(
            f"{profile.profile_id:<22} batch {profile.batch_size}, {profile.num_frames:>3} frames, "
            f"{profile.height}×{profile.width}, steps {steps}, text {profile.text_len}: "
            f"{profile.description}"
        )


def _variants(args: argparse.Namespace) -> None:
    del args
    for variant in VARIANTS.values():
        print(
            f"{variant.model_variant:<14} {variant.model_id:<22} {variant.model_type:<6} "
            f"dim {variant.dim:>5} ffn {variant.ffn_dim:>6} heads {variant.num_heads:>3} "
            f"layers {variant.num_layers:>3} image tokens {variant.image_tokens:>3} "
            f"{variant.config_path}"
        )
    for record in WAN2_2_VARIANTS.values():
        t = record.transformer
        experts = (
            f"experts {'+'.join(record.experts)} at {record.boundary}" if record.experts else "one model"
        )
        print(
            f"{record.model_variant:<14} {record.model_id:<22} {t.model_type:<6} "
            f"dim {t.dim:>5} ffn {t.ffn_dim:>6} heads {t.num_heads:>3} layers {t.num_layers:>3} "
            f"{experts}, {record.vae} VAE, {record.sample_steps} steps {record.default_size} "
            f"{t.config_path}"
        )


def _dit(args: argparse.Namespace) -> None:
    evaluation = evaluate_dit(
        get_variant(args.variant),
        batch=args.batch,
        frames=args.frames,
        height=args.height,
        width=args.width,
        text_len=args.text_len,
        pad_text=not args.no_pad_text,
        implementation=get_implementation(args.implementation),
    )
    _print_dit(evaluation)


def _add_formula_options(parser: argparse.ArgumentParser) -> None:
    """Guidance and the what-if methods of a formula's tree (ρ, k, τ are symbols in every formula)."""
    parser.add_argument("--no-guidance", action="store_true", help="one transformer forward per step")
    add_whatif_methods(parser)


def _formula_tree(args: argparse.Namespace) -> ModuleTree:
    tree, _ = variant_tree(
        find_variant(args.variant),
        get_implementation(args.implementation),
        not args.no_guidance,
        args.sparse_attention,
        args.step_cache,
    )
    return tree


def _formula(args: argparse.Namespace) -> None:
    expr = formula(_formula_tree(args), args.module, args.metric)
    print(to_latex(expr) if args.latex else pretty(expr))


def _latex(args: argparse.Namespace) -> None:
    print(latex_document(_formula_tree(args), args.metric or METRICS), end="")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llm-perf-opt`` command; returns the exit status."""
    try:
        args = _build_parser().parse_args(argv)
        args.func(args)
    except LlmPerfOptError as error:
        print(f"llm-perf-opt: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader (``| head``) stopped reading: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:
        # the output stream failed (a full device, a closed terminal)
        where = error.filename if error.filename is not None else "output"
        print(f"llm-perf-opt: error: {where}: {error.strerror or error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
