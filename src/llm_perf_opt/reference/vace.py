"""The Wan2.1 VACE transformer as diffusers implements it (``WanVACETransformer3DModel``), measured.

Built on the meta device from the same :class:`~llm_perf_opt.wan2_1.vace.VaceVariant` the analytic
model uses, with ``from_pretrained``'s dtypes (as :func:`~llm_perf_opt.reference.dit.build_diffusers_dit`).
Its inputs are the pipeline's: the noise latent and the 96-channel control context, both with the
reference images' latent frames in front (``T + R`` frames), the text embeddings and one timestep per
sample. Records are DiT records (``diffusion.…`` ids, the VACE ones included) under
``tests/golden/vace/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, cast

import torch
from diffusers import WanVACETransformer3DModel

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference.counting import Measurement, measure_forward
from llm_perf_opt.reference.dit import ROPE_TABLE_LENGTH, DitWorkload
from llm_perf_opt.reference.golden import dit_record, dumps_record
from llm_perf_opt.wan2_1.vace import VACE_VARIANTS, VaceVariant, get_vace_variant

__all__ = [
    "VACE_GOLDEN_WORKLOADS",
    "build_diffusers_vace",
    "measure_vace",
    "vace_golden_file_name",
    "vace_record",
    "write_vace_golden_files",
]

VACE_GOLDEN_WORKLOADS: Final = (
    (DitWorkload(batch=1, frames=5, height=256, width=256, text_len=64), 0),
    (DitWorkload(batch=2, frames=9, height=256, width=384, text_len=512), 1),
    (DitWorkload(batch=1, frames=81, height=480, width=832, text_len=512), 2),
)
"""(workload, reference images): tiny, a batch of 2 with one reference image, the README run at 832×480."""


def build_diffusers_vace(variant: VaceVariant | str, dtype: torch.dtype = torch.bfloat16) -> torch.nn.Module:
    """diffusers' ``WanVACETransformer3DModel`` for a VACE variant, on the meta device, in eval mode."""
    if isinstance(variant, str):
        variant = get_vace_variant(variant)
    base = variant.transformer
    construct = cast(Callable[..., torch.nn.Module], WanVACETransformer3DModel)
    with torch.device("meta"):
        model = construct(
            patch_size=base.patch_size,
            num_attention_heads=base.num_heads,
            attention_head_dim=base.head_dim,
            in_channels=base.in_dim,
            out_channels=base.out_dim,
            text_dim=base.text_dim,
            freq_dim=base.freq_dim,
            ffn_dim=base.ffn_dim,
            num_layers=base.num_layers,
            cross_attn_norm=base.cross_attn_norm,
            qk_norm="rms_norm_across_heads",
            eps=base.eps,
            rope_max_seq_len=ROPE_TABLE_LENGTH,
            vace_layers=list(variant.vace_layers),
            vace_in_channels=variant.vace_in_dim,
        )
    keep_fp32 = set(WanVACETransformer3DModel._keep_in_fp32_modules or ())
    for name, param in list(model.named_parameters()):
        owner_name, _, attribute = name.rpartition(".")
        target = torch.float32 if keep_fp32 & set(name.split(".")) else dtype
        owner = model.get_submodule(owner_name)
        owner._parameters[attribute] = torch.nn.Parameter(param.detach().to(target), requires_grad=False)
    return model.eval()


def measure_vace(
    variant: VaceVariant | str,
    workload: DitWorkload,
    reference_images: int,
    dtype: torch.dtype = torch.bfloat16,
) -> Measurement:
    """Count one diffusers VACE forward at a workload with ``reference_images`` reference images."""
    if isinstance(variant, str):
        variant = get_vace_variant(variant)
    if isinstance(reference_images, bool) or not isinstance(reference_images, int) or reference_images < 0:
        raise LlmPerfOptError(f"reference_images: must be an integer ≥ 0, got {reference_images!r}")
    base = variant.transformer
    workload.validate(base)
    frames, height, width = workload.latent_shape(base)
    frames += reference_images
    b = workload.batch
    inputs = {
        "hidden_states": torch.empty(b, base.in_dim, frames, height, width, dtype=dtype, device="meta"),
        "timestep": torch.empty(b, dtype=torch.int64, device="meta"),
        "encoder_hidden_states": torch.empty(b, workload.text_len, base.text_dim, dtype=dtype, device="meta"),
        "control_hidden_states": torch.empty(
            b, variant.vace_in_dim, frames, height, width, dtype=dtype, device="meta"
        ),
    }
    return measure_forward(build_diffusers_vace(variant, dtype), inputs, fused_sdpa=True)


def vace_golden_file_name(variant: VaceVariant, workload: DitWorkload, reference_images: int) -> str:
    """``<variant>__b{B}_f{F}_{H}x{W}_l{L}_r{R}.json``."""
    w = workload
    return (
        f"{variant.model_variant}__b{w.batch}_f{w.frames}_{w.height}x{w.width}_l{w.text_len}"
        f"_r{reference_images}.json"
    )


def vace_record(
    variant: VaceVariant, workload: DitWorkload, reference_images: int, measurement: Measurement
) -> dict[str, Any]:
    """The DiT record of one VACE forward, with the reference-image count in its workload."""
    record = dit_record(variant.transformer, workload, measurement)
    record["workload"]["reference_images"] = reference_images
    record["reference"]["implementation"] = "diffusers WanVACETransformer3DModel on the meta device"
    return record


def write_vace_golden_files(directory: Path, variants: set[str] | None = None) -> list[Path]:
    """Measure every VACE golden case (of the given variants, default all) and write its file."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for variant in VACE_VARIANTS.values():
        if variants is not None and variant.model_variant not in variants:
            continue
        for workload, refs in VACE_GOLDEN_WORKLOADS:
            if (
                workload.width,
                workload.height,
            ) not in variant.transformer.frame_sizes and workload.frames == 81:
                continue
            measurement = measure_vace(variant, workload, refs)
            path = directory / vace_golden_file_name(variant, workload, refs)
            temporary = path.with_suffix(".json.tmp")
            temporary.write_text(
                dumps_record(vace_record(variant, workload, refs, measurement)), encoding="utf-8"
            )
            temporary.replace(path)
            written.append(path)
    return written
