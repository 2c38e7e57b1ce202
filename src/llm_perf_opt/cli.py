"""The ``llm-perf-opt`` command line.

Commands:
    variants   list the Wan2.1 variants and their configs
    dit        what one diffusion-transformer forward costs, module by module
    formula    one module's cost formula, as text or LaTeX
    latex      every module's formulas as one LaTeX document

Bad input is one line on stderr naming the field, the value and what is accepted, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.cost import METRICS
from llm_perf_opt.symbolic.formula import formula, latex_document, pretty, to_latex
from llm_perf_opt.wan2_1.evaluate import DitEvaluation, dit_tree, evaluate_dit
from llm_perf_opt.wan2_1.implementation import IMPLEMENTATIONS, get_implementation
from llm_perf_opt.wan2_1.variants import VARIANTS, get_variant

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


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="llm-perf-opt", description="What Wan2.1 video generation costs, without running it."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    commands.add_parser("variants", help="list the Wan2.1 variants")

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


def _si(value: float, unit: str) -> str:
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:,.2f} {prefix}{unit}"
    return f"{value:,.0f} {unit}"


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
            f"{label:<36} {class_name:<22} {_si(values['flops'], 'FLOP'):>13} {share:>7.1%} "
            f"{_si(values['vector_flops'], 'FLOP'):>14} {_si(moved, 'B'):>12} {_si(values['params'], ''):>10}"
        )
    print()
    print(
        f"exact FLOPs: {total['flops']:,}   parameters: {total['params']:,}   "
        f"weight bytes: {total['weight_bytes']:,}"
    )
    for note in evaluation.notes:
        print(f"note: {note}")


def _run(args: argparse.Namespace) -> None:
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
        expr = formula(dit_tree(variant, implementation), args.module, args.metric)
        print(to_latex(expr) if args.latex else pretty(expr))
    elif args.command == "latex":
        print(latex_document(dit_tree(variant, implementation), args.metric or METRICS), end="")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``llm-perf-opt`` command; returns the exit status."""
    try:
        _run(_build_parser().parse_args(argv))
    except LlmPerfOptError as error:
        print(f"llm-perf-opt: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
