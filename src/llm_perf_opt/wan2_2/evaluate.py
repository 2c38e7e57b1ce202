"""Where a workload enters the Wan2.2 layer: validation, notes, and exact or grid evaluations.

Sizes off the variant's grid (16 pixels for A14B, 32 for TI2V-5B) are errors naming the nearest
valid sizes; the rest is Wan2.1's resolution (:func:`llm_perf_opt.wan2_1.evaluate.resolve_workload`:
limits, ``4k + 1`` frames floored as the official code floors them, the prompt padded to 512 tokens
unless ``pad_text=False``) with the variant's own token count and expert split in the notes.
"""

from __future__ import annotations

import functools
from typing import Any

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.compiler import Evaluator, GridResult, compile_tree
from llm_perf_opt.symbolic.module import ModuleTree, build_tree
from llm_perf_opt.symbolic.symbols import S, Workload
from llm_perf_opt.wan2_1.dit import declare_dit
from llm_perf_opt.wan2_1.evaluate import DitEvaluation
from llm_perf_opt.wan2_1.evaluate import _positive_int as _count
from llm_perf_opt.wan2_1.evaluate import resolve_workload as resolve_wan2_1_workload
from llm_perf_opt.wan2_1.geometry import PADDED_TEXT_LEN, check_frame_count
from llm_perf_opt.wan2_1.implementation import Implementation, get_implementation
from llm_perf_opt.wan2_2.geometry import check_frame_size, video_tokens
from llm_perf_opt.wan2_2.pipeline import expert_split
from llm_perf_opt.wan2_2.vae import declare_vae
from llm_perf_opt.wan2_2.variants import Wan22Variant, get_variant

__all__ = [
    "dit_evaluator",
    "dit_tree",
    "evaluate_dit",
    "evaluate_dit_grid",
    "evaluate_vae",
    "resolve_workload",
    "vae_tree",
]

DIT_PREFIX = "diffusion"


@functools.cache
def dit_tree(variant: Wan22Variant, implementation: Implementation) -> ModuleTree:
    """The module tree of the variant's transformer (each expert's, for A14B), ids ``diffusion.…``."""
    return build_tree(declare_dit(variant.transformer, implementation), DIT_PREFIX)


def dit_evaluator(variant: Wan22Variant, implementation: Implementation) -> Evaluator:
    """The compiled evaluator of :func:`dit_tree`, compiled once per process."""
    return compile_tree(dit_tree(variant, implementation))


def resolve_workload(
    variant: Wan22Variant,
    *,
    batch: int = 1,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    steps: int | None = None,
    text_len: int = PADDED_TEXT_LEN,
    pad_text: bool = True,
) -> tuple[Workload, list[str]]:
    """Validate one workload (missing fields take the variant's official defaults) and return the
    workload the pipeline really runs, with notes."""
    default_width, default_height = variant.default_width_height
    frames = variant.frame_num if frames is None else frames
    height = default_height if height is None else height
    width = default_width if width is None else width
    steps = variant.sample_steps if steps is None else steps
    check_frame_size(variant.transformer, height, width)
    workload, notes = resolve_wan2_1_workload(
        variant.transformer,
        batch=batch,
        frames=frames,
        height=height,
        width=width,
        steps=steps,
        text_len=text_len,
        pad_text=pad_text,
    )
    tokens = int(video_tokens(variant.transformer, frames, height, width))
    notes[-1] = f"{tokens} video tokens per sample ({height}×{width}, {check_frame_count(frames)} frames)"
    if variant.experts is not None:
        split = expert_split(variant)
        assert split is not None
        high, low = int(split.high_noise.subs(S, steps)), int(split.low_noise.subs(S, steps))
        notes.append(
            f"{steps} steps: high_noise_model runs {high}, low_noise_model {low} "
            f"(boundary {variant.boundary}, shift {variant.sample_shift})"
        )
    return workload, notes


def evaluate_dit(
    variant: str | Wan22Variant,
    *,
    batch: int = 1,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    text_len: int = PADDED_TEXT_LEN,
    pad_text: bool = True,
    implementation: str | Implementation = "official",
) -> DitEvaluation:
    """Exact integer costs of every module of one forward of the transformer (one expert for A14B)."""
    record = variant if isinstance(variant, Wan22Variant) else get_variant(variant)
    profile = get_implementation(implementation)
    workload, notes = resolve_workload(
        record, batch=batch, frames=frames, height=height, width=width, text_len=text_len, pad_text=pad_text
    )
    metrics = dit_evaluator(record, profile).evaluate_exact(workload)
    return DitEvaluation(
        variant=record.transformer, implementation=profile, workload=workload, metrics=metrics, notes=notes
    )


def evaluate_dit_grid(
    variant: str | Wan22Variant, *, implementation: str | Implementation = "official", **values: Any
) -> GridResult:
    """Float64 costs of every transformer module over arrays of ``batch``, ``frames``, ``height``,
    ``width``, ``text_len`` (no per-point validation: pass sizes the pipeline accepts)."""
    record = variant if isinstance(variant, Wan22Variant) else get_variant(variant)
    profile = get_implementation(implementation)
    unknown = set(values) - {"batch", "frames", "height", "width", "text_len"}
    if unknown:
        raise LlmPerfOptError(
            f"{sorted(unknown)[0]}: unknown workload field; accepted: batch, frames, height, width, text_len"
        )
    default_width, default_height = record.default_width_height
    workload = Workload(
        batch=values.get("batch", 1),
        frames=values.get("frames", record.frame_num),
        height=values.get("height", default_height),
        width=values.get("width", default_width),
        steps=1,
        text_len=values.get("text_len", PADDED_TEXT_LEN),
    )
    return dit_evaluator(record, profile).evaluate(workload)


@functools.cache
def vae_tree(implementation: Implementation, encodes: int = 1, decodes: int = 1) -> ModuleTree:
    """The module tree of the Wan2.2 VAE (ids ``vae.…``) for ``encodes`` encodes and ``decodes`` decodes."""
    return build_tree(declare_vae(implementation, encodes=encodes, decodes=decodes), "vae")


def evaluate_vae(
    *,
    frames: int,
    height: int,
    width: int,
    batch: int = 1,
    encodes: int = 1,
    decodes: int = 1,
    implementation: str | Implementation = "official",
) -> dict[str, dict[str, int]]:
    """Exact integer costs of every module of the Wan2.2 VAE encoding and/or decoding ``batch`` videos
    of ``frames`` frames at ``height × width`` (multiples of 32)."""
    profile = get_implementation(implementation)
    variant = get_variant("ti2v-5b")
    check_frame_count(frames)
    check_frame_size(variant.transformer, height, width)
    workload = Workload(
        batch=_count("batch_size", batch), frames=frames, height=height, width=width, steps=1, text_len=0
    )
    return compile_tree(vae_tree(profile, encodes, decodes)).evaluate_exact(workload)
