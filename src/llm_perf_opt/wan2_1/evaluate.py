"""Evaluate the diffusion transformer of a variant for one workload or a grid of workloads.

This is where a workload enters the Wan2.1 layer, so it is validated here: heights and widths the
pipeline would not accept are errors that name the nearest valid sizes; a frame count that is not
``4k + 1`` is accepted as the official code accepts it (it floors) and the effective frame count is
disclosed; the prompt is padded to 512 tokens by default, as both pipelines do, or left at its own
length for implementations that trim. Every such decision is returned as a note.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.compiler import Evaluator, GridResult, compile_tree
from llm_perf_opt.symbolic.module import ModuleTree, build_tree
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.dit import declare_dit
from llm_perf_opt.wan2_1.geometry import (
    PADDED_TEXT_LEN,
    check_frame_count,
    check_frame_size,
    latent_frames,
    video_tokens,
)
from llm_perf_opt.wan2_1.implementation import Implementation, get_implementation
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant

__all__ = [
    "DitEvaluation",
    "dit_evaluator",
    "dit_tree",
    "evaluate_dit",
    "evaluate_dit_grid",
    "resolve_workload",
]

DIT_PREFIX = "diffusion"


@functools.cache
def dit_tree(variant: WanVariant, implementation: Implementation) -> ModuleTree:
    """The module tree of ``variant``'s diffusion transformer, built once per process."""
    return build_tree(declare_dit(variant, implementation), DIT_PREFIX)


def dit_evaluator(variant: WanVariant, implementation: Implementation) -> Evaluator:
    """The compiled evaluator of :func:`dit_tree`, compiled once per process."""
    return compile_tree(dit_tree(variant, implementation))


def _positive_int(field: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise LlmPerfOptError(f"{field}: must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def resolve_workload(
    variant: WanVariant,
    *,
    batch: int,
    frames: int,
    height: int,
    width: int,
    steps: int = 1,
    text_len: int = PADDED_TEXT_LEN,
    pad_text: bool = True,
) -> tuple[Workload, list[str]]:
    """Validate one workload and return the workload the transformer really runs, with notes.

    Raises for sizes the pipeline rejects, for non-positive counts, and for an unpadded prompt on
    an image-conditioned variant (both implementations split its context at 512 text tokens).
    """
    batch = _positive_int("batch_size", batch)
    steps = _positive_int("num_inference_steps", steps)
    text_len = _positive_int("text_len", text_len, minimum=0)
    effective = check_frame_count(frames)
    check_frame_size(height, width)
    notes = []
    if effective != frames:
        notes.append(
            f"num_frames {frames} is not 4k+1: the pipeline floors (F-1)//4, so the video has "
            f"{effective} frames ({int(latent_frames(frames))} latent frames)"
        )
    if pad_text:
        if text_len > PADDED_TEXT_LEN:
            raise LlmPerfOptError(
                f"text_len: must be ≤ {PADDED_TEXT_LEN} (the tokenizer truncates there), got {text_len}"
            )
        if text_len != PADDED_TEXT_LEN:
            notes.append(
                f"text_len {text_len} is padded to {PADDED_TEXT_LEN} tokens, "
                "as both pipelines pad every prompt"
            )
        text_len = PADDED_TEXT_LEN
    else:
        if variant.image_tokens and text_len != PADDED_TEXT_LEN:
            raise LlmPerfOptError(
                f"text_len: {variant.model_variant} splits its context at {PADDED_TEXT_LEN} text tokens, "
                f"so an unpadded prompt must have exactly {PADDED_TEXT_LEN} tokens, got {text_len}"
            )
        notes.append(f"text_len {text_len} is used unpadded (an implementation that trims the prompt)")
    tokens = int(video_tokens(frames, height, width))
    notes.append(f"{tokens} video tokens per sample ({height}×{width}, {effective} frames)")
    workload = Workload(
        batch=batch, frames=frames, height=height, width=width, steps=steps, text_len=text_len
    )
    return workload, notes


@frozen(kw_only=True)
class DitEvaluation:
    """Exact costs of one transformer forward for one workload.

    Attributes:
        variant: the variant evaluated.
        implementation: the implementation profile the bytes follow.
        workload: the workload as run (text padded when asked).
        metrics: module id → metric → exact int, for every module of the tree.
        notes: what was decided about the workload (padding, effective frames, tokens).
    """

    variant: WanVariant
    implementation: Implementation
    workload: Workload
    metrics: dict[str, dict[str, int]]
    notes: list[str]


def evaluate_dit(
    variant: str | WanVariant,
    *,
    batch: int = 1,
    frames: int,
    height: int,
    width: int,
    text_len: int = PADDED_TEXT_LEN,
    pad_text: bool = True,
    implementation: str | Implementation = "official",
) -> DitEvaluation:
    """Exact integer costs of every module of one forward of the transformer."""
    record = variant if isinstance(variant, WanVariant) else get_variant(variant)
    profile = (
        implementation if isinstance(implementation, Implementation) else get_implementation(implementation)
    )
    workload, notes = resolve_workload(
        record, batch=batch, frames=frames, height=height, width=width, text_len=text_len, pad_text=pad_text
    )
    metrics = dit_evaluator(record, profile).evaluate_exact(workload)
    return DitEvaluation(
        variant=record, implementation=profile, workload=workload, metrics=metrics, notes=notes
    )


def evaluate_dit_grid(
    variant: str | WanVariant,
    *,
    implementation: str | Implementation = "official",
    **values: Any,
) -> GridResult:
    """Float64 costs of every module over arrays of workloads (``batch``, ``frames``, ``height``,
    ``width``, ``text_len``), without per-point validation: pass sizes the pipeline accepts.

    Missing fields default to batch 1 and 512 text tokens; ``frames``, ``height`` and ``width`` are
    required.
    """
    record = variant if isinstance(variant, WanVariant) else get_variant(variant)
    profile = (
        implementation if isinstance(implementation, Implementation) else get_implementation(implementation)
    )
    for required in ("frames", "height", "width"):
        if required not in values:
            raise LlmPerfOptError(f"{required}: required for a grid evaluation")
    unknown = set(values) - {"batch", "frames", "height", "width", "text_len"}
    if unknown:
        raise LlmPerfOptError(
            f"{sorted(unknown)[0]}: unknown workload field; accepted: batch, frames, height, width, text_len"
        )
    workload = Workload(
        batch=values.get("batch", 1),
        frames=values["frames"],
        height=values["height"],
        width=values["width"],
        steps=1,
        text_len=values.get("text_len", PADDED_TEXT_LEN),
    )
    return dit_evaluator(record, profile).evaluate(workload)
