"""The ``plot`` command: ``llm-perf-opt plot KIND --out FILE …`` writes one figure as PNG or SVG.

Kinds: ``breakdown``, ``scaling``, ``roofline``, ``multi-gpu``, ``deployments``, ``calibration``.
:func:`register` adds them to a command line's sub-parsers; each sets ``func`` to a handler
``(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.plots.defaults import (
    DEPLOYMENT_DEVICES,
    DEPLOYMENT_GPU_COUNTS,
    FORMATS,
    MULTI_GPU_COUNTS,
    TOP_MODULES,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["KINDS", "register"]

KINDS: Final = ("breakdown", "scaling", "roofline", "multi-gpu", "deployments", "calibration")

_OVERRIDES: Final = (
    ("frames", "num_frames"),
    ("height", "height"),
    ("width", "width"),
    ("steps", "num_inference_steps"),
    ("batch", "batch_size"),
)
"""Command-line option → workload profile field it overrides."""


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


def _integers(text: str) -> list[int]:
    return [_integer(part.strip()) for part in text.split(",") if part.strip()]


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help=f"file to write; its suffix sets the format ({', '.join('.' + f for f in FORMATS)})",
    )


def _add_run(parser: argparse.ArgumentParser, *, device: str | None, with_device: bool = True) -> None:
    parser.add_argument("--variant", default="t2v-14b", help="model_variant, e.g. t2v-14b (default)")
    parser.add_argument(
        "--profile", default="wan2-1-official-720p", help="workload profile id (default wan2-1-official-720p)"
    )
    for option, field in _OVERRIDES:
        parser.add_argument(f"--{option}", type=_integer, help=f"override the profile's {field}")
    parser.add_argument(
        "--implementation", default="official", help="implementation profile (official or diffusers)"
    )
    parser.add_argument("--kernel", default="fa2", help="attention kernel: fa2 (default), fa3 or sdpa")
    if not with_device:
        parser.set_defaults(device=None)
    elif device is None:
        parser.add_argument("--device", help="accelerator for the time bars (default: FLOPs and bytes only)")
    else:
        parser.add_argument("--device", default=device, help=f"accelerator (default {device})")


def _overrides(args: argparse.Namespace) -> dict[str, int]:
    overrides = {}
    for option, field in _OVERRIDES:
        value = getattr(args, option)
        if value is not None:
            if value < 1:
                raise LlmPerfOptError(f"--{option}: must be an integer ≥ 1, got {value}")
            overrides[field] = value
    return overrides


def _gpus(value: int) -> int:
    if value < 1:
        raise LlmPerfOptError(f"--gpus: must be an integer ≥ 1, got {value}")
    return value


def _run_keywords(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "overrides": _overrides(args),
        "device": args.device,
        "implementation": args.implementation,
        "attention_kernel": args.kernel,
    }


def _breakdown(args: argparse.Namespace) -> Figure:
    from llm_perf_opt.plots.breakdown import breakdown_figure

    return breakdown_figure(
        args.variant, args.profile, gpus=_gpus(args.gpus), top=args.top, **_run_keywords(args)
    )


def _scaling(args: argparse.Namespace) -> Figure:
    from llm_perf_opt.plots.scaling import scaling_figure

    return scaling_figure(args.variant, args.profile, gpus=_gpus(args.gpus), **_run_keywords(args))


def _roofline(args: argparse.Namespace) -> Figure:
    from llm_perf_opt.plots.roofline import roofline_figure

    return roofline_figure(args.variant, args.profile, **_run_keywords(args))


def _multi_gpu(args: argparse.Namespace) -> Figure:
    from llm_perf_opt.plots.multi_gpu import multi_gpu_figure

    return multi_gpu_figure(args.variant, args.profile, gpu_counts=args.gpu_counts, **_run_keywords(args))


def _deployments(args: argparse.Namespace) -> Figure:
    from llm_perf_opt.plots.deployments import deployments_figure

    keywords = _run_keywords(args)
    keywords.pop("device")
    return deployments_figure(
        args.variant, args.profile, devices=args.devices, gpu_counts=args.gpu_counts, **keywords
    )


def _calibration(_args: argparse.Namespace) -> Figure:
    from llm_perf_opt.plots.calibration import calibration_figure

    return calibration_figure()


def matplotlib_installed() -> bool:
    """Whether matplotlib can be imported (the ``plots`` extra)."""
    return importlib.util.find_spec("matplotlib") is not None


def _handler(build: Callable[[argparse.Namespace], Figure]) -> Callable[[argparse.Namespace], int]:
    def handle(args: argparse.Namespace) -> int:
        suffix = args.out.suffix.lower().lstrip(".")
        if suffix not in FORMATS:
            raise LlmPerfOptError(
                f"--out: the file {str(args.out)!r} has suffix {args.out.suffix!r}; accepted: "
                + ", ".join(f".{f}" for f in FORMATS)
            )
        if not args.out.parent.is_dir():
            raise LlmPerfOptError(f"--out: the folder {str(args.out.parent)!r} does not exist")
        if not matplotlib_installed():
            raise LlmPerfOptError(
                "plot: drawing figures needs matplotlib; install the plots extra (pip install -e '.[plots]')"
            )
        from llm_perf_opt.plots._common import save_figure

        path = save_figure(build(args), args.out)
        print(f"figure written: {path}")
        return 0

    return handle


def register(subparsers: Any) -> None:
    """Add ``plot`` and its kinds to ``subparsers`` (what ``ArgumentParser.add_subparsers``
    returns)."""
    plot = subparsers.add_parser("plot", help="write a figure (PNG or SVG)", description=__doc__)
    kinds = plot.add_subparsers(dest="kind", required=True, metavar="KIND")

    breakdown = kinds.add_parser("breakdown", help="FLOPs, bytes and time by component and top module")
    _add_run(breakdown, device=None)
    breakdown.add_argument("--gpus", type=_integer, default=1, help="devices in the run (default 1)")
    breakdown.add_argument(
        "--top",
        type=_integer,
        default=TOP_MODULES,
        help=f"modules in the right panel (default {TOP_MODULES})",
    )
    _add_output(breakdown)
    breakdown.set_defaults(func=_handler(_breakdown))

    scaling = kinds.add_parser("scaling", help="FLOPs and time against frames and resolution")
    _add_run(scaling, device="h100-sxm")
    scaling.add_argument("--gpus", type=_integer, default=1, help="devices in the run (default 1)")
    _add_output(scaling)
    scaling.set_defaults(func=_handler(_scaling))

    roofline = kinds.add_parser("roofline", help="a device's roofs with each op class of a forward")
    _add_run(roofline, device="h100-sxm")
    _add_output(roofline)
    roofline.set_defaults(func=_handler(_roofline))

    multi = kinds.add_parser("multi-gpu", help="time, speed-up and communication share against GPUs")
    _add_run(multi, device="h100-sxm")
    multi.add_argument(
        "--gpu-counts",
        type=_integers,
        default=list(MULTI_GPU_COUNTS),
        help="comma-separated GPU counts (default 1,2,4,8)",
    )
    _add_output(multi)
    multi.set_defaults(func=_handler(_multi_gpu))

    deployments = kinds.add_parser("deployments", help="time and memory on several devices and GPU counts")
    _add_run(deployments, device=None, with_device=False)
    deployments.add_argument(
        "--devices",
        type=_names,
        default=list(DEPLOYMENT_DEVICES),
        help=f"comma-separated devices (default {','.join(DEPLOYMENT_DEVICES)})",
    )
    deployments.add_argument(
        "--gpu-counts",
        type=_integers,
        default=list(DEPLOYMENT_GPU_COUNTS),
        help="comma-separated GPU counts (default 1,8)",
    )
    _add_output(deployments)
    deployments.set_defaults(func=_handler(_deployments))

    calibration = kinds.add_parser("calibration", help="predicted against published times, C1–C8")
    _add_output(calibration)
    calibration.set_defaults(func=_handler(_calibration))
