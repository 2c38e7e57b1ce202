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

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.files import atomic_write_text
from llm_perf_opt.reference.counting import CPU_FLASH_SDPA, MASKED_SDPA, Measurement
from llm_perf_opt.reference.dit import DitWorkload, measure_dit
from llm_perf_opt.reference.encoders import (
    ImageEncoderWorkload,
    TextEncoderWorkload,
    measure_image_encoder,
    measure_text_encoder,
)
from llm_perf_opt.reference.official_ids import (
    IMAGE_ENCODER_NAMES,
    IMAGE_ENCODER_STAGE,
    TEXT_ENCODER_NAMES,
    TEXT_ENCODER_STAGE,
    OfficialCosts,
    to_official,
)
from llm_perf_opt.reference.vae import VAE_USES, VaeWorkload, measure_vae, official_vae_costs
from llm_perf_opt.wan2_1.variants import VARIANTS, WanVariant

__all__ = [
    "GOLDEN_WORKLOADS",
    "IMAGE_ENCODER_GOLDEN_WORKLOADS",
    "TEXT_ENCODER_GOLDEN_WORKLOADS",
    "VAE_GOLDEN_SIZES",
    "dit_record",
    "dumps_record",
    "golden_cases",
    "golden_file_name",
    "image_encoder_golden_file_name",
    "image_encoder_record",
    "text_encoder_golden_file_name",
    "text_encoder_record",
    "vae_golden_cases",
    "vae_golden_file_name",
    "vae_record",
    "write_encoder_golden_files",
    "write_golden_files",
    "write_vae_golden_files",
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
    module_bytes: bool = True,
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
        atomic_write_text(path, dumps_record(dit_record(variant, workload, measurement)))
        written.append(path)
    return written


# ─── Wan-VAE ────────────────────────────────────────────────────────────────────────────────────

VAE_GOLDEN_SIZES: Final = ((81, 480, 832), (81, 720, 1280), (17, 256, 256))
"""(frames, height, width) of the VAE golden records: 832×480 and 1280×720 at 81 frames, and a small
17-frame 256×256 video; each is encoded and decoded."""

_VAE_CONV_CLASSES: Final = frozenset(
    {"diffusers.models.autoencoders.autoencoder_kl_wan.WanCausalConv3d", "torch.nn.Conv2d"}
)
_VAE_ATTENTION_CLASS: Final = "diffusers.models.autoencoders.autoencoder_kl_wan.WanAttentionBlock"
_CONVOLUTION_OP: Final = "aten.convolution"


def vae_golden_cases() -> list[VaeWorkload]:
    """Every VAE workload that has a golden file: each golden size, encoded and decoded, batch 1."""
    return [
        VaeWorkload(use=use, batch=1, frames=frames, height=height, width=width)
        for frames, height, width in VAE_GOLDEN_SIZES
        for use in VAE_USES
    ]


def vae_golden_file_name(workload: VaeWorkload) -> str:
    """``<use>__b{B}_f{F}_{H}x{W}.json``."""
    w = workload
    return f"{w.use}__b{w.batch}_f{w.frames}_{w.height}x{w.width}.json"


def vae_record(
    workload: VaeWorkload, measurement: Measurement, *, module_bytes: bool = True
) -> dict[str, Any]:
    """The JSON-ready record of one measured VAE encode or decode, per official module id.

    Every id holds ``flops`` and ``params`` (its sub-ids included; ids of the part that did not run
    hold their parameters and no FLOPs). Convolution ids (``CausalConv3d``, ``Conv2d``) also hold
    ``conv_bytes``: the convolution ops alone, every chunk, [read, written]; the attention block
    ``sdpa_bytes``: its fused attention op. With ``module_bytes`` every id also carries its whole eager
    traffic [read, written].
    """
    official = official_vae_costs(measurement)
    ids = sorted(set(official.by_id) | set(official.parameters), key=_natural_key)
    modules: dict[str, dict[str, Any]] = {}
    for module_id in ids:
        cost = official.cost(module_id)
        entry: dict[str, Any] = {"flops": cost.flops, "params": official.parameters.get(module_id, 0)}
        cls = official.classes.get(module_id)
        if cls in _VAE_CONV_CLASSES:
            conv = official.op_cost(module_id, _CONVOLUTION_OP)
            entry["conv_bytes"] = [conv.bytes_read, conv.bytes_written]
        elif cls == _VAE_ATTENTION_CLASS:
            sdpa = official.op_cost(module_id, str(CPU_FLASH_SDPA))
            entry["sdpa_bytes"] = [sdpa.bytes_read, sdpa.bytes_written]
        if module_bytes:
            entry["module_bytes"] = [cost.bytes_read, cost.bytes_written]
        modules[module_id] = entry
    total = measurement.total
    return {
        "component": "vae",
        "use": workload.use,
        "workload": {
            "batch": workload.batch,
            "frames": workload.frames,
            "height": workload.height,
            "width": workload.width,
        },
        "reference": {
            "implementation": f"diffusers AutoencoderKLWan.{workload.use} on the meta device",
            **_versions(),
            "dtype": "float32",
            "attention": "fused CPU SDPA op" if measurement.fused_sdpa else "math SDPA decomposition",
        },
        "inputs": {name: [dtype, list(shape)] for name, (dtype, shape) in measurement.inputs.items()},
        "totals": {
            "flops": total.flops,
            "params": official.parameters.get("vae", 0),
            "bytes": [total.bytes_read, total.bytes_written],
        },
        "ops": {
            op: [cost.flops, cost.bytes_read, cost.bytes_written]
            for op, cost in sorted(measurement.totals.items())
        },
        "modules": modules,
    }


def write_vae_golden_files(directory: Path) -> list[Path]:
    """Measure every VAE golden case and write its file; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for workload in vae_golden_cases():
        measurement = measure_vae(
            workload.use,
            batch=workload.batch,
            frames=workload.frames,
            height=workload.height,
            width=workload.width,
        )
        path = directory / vae_golden_file_name(workload)
        atomic_write_text(path, dumps_record(vae_record(workload, measurement)))
        written.append(path)
    return written


# ─── text and image encoders ────────────────────────────────────────────────────────────────────

TEXT_ENCODER_GOLDEN_WORKLOADS: Final = (
    TextEncoderWorkload(batch=1, text_len=512),
    TextEncoderWorkload(batch=1, text_len=77),
    TextEncoderWorkload(batch=2, text_len=33),
)
"""umT5-XXL golden workloads: the padded 512 tokens the pipelines run, a CLIP-length prompt unpadded,
and a batch of two short prompts."""

IMAGE_ENCODER_GOLDEN_WORKLOADS: Final = (
    ImageEncoderWorkload(batch=1, num_images=1),
    ImageEncoderWorkload(batch=1, num_images=2),
    ImageEncoderWorkload(batch=3, num_images=1),
)
"""CLIP golden workloads: one image (I2V), two (FLF2V), and a batch of three single-image samples."""

_ENCODER_BYTE_CLASSES: Final = frozenset({"torch.nn.Linear", "torch.nn.Conv2d"})
_ENCODER_ATTENTION_OPS: Final = {
    "transformers.models.clip.modeling_clip.CLIPAttention": str(CPU_FLASH_SDPA),
    "transformers.models.umt5.modeling_umt5.UMT5Attention": MASKED_SDPA,
}
"""Encoder attention classes and the fused op whose bytes their ids record as ``sdpa_bytes``."""
"""The only encoder attention with a fused op (umT5 passes its position bias as a mask: math path)."""


def text_encoder_golden_file_name(workload: TextEncoderWorkload) -> str:
    """``umt5-xxl__b{B}_l{L}.json``."""
    return f"umt5-xxl__b{workload.batch}_l{workload.text_len}.json"


def image_encoder_golden_file_name(workload: ImageEncoderWorkload) -> str:
    """``clip-vit-h-14__b{B}_i{num_images}.json``."""
    return f"clip-vit-h-14__b{workload.batch}_i{workload.num_images}.json"


def _encoder_record(
    component: str,
    workload: dict[str, int],
    measurement: Measurement,
    official: OfficialCosts,
    reference: dict[str, str],
    module_bytes: bool,
) -> dict[str, Any]:
    ids = sorted(set(official.by_id) | set(official.parameters), key=_natural_key)
    modules: dict[str, dict[str, Any]] = {}
    for module_id in ids:
        cost = official.cost(module_id)
        entry: dict[str, Any] = {"flops": cost.flops, "params": official.parameters.get(module_id, 0)}
        cls = official.classes.get(module_id)
        if cls in _ENCODER_BYTE_CLASSES:
            entry["bytes"] = [cost.bytes_read, cost.bytes_written]
        elif cls in _ENCODER_ATTENTION_OPS:
            sdpa = official.op_cost(module_id, _ENCODER_ATTENTION_OPS[cls])
            entry["sdpa_bytes"] = [sdpa.bytes_read, sdpa.bytes_written]
        if module_bytes:
            entry["module_bytes"] = [cost.bytes_read, cost.bytes_written]
        modules[module_id] = entry
    total = measurement.total
    return {
        "component": component,
        "workload": workload,
        "reference": {
            **reference,
            **{name: metadata.version(name) for name in ("torch", "transformers")},
            "attention": "fused CPU SDPA op" if measurement.fused_sdpa else "math SDPA decomposition",
        },
        "inputs": {name: [dtype, list(shape)] for name, (dtype, shape) in measurement.inputs.items()},
        "totals": {
            "flops": total.flops,
            "params": official.parameters.get(component, 0),
            "bytes": [total.bytes_read, total.bytes_written],
        },
        "ops": {
            op: [cost.flops, cost.bytes_read, cost.bytes_written]
            for op, cost in sorted(measurement.totals.items())
        },
        "modules": modules,
    }


def text_encoder_record(
    workload: TextEncoderWorkload, measurement: Measurement, *, module_bytes: bool = True
) -> dict[str, Any]:
    """The JSON-ready record of one measured umT5 forward, per official id (``text_encoder.…``).

    Linear ids hold ``bytes`` [read, written], attention ids ``sdpa_bytes`` (the memory-efficient
    kernel a CUDA build runs, :class:`~llm_perf_opt.reference.counting.FusedSDPA`); with
    ``module_bytes`` every id also carries its whole eager traffic.
    """
    official = TEXT_ENCODER_NAMES.to_official(
        measurement.by_module, measurement.parameters, measurement.module_classes
    )
    return _encoder_record(
        TEXT_ENCODER_STAGE,
        {"batch": workload.batch, "text_len": workload.text_len},
        measurement,
        official,
        {
            "implementation": "transformers UMT5EncoderModel (SDPA) on the meta device, attention_mask None",
            "dtype": "bfloat16",
        },
        module_bytes,
    )


def image_encoder_record(
    workload: ImageEncoderWorkload, measurement: Measurement, *, module_bytes: bool = True
) -> dict[str, Any]:
    """The JSON-ready record of one measured CLIP vision forward, per official id (``image_encoder.…``).

    Linear and convolution ids hold ``bytes`` (``to_qkv``: q_proj, k_proj and v_proj together), every
    ``attn`` its fused attention op's ``sdpa_bytes``; with ``module_bytes`` every id also carries its
    whole eager traffic.
    """
    official = IMAGE_ENCODER_NAMES.to_official(
        measurement.by_module, measurement.parameters, measurement.module_classes
    )
    return _encoder_record(
        IMAGE_ENCODER_STAGE,
        {"batch": workload.batch, "num_images": workload.num_images},
        measurement,
        official,
        {
            "implementation": "transformers CLIPVisionModel (all blocks) on the meta device",
            "dtype": "float32",
        },
        module_bytes,
    )


def write_encoder_golden_files(directory: Path, component: str) -> list[Path]:
    """Measure every golden case of ``component`` (``text_encoder`` or ``image_encoder``) and write its
    file into ``directory``; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    if component == TEXT_ENCODER_STAGE:
        for text in TEXT_ENCODER_GOLDEN_WORKLOADS:
            record = text_encoder_record(text, measure_text_encoder(batch=text.batch, text_len=text.text_len))
            written.append(directory / text_encoder_golden_file_name(text))
            atomic_write_text(written[-1], dumps_record(record))
    elif component == IMAGE_ENCODER_STAGE:
        for image in IMAGE_ENCODER_GOLDEN_WORKLOADS:
            record = image_encoder_record(
                image, measure_image_encoder(batch=image.batch, num_images=image.num_images)
            )
            written.append(directory / image_encoder_golden_file_name(image))
            atomic_write_text(written[-1], dumps_record(record))
    else:
        raise LlmPerfOptError(
            f"component: unknown component {component!r}; "
            f"accepted: {TEXT_ENCODER_STAGE}, {IMAGE_ENCODER_STAGE}"
        )
    return written
