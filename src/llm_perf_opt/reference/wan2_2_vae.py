"""The Wan2.2 VAE as diffusers implements it (``AutoencoderKLWan`` with ``is_residual``), measured.

Built on the meta device in fp32 with the Wan2.2 configuration (base dim 160, decoder dim 256,
48 latent channels, patch size 2, 12 input and output channels, ``temperal_downsample``
(False, True, True)), measured through the same encode / decode wrappers as the Wan2.1 VAE, and
re-keyed onto the official ``wan/modules/vae2_2.py`` ids by :func:`official_wan2_2_vae_id`:

- ``encoder.down_blocks.i`` is ``encoder.downsamples.i`` (``Down_ResidualBlock``): its ``resnets.j``
  are ``downsamples.j``, its ``downsampler`` the last entry of ``downsamples``, ``avg_shortcut`` itself;
- ``decoder.up_blocks.i`` is ``decoder.upsamples.i`` (``Up_ResidualBlock``), ``resnets.j`` and
  ``upsampler`` likewise under ``upsamples``;
- the rest (``conv_in`` = ``conv1``, ``mid_block`` = ``middle``, ``norm_out``/``conv_out`` = ``head``,
  ``quant_conv`` = ``conv1``, ``post_quant_conv`` = ``conv2``, the block parts) as for the Wan2.1 VAE.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, cast

import torch
from diffusers import AutoencoderKLWan

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference.counting import CPU_FLASH_SDPA, Measurement, measure_forward
from llm_perf_opt.reference.golden import dumps_record
from llm_perf_opt.reference.official_ids import VAE_BLOCK_PARTS, VAE_STAGE
from llm_perf_opt.reference.vae import VaeDecode, VaeEncode, official_vae_costs
from llm_perf_opt.wan2_2.vae import WAN2_2_VAE

__all__ = [
    "WAN2_2_VAE_GOLDEN_CASES",
    "build_diffusers_wan2_2_vae",
    "measure_wan2_2_vae",
    "official_wan2_2_vae_id",
    "wan2_2_vae_record",
    "write_wan2_2_vae_golden_files",
]

_LEVELS: Final = len(WAN2_2_VAE.dim_mult)
_ENCODER_RESNETS: Final = WAN2_2_VAE.num_res_blocks
_DECODER_RESNETS: Final = WAN2_2_VAE.num_res_blocks + 1

WAN2_2_VAE_GOLDEN_CASES: Final = (
    ("encode", 1, 17, 256, 256),
    ("decode", 1, 17, 256, 256),
    ("encode", 2, 9, 384, 640),
    ("decode", 2, 9, 384, 640),
    ("decode", 1, 121, 704, 1280),
    ("encode", 1, 1, 704, 1280),
)
"""(use, batch, frames, height, width): small, a batch of 2 at another size, TI2V-5B's default decode and
its image-to-video mode's encode of the input image (one frame)."""


def _table() -> dict[str, str | None]:
    rows: dict[str, str | None] = {
        "": "",
        "quant_conv": "conv1",
        "post_quant_conv": "conv2",
        "encoder": "encoder",
        "encoder.conv_in": "encoder.conv1",
        "encoder.down_blocks": "encoder.downsamples",
        "decoder": "decoder",
        "decoder.conv_in": "decoder.conv1",
        "decoder.up_blocks": "decoder.upsamples",
    }
    for part in ("encoder", "decoder"):
        rows |= {
            f"{part}.mid_block": f"{part}.middle",
            f"{part}.mid_block.resnets": None,
            f"{part}.mid_block.attentions": None,
            f"{part}.mid_block.resnets.0": f"{part}.middle.0",
            f"{part}.mid_block.attentions.0": f"{part}.middle.1",
            f"{part}.mid_block.resnets.1": f"{part}.middle.2",
            f"{part}.norm_out": f"{part}.head.0",
            f"{part}.nonlinearity": f"{part}.head.1",
            f"{part}.conv_out": f"{part}.head.2",
        }
    for level in range(_LEVELS):
        for part, blocks, inner, resnets, resample in (
            ("encoder", "down_blocks", "downsamples", _ENCODER_RESNETS, "downsampler"),
            ("decoder", "up_blocks", "upsamples", _DECODER_RESNETS, "upsampler"),
        ):
            ours, theirs = f"{part}.{blocks}.{level}", f"{part}.{inner}.{level}"
            rows[ours] = theirs
            rows[f"{ours}.avg_shortcut"] = f"{theirs}.avg_shortcut"
            rows[f"{ours}.resnets"] = None
            for j in range(resnets):
                rows[f"{ours}.resnets.{j}"] = f"{theirs}.{inner}.{j}"
            rows[f"{ours}.{resample}"] = f"{theirs}.{inner}.{resnets}"
    return rows


_CONV_CLASSES: Final = frozenset(
    {"diffusers.models.autoencoders.autoencoder_kl_wan.WanCausalConv3d", "torch.nn.Conv2d"}
)
_ATTENTION_CLASS: Final = "diffusers.models.autoencoders.autoencoder_kl_wan.WanAttentionBlock"
_CONVOLUTION_OP: Final = "aten.convolution"

_RULES: Final = _table()
_PARTS: Final = dict(VAE_BLOCK_PARTS)
_BLOCK: Final = re.compile(r"^(.*?\.(?:resnets\.\d+|downsampler|upsampler|attentions\.\d+))\.(.+)$")


def official_wan2_2_vae_id(diffusers_name: str) -> str | None:
    """``vae.<official name>`` of a Wan2.2 ``AutoencoderKLWan`` name; ``None`` where there is none.

    Raises :class:`LlmPerfOptError` for a name the table does not know.
    """
    if diffusers_name in _RULES:
        official = _RULES[diffusers_name]
    else:
        match = _BLOCK.match(diffusers_name)
        block, part = (match.group(1), match.group(2)) if match else (diffusers_name, "")
        if block not in _RULES or _RULES[block] is None or part not in _PARTS:
            raise LlmPerfOptError(
                f"module: diffusers name {diffusers_name!r} is not in the Wan2.2 VAE table; "
                "the installed diffusers may differ from the pinned version"
            )
        inside = _PARTS[part]
        official = None if inside is None else f"{_RULES[block]}.{inside}"
    if official is None:
        return None
    return f"{VAE_STAGE}.{official}" if official else VAE_STAGE


def build_diffusers_wan2_2_vae() -> torch.nn.Module:
    """diffusers' ``AutoencoderKLWan`` with the Wan2.2 configuration, fp32, on the meta device."""
    config = WAN2_2_VAE
    construct = cast(Callable[..., torch.nn.Module], AutoencoderKLWan)
    with torch.device("meta"):
        model = construct(
            base_dim=config.dim,
            decoder_base_dim=config.dec_dim,
            z_dim=config.z_dim,
            dim_mult=list(config.dim_mult),
            num_res_blocks=config.num_res_blocks,
            temperal_downsample=list(config.temperal_downsample),
            latents_mean=[0.0] * config.z_dim,
            latents_std=[1.0] * config.z_dim,
            is_residual=True,
            in_channels=12,
            out_channels=12,
            patch_size=2,
            scale_factor_temporal=4,
            scale_factor_spatial=16,
        )
    return model.eval()


def measure_wan2_2_vae(use: str, *, batch: int, frames: int, height: int, width: int) -> Measurement:
    """Count one diffusers Wan2.2 VAE encode (of a ``frames``-frame video) or decode (of its latent)."""
    for name, value in (("batch", batch), ("frames", frames), ("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LlmPerfOptError(f"{name}: must be an integer ≥ 1, got {value!r}")
    for name, value in (("height", height), ("width", width)):
        if value % 32:
            raise LlmPerfOptError(f"{name}: must be a multiple of 32 for the Wan2.2 VAE, got {value}")
    latent_frames = (frames - 1) // 4 + 1
    if use == "encode":
        shape = (batch, 3, frames, height, width)
        wrapper: torch.nn.Module = VaeEncode(build_diffusers_wan2_2_vae())
        inputs = {"video": torch.empty(*shape, dtype=torch.float32, device="meta")}
    elif use == "decode":
        shape = (batch, WAN2_2_VAE.z_dim, latent_frames, height // 16, width // 16)
        wrapper = VaeDecode(build_diffusers_wan2_2_vae())
        inputs = {"latents": torch.empty(*shape, dtype=torch.float32, device="meta")}
    else:
        raise LlmPerfOptError(f"use: must be 'encode' or 'decode', got {use!r}")
    return measure_forward(wrapper, inputs, fused_sdpa=True)


def wan2_2_vae_record(
    use: str, batch: int, frames: int, height: int, width: int, measurement: Measurement
) -> dict[str, Any]:
    """The JSON-ready record of one measured Wan2.2 VAE call: per official id its FLOPs and parameters;
    convolution ids also their convolution ops' bytes (``conv_bytes``, every chunk, [read, written]), the
    attention block its fused attention op's (``sdpa_bytes``); every id its whole eager traffic
    (``module_bytes``, its sub-ids included), as the Wan2.1 VAE records."""
    official = official_vae_costs(measurement, official_wan2_2_vae_id)
    ids = sorted(set(official.by_id) | set(official.parameters))
    modules: dict[str, dict[str, Any]] = {}
    for module_id in ids:
        entry: dict[str, Any] = {
            "flops": official.cost(module_id).flops,
            "params": official.parameters.get(module_id, 0),
        }
        cls = official.classes.get(module_id)
        if cls in _CONV_CLASSES:
            conv = official.op_cost(module_id, _CONVOLUTION_OP)
            entry["conv_bytes"] = [conv.bytes_read, conv.bytes_written]
        elif cls == _ATTENTION_CLASS:
            sdpa = official.op_cost(module_id, str(CPU_FLASH_SDPA))
            entry["sdpa_bytes"] = [sdpa.bytes_read, sdpa.bytes_written]
        cost = official.cost(module_id)
        entry["module_bytes"] = [cost.bytes_read, cost.bytes_written]
        modules[module_id] = entry
    total = measurement.total
    return {
        "component": "vae",
        "model": "wan2.2",
        "use": use,
        "workload": {"batch": batch, "frames": frames, "height": height, "width": width},
        "reference": {"implementation": f"diffusers AutoencoderKLWan (Wan2.2 configuration).{use} on meta"},
        "inputs": {name: [dtype, list(shape)] for name, (dtype, shape) in measurement.inputs.items()},
        "totals": {"flops": total.flops, "params": official.parameters.get("vae", 0)},
        "modules": modules,
    }


def write_wan2_2_vae_golden_files(directory: Path) -> list[Path]:
    """Measure every Wan2.2 VAE golden case and write ``<use>__b{B}_f{F}_{H}x{W}.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for use, batch, frames, height, width in WAN2_2_VAE_GOLDEN_CASES:
        measurement = measure_wan2_2_vae(use, batch=batch, frames=frames, height=height, width=width)
        record = wan2_2_vae_record(use, batch, frames, height, width, measurement)
        path = directory / f"{use}__b{batch}_f{frames}_{height}x{width}.json"
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(dumps_record(record), encoding="utf-8")
        temporary.replace(path)
        written.append(path)
    return written
