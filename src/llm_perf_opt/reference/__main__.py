"""Command line of the reference harness.

``python -m llm_perf_opt.reference dit --variant t2v-1.3b --frames 81 --height 480 --width 832
--text-len 512 [--batch 1] [--json out.json]`` measures one diffusers DiT forward and prints, per
official module id, its FLOPs, parameters and bytes read / written (whole module, eager).

``python -m llm_perf_opt.reference compare --variant t2v-14b --frames 81 --height 720 --width 1280
[--record saved.json] [--depth 3]`` compares the analytic model with the measurement (or a saved
record) id by id: FLOPs, parameters, and Linear / convolution / fused-attention bytes. It prints the
side-by-side table and exits 1 on any mismatch.

``python -m llm_perf_opt.reference golden [--out tests/golden/dit] [--variant V ...]`` regenerates the
golden files of the standard workloads.

``python -m llm_perf_opt.reference vae --use decode --frames 81 --height 480 --width 832 [--json out.json]``
measures one diffusers ``AutoencoderKLWan`` encode or decode; ``vae-compare`` (same arguments, or
``--record saved.json``) compares it with the analytic VAE; ``vae-golden [--out tests/golden/vae]``
regenerates the VAE golden files.

``python -m llm_perf_opt.reference text-encoder [--batch 1] [--text-len 512] [--json out.json]`` measures
one forward of transformers' ``UMT5EncoderModel``; ``image-encoder [--batch 1] [--images 1]`` one of its
``CLIPVisionModel`` (all 32 blocks). ``text-encoder-compare`` / ``image-encoder-compare`` (same
arguments, or ``--record saved.json``) compare them with the analytic encoders (profile ``diffusers``);
``text-encoder-golden`` / ``image-encoder-golden [--out DIR]`` regenerate their golden files.

``wan2_2-golden [--out tests/golden/wan2_2] [--variant V ...]`` and ``vace-golden [--out
tests/golden/vace] [--variant V ...]`` regenerate the Wan2.2 and the Wan2.1 VACE transformer golden files;
``wan2_2-vae-golden [--out tests/golden/wan2_2_vae]`` the Wan2.2 VAE's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.files import atomic_write_text, check_output_file, read_json
from llm_perf_opt.reference.dit import DitWorkload, measure_dit
from llm_perf_opt.reference.encoders import (
    ImageEncoderWorkload,
    TextEncoderWorkload,
    measure_image_encoder,
    measure_text_encoder,
)
from llm_perf_opt.reference.golden import (
    dit_record,
    dumps_record,
    image_encoder_record,
    text_encoder_record,
    vae_record,
    write_encoder_golden_files,
    write_golden_files,
    write_vae_golden_files,
)
from llm_perf_opt.reference.vace import write_vace_golden_files
from llm_perf_opt.reference.vae import VAE_USES, VaeWorkload, measure_vae
from llm_perf_opt.reference.wan2_2 import write_wan2_2_golden_files
from llm_perf_opt.reference.wan2_2_vae import write_wan2_2_vae_golden_files
from llm_perf_opt.wan2_1.check import (
    Comparison,
    compare_image_encoder_with_record,
    compare_text_encoder_with_record,
    compare_vae_with_record,
    compare_with_record,
)
from llm_perf_opt.wan2_1.vace import get_vace_variant
from llm_perf_opt.wan2_1.variants import VARIANTS, get_variant
from llm_perf_opt.wan2_2.variants import get_variant as wan2_2_variant

__all__ = ["main"]

_DEFAULT_GOLDEN_DIR = Path("tests/golden/dit")
_WAN2_2_GOLDEN_DIR = Path("tests/golden/wan2_2")
_VACE_GOLDEN_DIR = Path("tests/golden/vace")
_WAN2_2_VAE_GOLDEN_DIR = Path("tests/golden/wan2_2_vae")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm_perf_opt.reference",
        description="Count the real Wan2.1 DiT (diffusers, meta device) per official module id.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    dit = commands.add_parser("dit", help="measure one DiT forward and print the per-module table")
    _add_workload(dit)
    dit.add_argument(
        "--json", type=Path, help="also write the record, with every module's bytes, to this file"
    )
    dit.add_argument("--depth", type=int, help="print only ids with at most this many dotted parts")
    dit.add_argument(
        "--math-sdpa",
        action="store_true",
        help="run attention as the math decomposition instead of the fused op (same FLOPs, more bytes)",
    )

    compare = commands.add_parser(
        "compare", help="compare the analytic model with the measurement; exit 1 on any mismatch"
    )
    _add_workload(compare)
    compare.add_argument("--record", type=Path, help="compare this saved record instead of measuring")
    compare.add_argument("--depth", type=int, help="print only ids with at most this many dotted parts")

    golden = commands.add_parser("golden", help="regenerate the golden files")
    golden.add_argument(
        "--out", type=Path, default=_DEFAULT_GOLDEN_DIR, help=f"folder (default {_DEFAULT_GOLDEN_DIR})"
    )
    golden.add_argument("--variant", action="append", help="only this variant (repeatable)")
    wan2_2 = commands.add_parser("wan2_2-golden", help="regenerate the Wan2.2 transformer golden files")
    wan2_2.add_argument(
        "--out", type=Path, default=_WAN2_2_GOLDEN_DIR, help=f"folder (default {_WAN2_2_GOLDEN_DIR})"
    )
    wan2_2.add_argument("--variant", action="append", help="only this Wan2.2 variant (repeatable)")
    vace = commands.add_parser("vace-golden", help="regenerate the Wan2.1 VACE transformer golden files")
    vace.add_argument(
        "--out", type=Path, default=_VACE_GOLDEN_DIR, help=f"folder (default {_VACE_GOLDEN_DIR})"
    )
    vace.add_argument("--variant", action="append", help="only this VACE variant (repeatable)")
    wan2_2_vae = commands.add_parser("wan2_2-vae-golden", help="regenerate the Wan2.2 VAE golden files")
    wan2_2_vae.add_argument(
        "--out", type=Path, default=_WAN2_2_VAE_GOLDEN_DIR, help=f"folder (default {_WAN2_2_VAE_GOLDEN_DIR})"
    )
    _add_vae_commands(commands)
    _add_encoder_commands(commands)
    return parser


def _add_workload(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", required=True, help=f"one of {', '.join(VARIANTS)} (or its model_id)")
    parser.add_argument("--frames", type=int, required=True, help="video frames F")
    parser.add_argument("--height", type=int, required=True, help="video height H in pixels (multiple of 16)")
    parser.add_argument("--width", type=int, required=True, help="video width W in pixels (multiple of 16)")
    parser.add_argument(
        "--text-len", type=int, default=512, help="text tokens (default 512, as the pipelines pad)"
    )
    parser.add_argument("--batch", type=int, default=1, help="batch size B (default 1)")


def _table(record: dict[str, Any], depth: int | None) -> str:
    rows = [("module", "FLOPs", "params", "bytes read", "bytes written")]
    for module_id, entry in record["modules"].items():
        if depth is not None and module_id.count(".") + 1 > depth:
            continue
        read, written = entry["module_bytes"]
        rows.append((module_id, f"{entry['flops']:,}", f"{entry['params']:,}", f"{read:,}", f"{written:,}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells))
    totals = record["totals"]
    lines.append(
        f"total: {totals['flops']:,} FLOPs, {totals['params']:,} parameters, "
        f"{totals['bytes'][0]:,} bytes read, {totals['bytes'][1]:,} bytes written"
    )
    return "\n".join(lines)


def _measured_record(args: argparse.Namespace, *, module_bytes: bool) -> dict[str, Any]:
    variant = get_variant(args.variant)
    workload = DitWorkload(
        batch=args.batch, frames=args.frames, height=args.height, width=args.width, text_len=args.text_len
    )
    measurement = measure_dit(
        variant,
        batch=workload.batch,
        frames=workload.frames,
        height=workload.height,
        width=workload.width,
        text_len=workload.text_len,
        fused_sdpa=not getattr(args, "math_sdpa", False),
    )
    return dit_record(variant, workload, measurement, module_bytes=module_bytes)


def _run_dit(args: argparse.Namespace) -> None:
    if args.json is not None:
        check_output_file(args.json, field="--json")
    record = _measured_record(args, module_bytes=True)
    print(_table(record, args.depth))
    if args.json is not None:
        atomic_write_text(args.json, dumps_record(record), field="--json")
        print(f"wrote {args.json}")


def _comparison_table(rows: list[Comparison], depth: int | None) -> str:
    header = ("module", "metric", "analytic", "reference", "difference")
    cells = [header]
    for row in rows:
        if depth is not None and row.module_id.count(".") + 1 > depth and row.matches:
            continue
        difference = row.analytic - row.reference
        cells.append(
            (row.module_id, row.metric, f"{row.analytic:,}", f"{row.reference:,}", f"{difference:+,}")
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
            + [c.rjust(w) for c, w in zip(line[2:], widths[2:], strict=True)]
        )
        for line in cells
    )


_RECORD_FIELDS = ("workload", "totals", "modules")
"""Objects every saved record holds (see :mod:`llm_perf_opt.reference.golden`)."""


def _read_record(path: Path) -> dict[str, Any]:
    """A saved record; an unreadable file or one that is not a record is one error naming it."""
    record = read_json(path, field="--record")
    if not isinstance(record, dict) or not all(isinstance(record.get(key), dict) for key in _RECORD_FIELDS):
        raise LlmPerfOptError(
            f"--record: {str(path)!r} is not a saved reference record: expected a JSON object with "
            f"{', '.join(repr(k) for k in _RECORD_FIELDS)} objects"
        )
    return record


def _compare(path: Path | None, compare: Callable[[], list[Any]]) -> list[Any]:
    """``compare()`` of a record; a record whose fields are missing or of the wrong kind is one error."""
    try:
        return compare()
    except LlmPerfOptError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        where = "the measured record" if path is None else repr(str(path))
        raise LlmPerfOptError(
            f"--record: {where} is not a valid reference record ({type(error).__name__}: {error})"
        ) from None


def _run_compare(args: argparse.Namespace) -> bool:
    """Print the side-by-side table; True when everything matches."""
    if args.record is not None:
        record = _read_record(args.record)
    else:
        record = _measured_record(args, module_bytes=True)

    def compare() -> list[Any]:
        # diffusers runs the image cross-attention projections of a batch > 1 as an expanded bmm
        image_batch = get_variant(record["variant"]).num_images > 0 and record["workload"]["batch"] > 1
        return compare_with_record(record, bytes_checked=not image_batch)

    rows = _compare(args.record, compare)
    print(_comparison_table(rows, args.depth))
    mismatches = sum(not row.matches for row in rows)
    print(f"{len(rows)} figures compared, {mismatches} mismatches")
    return mismatches == 0


# ─── Wan-VAE ────────────────────────────────────────────────────────────────────────────────────

_DEFAULT_VAE_GOLDEN_DIR = Path("tests/golden/vae")


def _add_vae_commands(commands: Any) -> None:
    """``vae`` (measure and print), ``vae-compare`` (analytic vs reference), ``vae-golden``."""
    for name, help_text in (
        ("vae", "measure one VAE encode or decode and print the per-module table"),
        ("vae-compare", "compare the analytic VAE with the measurement; exit 1 on any mismatch"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument(
            "--use", required=True, choices=VAE_USES, help="encode a video or decode a latent"
        )
        command.add_argument("--frames", type=int, required=True, help="video frames F")
        command.add_argument("--height", type=int, required=True, help="video height H (multiple of 16)")
        command.add_argument("--width", type=int, required=True, help="video width W (multiple of 16)")
        command.add_argument("--batch", type=int, default=1, help="batch size B (default 1)")
        command.add_argument("--depth", type=int, help="print only ids with at most this many dotted parts")
        if name == "vae":
            command.add_argument("--json", type=Path, help="also write the record, with every module's bytes")
        else:
            command.add_argument("--record", type=Path, help="compare this saved record instead of measuring")
    golden = commands.add_parser("vae-golden", help="regenerate the VAE golden files")
    golden.add_argument(
        "--out",
        type=Path,
        default=_DEFAULT_VAE_GOLDEN_DIR,
        help=f"folder (default {_DEFAULT_VAE_GOLDEN_DIR})",
    )


def _measured_vae_record(args: argparse.Namespace, *, module_bytes: bool) -> dict[str, Any]:
    workload = VaeWorkload(
        use=args.use, batch=args.batch, frames=args.frames, height=args.height, width=args.width
    )
    measurement = measure_vae(
        workload.use,
        batch=workload.batch,
        frames=workload.frames,
        height=workload.height,
        width=workload.width,
    )
    return vae_record(workload, measurement, module_bytes=module_bytes)


def _run_vae(args: argparse.Namespace) -> int:
    """One of the VAE commands; 0 on success, 1 on a comparison mismatch."""
    if args.command == "vae-golden":
        for path in write_vae_golden_files(args.out):
            print(f"wrote {path}")
        return 0
    if args.command == "vae":
        if args.json is not None:
            check_output_file(args.json, field="--json")
        record = _measured_vae_record(args, module_bytes=True)
        print(_table(record, args.depth))
        if args.json is not None:
            atomic_write_text(args.json, dumps_record(record), field="--json")
            print(f"wrote {args.json}")
        return 0
    if args.record is not None:
        record = _read_record(args.record)
    else:
        record = _measured_vae_record(args, module_bytes=True)
    rows = _compare(args.record, lambda: compare_vae_with_record(record))
    print(_comparison_table(rows, args.depth))
    mismatches = sum(not row.matches for row in rows)
    print(f"{len(rows)} figures compared, {mismatches} mismatches")
    return 0 if mismatches == 0 else 1


# ─── text and image encoders ────────────────────────────────────────────────────────────────────

_ENCODER_COMMANDS = ("text-encoder", "image-encoder")
_ENCODER_COMPONENTS = {"text-encoder": "text_encoder", "image-encoder": "image_encoder"}


def _add_encoder_commands(commands: Any) -> None:
    """``<encoder>`` (measure and print), ``<encoder>-compare``, ``<encoder>-golden`` per encoder."""
    for encoder in _ENCODER_COMMANDS:
        component = _ENCODER_COMPONENTS[encoder]
        for name, help_text in (
            (encoder, f"measure one {component} forward and print the per-module table"),
            (
                f"{encoder}-compare",
                f"compare the analytic {component} with the measurement; exit 1 on any mismatch",
            ),
        ):
            command = commands.add_parser(name, help=help_text)
            command.add_argument("--batch", type=int, default=1, help="batch size B (default 1)")
            if encoder == "text-encoder":
                command.add_argument(
                    "--text-len", type=int, default=512, help="tokens per prompt (default 512, as padded)"
                )
            else:
                command.add_argument(
                    "--images", type=int, default=1, help="images per sample (I2V 1, FLF2V 2; default 1)"
                )
            command.add_argument(
                "--depth", type=int, help="print only ids with at most this many dotted parts"
            )
            if name == encoder:
                command.add_argument(
                    "--json", type=Path, help="also write the record, with every module's bytes"
                )
            else:
                command.add_argument(
                    "--record", type=Path, help="compare this saved record instead of measuring"
                )
        default = Path("tests/golden") / component
        golden = commands.add_parser(f"{encoder}-golden", help=f"regenerate the {component} golden files")
        golden.add_argument("--out", type=Path, default=default, help=f"folder (default {default})")


def _measured_encoder_record(args: argparse.Namespace, *, module_bytes: bool) -> dict[str, Any]:
    if args.command.startswith("text-encoder"):
        text = TextEncoderWorkload(batch=args.batch, text_len=args.text_len)
        measurement = measure_text_encoder(batch=text.batch, text_len=text.text_len)
        return text_encoder_record(text, measurement, module_bytes=module_bytes)
    image = ImageEncoderWorkload(batch=args.batch, num_images=args.images)
    measurement = measure_image_encoder(batch=image.batch, num_images=image.num_images)
    return image_encoder_record(image, measurement, module_bytes=module_bytes)


def _run_encoder(args: argparse.Namespace) -> int:
    """One of the encoder commands; 0 on success, 1 on a comparison mismatch."""
    encoder = next(e for e in _ENCODER_COMMANDS if args.command.startswith(e))
    if args.command.endswith("-golden"):
        for path in write_encoder_golden_files(args.out, _ENCODER_COMPONENTS[encoder]):
            print(f"wrote {path}")
        return 0
    if not args.command.endswith("-compare"):
        if args.json is not None:
            check_output_file(args.json, field="--json")
        record = _measured_encoder_record(args, module_bytes=True)
        print(_table(record, args.depth))
        if args.json is not None:
            atomic_write_text(args.json, dumps_record(record), field="--json")
            print(f"wrote {args.json}")
        return 0
    if args.record is not None:
        record = _read_record(args.record)
    else:
        record = _measured_encoder_record(args, module_bytes=True)
    if encoder == "text-encoder":
        rows = _compare(args.record, lambda: compare_text_encoder_with_record(record))
    else:
        rows = _compare(args.record, lambda: compare_image_encoder_with_record(record))
    print(_comparison_table(rows, args.depth))
    mismatches = sum(not row.matches for row in rows)
    print(f"{len(rows)} figures compared, {mismatches} mismatches")
    return 0 if mismatches == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 0 on success, 1 on a comparison mismatch, 2 on invalid input."""
    args = _parser().parse_args(argv)
    try:
        if args.command.startswith("vae"):
            return _run_vae(args)
        if args.command.startswith(_ENCODER_COMMANDS):
            return _run_encoder(args)
        if args.command == "dit":
            _run_dit(args)
        elif args.command == "compare":
            return 0 if _run_compare(args) else 1
        elif args.command == "wan2_2-vae-golden":
            for path in write_wan2_2_vae_golden_files(args.out):
                print(f"wrote {path}")
        elif args.command == "vace-golden":
            wanted = {get_vace_variant(v).model_variant for v in args.variant} if args.variant else None
            for path in write_vace_golden_files(args.out, wanted):
                print(f"wrote {path}")
        elif args.command == "wan2_2-golden":
            wanted = {wan2_2_variant(v).model_variant for v in args.variant} if args.variant else None
            for path in write_wan2_2_golden_files(args.out, wanted):
                print(f"wrote {path}")
        else:
            names = [get_variant(v).model_variant for v in args.variant] if args.variant else None
            for path in write_golden_files(args.out, names):
                print(f"wrote {path}")
    except LlmPerfOptError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
