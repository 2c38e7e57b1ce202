"""``python -m llm_perf_opt.hardware``: the calibration table, one run's prediction, and sizing.

::

    python -m llm_perf_opt.hardware [--fit]                 # calibration table (and the refit)
    python -m llm_perf_opt.hardware memory                  # C1–C3 peak memory, predicted vs published
    python -m llm_perf_opt.hardware run t2v-14b h100 --gpus 8
    python -m llm_perf_opt.hardware size frames t2v-14b h100 --gpus 8 --time-budget 600
    python -m llm_perf_opt.hardware size resolution t2v-1.3b rtx4090 --aspect 16:9 --memory-budget 24
    python -m llm_perf_opt.hardware size devices t2v-14b h100 --time-budget 400
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.calibration import (
    PIPELINE_FREE_FACTORS,
    PIPELINE_RECORDS,
    calibration_table,
    fit_efficiencies,
    record_config,
)
from llm_perf_opt.hardware.efficiency import EFFICIENCIES
from llm_perf_opt.hardware.memory import run_memory
from llm_perf_opt.hardware.parallel import Parallelism
from llm_perf_opt.hardware.sizing import (
    estimate_run,
    fewest_devices,
    largest_frames,
    largest_resolution,
)
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.geometry import PADDED_TEXT_LEN
from llm_perf_opt.wan2_1.implementation import OFFICIAL
from llm_perf_opt.wan2_1.variants import get_variant

_COMMANDS = ("calibrate", "memory", "run", "size")


def _calibrate(fit: bool) -> None:
    print(calibration_table().text())
    if fit:
        result = fit_efficiencies()
        print(f"\nfit ({result.iterations} steps): factor, prior, fitted, shipped")
        for factor in PIPELINE_FREE_FACTORS:
            scope, key = factor.cells[0]
            shipped = EFFICIENCIES.value(scope, key)
            print(f"  {factor.name:<24}{factor.prior:>8.3f}{result.values[factor.name]:>9.3f}{shipped:>9.3f}")


def _memory() -> None:
    print(
        f"{'record':<8}{'GPUs':>5}  {'flags':<62}{'published GB':>13}{'predicted GB':>13}"
        f"{'error':>8}  peak phase"
    )
    for record in PIPELINE_RECORDS:
        workload = Workload(
            batch=1,
            frames=record.frames,
            height=record.height,
            width=record.width,
            steps=record.steps,
            text_len=PADDED_TEXT_LEN,
        )
        for gpus, published in zip(record.gpus, record.measured_peak_gb, strict=True):
            config = record_config(record, gpus)
            figures = run_memory(get_variant(record.variant), OFFICIAL, config).evaluate_point(workload)
            phases = {k.removeprefix("phase."): v for k, v in figures.items() if k.startswith("phase.")}
            phase = max(phases, key=phases.__getitem__)
            predicted = figures["peak"] / 1e9
            print(
                f"{record.id:<8}{gpus:>5}  {config.flags:<62}{published:>13.2f}{predicted:>13.2f}"
                f"{(predicted / published - 1) * 100:>+7.1f}%  {phase}"
            )


def _aspect(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.split(":"))
    except ValueError:
        raise LlmPerfOptError(f"aspect: expected WIDTH:HEIGHT such as 16:9, got {text!r}") from None
    return width, height


def _setup_options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {
        "implementation": args.implementation,
        "attention_kernel": args.kernel,
        "t5_cpu": args.t5_cpu,
        "guidance": not args.no_guidance,
        "steps": args.steps,
    }
    if args.offload is not None:
        options["offload"] = args.offload == "on"
    return options


def _parallelism(args: argparse.Namespace) -> Parallelism | None:
    if args.ulysses is None and args.ring is None:
        return None
    return Parallelism(args.ulysses or 1, args.ring or 1, fsdp=not args.no_fsdp)


def _run(args: argparse.Namespace) -> None:
    figures = estimate_run(
        args.variant,
        args.device,
        args.gpus,
        frames=args.frames,
        height=args.height,
        width=args.width,
        parallelism=_parallelism(args),
        **_setup_options(args),
    )
    print(figures.line())
    for stage, seconds in figures.stages.items():
        print(f"  {stage:<14}{seconds:>10.2f} s")


def _size(args: argparse.Namespace) -> None:
    budgets = {"time_budget_s": args.time_budget, "memory_budget_gb": args.memory_budget}
    if args.what == "frames":
        answer = largest_frames(
            args.variant,
            args.device,
            args.gpus,
            height=args.height,
            width=args.width,
            parallelism=_parallelism(args),
            **budgets,
            **_setup_options(args),
        )
    elif args.what == "resolution":
        answer = largest_resolution(
            args.variant,
            args.device,
            args.gpus,
            aspect=_aspect(args.aspect),
            frames=args.frames,
            parallelism=_parallelism(args),
            **budgets,
            **_setup_options(args),
        )
    else:
        options = _setup_options(args)
        answer = fewest_devices(
            args.variant,
            args.device,
            frames=args.frames,
            height=args.height,
            width=args.width,
            all_splits=args.all_splits,
            **budgets,
            **options,
        )
    print(answer.text())


def _add_setup(parser: argparse.ArgumentParser, *, gpus: bool = True) -> None:
    parser.add_argument("variant", help="Wan2.1 variant, e.g. t2v-14b, t2v-1.3b, i2v-14b-720p")
    parser.add_argument("device", help="accelerator name or alias, e.g. h100, rtx4090, h20")
    if gpus:
        parser.add_argument("--gpus", type=int, default=1, help="devices in the run (default 1)")
        parser.add_argument("--ulysses", type=int, help="--ulysses_size (default: the README recipe)")
        parser.add_argument("--ring", type=int, help="--ring_size (default: the README recipe)")
        parser.add_argument("--no-fsdp", action="store_true", help="without --dit_fsdp")
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--steps", type=int, help="sampling steps (default: the task's, 50 or 40)")
    parser.add_argument("--implementation", default="official", help="official or diffusers")
    parser.add_argument("--kernel", default="fa2", help="attention kernel: fa2, fa3, sdpa")
    parser.add_argument("--offload", choices=("on", "off"), help="--offload_model (default: on with 1 GPU)")
    parser.add_argument("--t5-cpu", action="store_true", help="umT5 on the CPU (--t5_cpu)")
    parser.add_argument("--no-guidance", action="store_true", help="one transformer forward per step")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm_perf_opt.hardware",
        description="Calibration table, one run's predicted time and memory, and sizing queries.",
    )
    commands = parser.add_subparsers(dest="command")
    calibrate = commands.add_parser(
        "calibrate", help="each calibration point's prediction and error, the MAPE"
    )
    calibrate.add_argument(
        "--fit", action="store_true", help="refit the factors and compare with the shipped ones"
    )
    commands.add_parser("memory", help="C1–C3 peak memory per GPU, predicted next to published")
    run = commands.add_parser("run", help="one run's time per stage and peak memory per device")
    _add_setup(run)
    size = commands.add_parser("size", help="the largest video, or the fewest devices, within budgets")
    kinds = size.add_subparsers(dest="what", required=True)
    for what, text in (
        ("frames", "the most frames (4k+1) at --height x --width"),
        ("resolution", "the largest height (multiple of 16) at --aspect, --frames frames"),
        ("devices", "the fewest of 1, 2, 4, 8 devices for --frames at --height x --width"),
    ):
        query = kinds.add_parser(what, help=text)
        _add_setup(query, gpus=what != "devices")
        query.add_argument("--time-budget", type=float, help="seconds per run")
        query.add_argument("--memory-budget", type=float, help="GB per device (default: the device's memory)")
        if what == "resolution":
            query.add_argument("--aspect", default="16:9", help="WIDTH:HEIGHT (default 16:9)")
        if what == "devices":
            query.add_argument("--all-splits", action="store_true", help="try every Ulysses x ring split")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] not in (*_COMMANDS, "-h", "--help"):
        # the original form: ``python -m llm_perf_opt.hardware [--fit]``
        arguments = ["calibrate", *arguments]
    args = _parser().parse_args(arguments)
    try:
        if args.command == "calibrate":
            _calibrate(args.fit)
        elif args.command == "memory":
            _memory()
        elif args.command == "run":
            _run(args)
        else:
            _size(args)
    except LlmPerfOptError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
