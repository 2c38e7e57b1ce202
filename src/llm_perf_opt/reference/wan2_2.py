"""Reference records of the Wan2.2 transformers (TI2V-5B, the A14B experts) and their golden files.

The records are DiT records (:func:`~llm_perf_opt.reference.golden.dit_record`) of diffusers'
``WanTransformer3DModel`` built from each variant's transformer record — TI2V-5B fed one timestep per
token as diffusers' ``WanPipeline`` does with ``expand_timesteps``. One record serves both A14B experts
(same architecture; :mod:`llm_perf_opt.wan2_2.check`). The workloads include non-default frames and
sizes and a batch of 2 for every variant, and each variant's official default size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from llm_perf_opt.reference.dit import DitWorkload, measure_dit
from llm_perf_opt.reference.golden import dit_record, dumps_record, golden_file_name
from llm_perf_opt.wan2_2.variants import VARIANTS, Wan22Variant

__all__ = ["WAN2_2_GOLDEN_WORKLOADS", "wan2_2_golden_cases", "write_wan2_2_golden_files"]

WAN2_2_GOLDEN_WORKLOADS: Final = {
    "ti2v-5b": (
        DitWorkload(batch=1, frames=5, height=256, width=256, text_len=64),
        DitWorkload(batch=2, frames=17, height=384, width=640, text_len=512),
        DitWorkload(batch=1, frames=121, height=704, width=1280, text_len=512),
    ),
    "t2v-a14b": (
        DitWorkload(batch=1, frames=4, height=256, width=256, text_len=64),
        DitWorkload(batch=2, frames=17, height=480, width=832, text_len=512),
        DitWorkload(batch=1, frames=81, height=720, width=1280, text_len=512),
    ),
    "i2v-a14b": (
        DitWorkload(batch=1, frames=4, height=256, width=256, text_len=512),
        DitWorkload(batch=2, frames=17, height=480, width=832, text_len=512),
        DitWorkload(batch=1, frames=81, height=720, width=1280, text_len=512),
    ),
}
"""Per variant: a tiny workload, a batch of 2 at a non-default size and frame count, the default size."""


def wan2_2_golden_cases() -> list[tuple[Wan22Variant, DitWorkload]]:
    """Every (variant, workload) pair that has a golden file under ``tests/golden/wan2_2``."""
    return [(VARIANTS[name], w) for name, workloads in WAN2_2_GOLDEN_WORKLOADS.items() for w in workloads]


def write_wan2_2_golden_files(directory: Path, variants: set[str] | None = None) -> list[Path]:
    """Measure every Wan2.2 golden case (of the given variants, default all) and write its file."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for variant, workload in wan2_2_golden_cases():
        if variants is not None and variant.model_variant not in variants:
            continue
        transformer = variant.transformer
        measurement = measure_dit(
            transformer,
            batch=workload.batch,
            frames=workload.frames,
            height=workload.height,
            width=workload.width,
            text_len=workload.text_len,
        )
        path = directory / golden_file_name(transformer, workload)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(dumps_record(dit_record(transformer, workload, measurement)), encoding="utf-8")
        temporary.replace(path)
        written.append(path)
    return written
