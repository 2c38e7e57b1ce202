"""Reference records of the diffusion transformer, keyed by official module id, and their golden files.

A record is the JSON form of one measured DiT forward: the variant, the workload, the versions that
produced it, the totals per aten op, and per official module id its FLOPs, its parameters and — for the
modules whose bytes have an unambiguous convention — its bytes:

- ``bytes`` on every Linear and convolution: the module's whole traffic, [read, written];
- ``sdpa_bytes`` on every attention module: the fused attention op(s) alone, [read, written]
  (q, k, v read; output plus fp32 log-sum-exp written).

The golden files under ``tests/golden/dit/`` are such records for the standard workloads
(:data:`GOLDEN_WORKLOADS`); :func:`write_golden_files` regenerates them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from llm_perf_opt.reference.counting import CPU_FLASH_SDPA, Measurement
from llm_perf_opt.reference.dit import DitWorkload, measure_dit
from llm_perf_opt.reference.official_ids import OfficialCosts, to_official
from llm_perf_opt.wan2_1.variants import VARIANTS, WanVariant

__all__ = [
    "GOLDEN_WORKLOADS",
    "dit_record",
    "dumps_record",
    "golden_cases",
    "golden_file_name",
    "write_golden_files",
]

_SMALL_TEXT_LEN: Final = 64
"""Text tokens of the smallest standard workload (text-only variants; see :func:`golden_cases`)."""

GOLDEN_WORKLOADS: Final = (
    DitWorkload(batch=1, frames=4, height=256, width=256, text_len=_SMALL_TEXT_LEN),
    DitWorkload(batch=1, frames=16, height=512, width=512, text_len=512),
    DitWorkload(batch=1, frames=81, height=480, width=832, text_len=512),
    DitWorkload(batch=1, frames=81, height=720, width=1280, text_len=512),
)
"""Standard workloads: tiny, square, 832×480 and 1280×720 (see :func:`golden_cases`)."""

_LINEAR_OR_CONV: Final = frozenset({"torch.nn.Linear", "torch.nn.Conv3d"})
_ATTENTION_CLASS: Final = "diffusers.models.transformers.transformer_wan.WanAttention"


def golden_cases() -> list[tuple[WanVariant, DitWorkload]]:
    """Every (variant, workload) pair that has a golden file.

    A workload at an official video size (832×480, 1280×720) is measured only for the variants whose
    official task supports that size (so 1280×720 for the 14B variants); the small test sizes for all.
    Image-conditioned variants measure the tiny workload with 512 text tokens: diffusers (like the
    official code) splits their context at a fixed 512 text tokens, so a shorter text is not valid.
    """
    official_sizes = {size for variant in VARIANTS.values() for size in variant.frame_sizes}
    cases = []
    for variant in VARIANTS.values():
        for workload in GOLDEN_WORKLOADS:
            size = (workload.width, workload.height)
            if size in official_sizes and size not in variant.frame_sizes:
                continue
            if variant.num_images and workload.text_len != variant.text_len:
                workload = DitWorkload(
                    batch=workload.batch,
                    frames=workload.frames,
                    height=workload.height,
                    width=workload.width,
                    text_len=variant.text_len,
                )
            cases.append((variant, workload))
    return cases


def golden_file_name(variant: WanVariant, workload: DitWorkload) -> str:
    """``<variant>__b{B}_f{F}_{H}x{W}_l{L}.json``."""
    w = workload
    return f"{variant.model_variant}__b{w.batch}_f{w.frames}_{w.height}x{w.width}_l{w.text_len}.json"


def _natural_key(official: str) -> list[tuple[int, int | str]]:
    """Sort ids as a tree with numeric block indices in numeric order."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in official.split(".")]


def _versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("torch", "diffusers")}


def dit_record(
    variant: WanVariant,
    workload: DitWorkload,
    measurement: Measurement,
    *,
    module_bytes: bool = False,
) -> dict[str, Any]:
    """The JSON-ready record of one measured DiT forward, per official module id.

    With ``module_bytes`` every id also carries ``module_bytes``: its whole eager traffic [read, written]
    under the byte convention of :mod:`llm_perf_opt.reference.counting`.
    """
    official: OfficialCosts = to_official(
        measurement.by_module, measurement.parameters, measurement.module_classes
    )
    ids = sorted(set(official.by_id) | set(official.parameters), key=_natural_key)
    modules: dict[str, dict[str, Any]] = {}
    for module_id in ids:
        cost = official.cost(module_id)
        entry: dict[str, Any] = {"flops": cost.flops, "params": official.parameters.get(module_id, 0)}
        cls = official.classes.get(module_id)
        if cls in _LINEAR_OR_CONV:
            entry["bytes"] = [cost.bytes_read, cost.bytes_written]
        elif cls == _ATTENTION_CLASS:
            sdpa = official.op_cost(module_id, str(CPU_FLASH_SDPA))
            entry["sdpa_bytes"] = [sdpa.bytes_read, sdpa.bytes_written]
        if module_bytes:
            entry["module_bytes"] = [cost.bytes_read, cost.bytes_written]
        modules[module_id] = entry
    total = measurement.total
    return {
        "variant": variant.model_variant,
        "model_id": variant.model_id,
        "workload": {
            "batch": workload.batch,
            "frames": workload.frames,
            "height": workload.height,
            "width": workload.width,
            "text_len": workload.text_len,
        },
        "reference": {
            "implementation": "diffusers WanTransformer3DModel on the meta device",
            **_versions(),
            "dtype": "bfloat16 (from_pretrained: _keep_in_fp32_modules stay float32)",
            "attention": "fused CPU SDPA op" if measurement.fused_sdpa else "math SDPA decomposition",
        },
        "inputs": {name: [dtype, list(shape)] for name, (dtype, shape) in measurement.inputs.items()},
        "totals": {
            "flops": total.flops,
            "params": official.parameters.get("diffusion", 0),
            "bytes": [total.bytes_read, total.bytes_written],
        },
        "ops": {
            op: [cost.flops, cost.bytes_read, cost.bytes_written]
            for op, cost in sorted(measurement.totals.items())
        },
        "modules": modules,
    }


def dumps_record(record: dict[str, Any]) -> str:
    """JSON text of a record: header fields indented, one line per module id (diff-friendly, compact)."""
    lines = ["{"]
    for key, value in record.items():
        if key == "modules":
            continue
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('  "modules": {')
    entries = [f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in record["modules"].items()]
    lines.append(",\n".join(entries))
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_golden_files(
    directory: Path,
    variants: Iterable[str] | None = None,
) -> list[Path]:
    """Measure every golden case (of the given variants, default all) and write its file; returns paths."""
    wanted = set(variants) if variants is not None else None
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for variant, workload in golden_cases():
        if wanted is not None and variant.model_variant not in wanted:
            continue
        measurement = measure_dit(
            variant,
            batch=workload.batch,
            frames=workload.frames,
            height=workload.height,
            width=workload.width,
            text_len=workload.text_len,
        )
        path = directory / golden_file_name(variant, workload)
        path.write_text(dumps_record(dit_record(variant, workload, measurement)), encoding="utf-8")
        written.append(path)
    return written
