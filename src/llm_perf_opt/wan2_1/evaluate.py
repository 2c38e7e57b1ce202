"""Evaluate the diffusion transformer of a variant for one workload or a grid of workloads.

This is where a workload enters the Wan2.1 layer, so it is validated here: heights and widths the
pipeline would not accept are errors that name the nearest valid sizes; a frame count that is not
``4k + 1`` is accepted as the official code accepts it (it floors) and the effective frame count is
disclosed; the prompt is padded to 512 tokens by default, as both pipelines do, or left at its own
length for implementations that trim. Every such decision is returned as a note.

Grids (``evaluate_*_grid``) take arrays of workload values of any broadcastable shapes.
``modules`` and ``metrics`` restrict the evaluation to those columns (default: every module and
metric, as a :class:`~llm_perf_opt.symbolic.compiler.GridResult`); with either given only
their expressions are compiled and evaluated, and the result is a
:class:`~llm_perf_opt.symbolic.compiler.ColumnGrid` (``modules`` default the root, ``metrics``
every metric). Dask arrays as values give lazy dask arrays evaluated chunk by chunk; they need
``modules``. ``validate`` (default on) checks every value, vectorised, against
:data:`~llm_perf_opt.wan2_1.limits.WORKLOAD_LIMITS` (finite, integer-valued, in range, sizes
multiples of 16) and raises naming the field, the first bad value and how many are bad; pass
``validate=False`` for arrays validated already.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.compiler import ColumnGrid, Evaluator, GridResult, compile_columns, compile_tree
from llm_perf_opt.symbolic.cost import METRICS
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
from llm_perf_opt.wan2_1.image_encoder import CLIP_VIT_H_14, VisionTransformerConfig, declare_image_encoder
from llm_perf_opt.wan2_1.implementation import Implementation, get_implementation
from llm_perf_opt.wan2_1.limits import check_field, validate_workload_arrays
from llm_perf_opt.wan2_1.text_encoder import UMT5_XXL, T5EncoderConfig, declare_text_encoder
from llm_perf_opt.wan2_1.vae import WAN_VAE, WanVAEConfig, declare_vae
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant

__all__ = [
    "DitEvaluation",
    "ImageEncoderEvaluation",
    "TextEncoderEvaluation",
    "VaeEvaluation",
    "dit_evaluator",
    "dit_tree",
    "evaluate_dit",
    "evaluate_dit_grid",
    "evaluate_image_encoder",
    "evaluate_image_encoder_grid",
    "evaluate_text_encoder",
    "evaluate_text_encoder_grid",
    "evaluate_vae",
    "evaluate_vae_decode",
    "evaluate_vae_encode",
    "evaluate_vae_grid",
    "image_encoder_evaluator",
    "image_encoder_tree",
    "resolve_num_images",
    "resolve_text_workload",
    "resolve_vae_workload",
    "resolve_workload",
    "text_encoder_evaluator",
    "text_encoder_tree",
    "vae_evaluator",
    "vae_tree",
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


def _evaluate_grid(
    tree: ModuleTree,
    evaluator: Callable[[], Evaluator],
    workload: Workload,
    values: Mapping[str, Any],
    *,
    modules: Sequence[str] | None,
    metrics: Sequence[str] | None,
    validate: bool,
) -> GridResult | ColumnGrid:
    """The grid evaluation shared by every component (see the module docstring)."""
    if not isinstance(validate, bool):
        raise LlmPerfOptError(f"validate: must be True or False, got {validate!r}")
    for name, given in (("modules", modules), ("metrics", metrics)):
        if given is not None and (isinstance(given, str) or not given):
            raise LlmPerfOptError(f"{name}: must be a non-empty list of names, got {given!r}")
    if validate:
        validate_workload_arrays(values)
    lazy = any(hasattr(value, "__dask_graph__") for value in values.values())
    if modules is None and metrics is None:
        if lazy:
            raise LlmPerfOptError(
                "modules: name the modules to evaluate lazily over dask arrays, e.g. modules=["
                + repr(tree.root_id)
                + "]"
            )
        return evaluator().evaluate(workload)
    columns = tuple(
        (module_id, metric) for module_id in (modules or [tree.root_id]) for metric in (metrics or METRICS)
    )
    return compile_columns(tree, columns).evaluate(workload)


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

    Raises for sizes the pipeline rejects, for counts outside
    :data:`~llm_perf_opt.wan2_1.limits.WORKLOAD_LIMITS` (``text_len`` 0 to 512, padded or not),
    and for an unpadded prompt on an image-conditioned variant (both implementations split its
    context at 512 text tokens).
    """
    batch = check_field("batch", batch, name="batch_size")
    steps = check_field("steps", steps, name="num_inference_steps")
    text_len = check_field("text_len", text_len)
    effective = check_frame_count(frames)
    check_frame_size(height, width)
    notes = []
    if effective != frames:
        notes.append(
            f"num_frames {frames} is not 4k+1: the pipeline floors (F-1)//4, so the video has "
            f"{effective} frames ({int(latent_frames(frames))} latent frames)"
        )
    if pad_text:
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
    profile = get_implementation(implementation)
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
    modules: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    validate: bool = True,
    **values: Any,
) -> GridResult | ColumnGrid:
    """Float64 costs of the transformer's modules over arrays of workloads (``batch``, ``frames``,
    ``height``, ``width``, ``text_len``) of any broadcastable shapes.

    Missing fields default to batch 1 and 512 text tokens; ``frames``, ``height`` and ``width`` are
    required. ``modules``, ``metrics``, ``validate``, dask arrays: see the module docstring.
    """
    record = variant if isinstance(variant, WanVariant) else get_variant(variant)
    profile = get_implementation(implementation)
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
    tree = dit_tree(record, profile)
    return _evaluate_grid(
        tree,
        lambda: dit_evaluator(record, profile),
        workload,
        values,
        modules=modules,
        metrics=metrics,
        validate=validate,
    )


# ─── text encoder (umT5-XXL) and image encoder (CLIP ViT-H/14) ──────────────────────────────────

TEXT_ENCODER_PREFIX = "text_encoder"
IMAGE_ENCODER_PREFIX = "image_encoder"
_UNUSED = 1
"""Value of the workload symbols an encoder does not depend on (frames, height, width, steps)."""


@functools.cache
def text_encoder_tree(implementation: Implementation, config: T5EncoderConfig = UMT5_XXL) -> ModuleTree:
    """The module tree of the umT5-XXL text encoder, built once per process and profile."""
    return build_tree(declare_text_encoder(implementation, config), TEXT_ENCODER_PREFIX)


def text_encoder_evaluator(implementation: Implementation, config: T5EncoderConfig = UMT5_XXL) -> Evaluator:
    """The compiled evaluator of :func:`text_encoder_tree`, compiled once per process and profile."""
    return compile_tree(text_encoder_tree(implementation, config))


def resolve_text_workload(*, batch: int, text_len: int, pad_text: bool = True) -> tuple[Workload, list[str]]:
    """Validate a text-encoder workload and return the one the encoder really runs, with notes.

    Padded (the default, as both pipelines tokenize with ``padding="max_length"``), every prompt runs
    at 512 tokens; unpadded, at its own length of 0 to 512 tokens (the one rule for ``text_len``).
    """
    batch = check_field("batch", batch, name="batch_size")
    text_len = check_field("text_len", text_len)
    notes = []
    if pad_text:
        if text_len != PADDED_TEXT_LEN:
            notes.append(
                f"text_len {text_len} is padded to {PADDED_TEXT_LEN} tokens, "
                "as both pipelines pad every prompt"
            )
        text_len = PADDED_TEXT_LEN
    else:
        notes.append(f"text_len {text_len} is used unpadded (an implementation that does not pad the prompt)")
    notes.append(
        f"{batch} prompt(s) of {text_len} tokens; the pipelines encode the negative prompt in a second call"
    )
    workload = Workload(
        batch=batch, frames=_UNUSED, height=_UNUSED, width=_UNUSED, steps=_UNUSED, text_len=text_len
    )
    return workload, notes


@frozen(kw_only=True)
class TextEncoderEvaluation:
    """Exact costs of one forward of the text encoder for one workload.

    Attributes:
        implementation: the implementation profile the bytes follow.
        workload: the workload as run (``batch`` prompts of ``text_len`` tokens; the other symbols unused).
        metrics: module id → metric → exact int, for every module of the tree.
        notes: what was decided about the workload (padding).
    """

    implementation: Implementation
    workload: Workload
    metrics: dict[str, dict[str, int]]
    notes: list[str]


def evaluate_text_encoder(
    *,
    batch: int = 1,
    text_len: int = PADDED_TEXT_LEN,
    pad_text: bool = True,
    implementation: str | Implementation = "official",
) -> TextEncoderEvaluation:
    """Exact integer costs of every module of one forward of umT5-XXL on ``batch`` prompts."""
    profile = get_implementation(implementation)
    workload, notes = resolve_text_workload(batch=batch, text_len=text_len, pad_text=pad_text)
    metrics = text_encoder_evaluator(profile).evaluate_exact(workload)
    return TextEncoderEvaluation(implementation=profile, workload=workload, metrics=metrics, notes=notes)


def evaluate_text_encoder_grid(
    *,
    implementation: str | Implementation = "official",
    modules: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    validate: bool = True,
    **values: Any,
) -> GridResult | ColumnGrid:
    """Float64 costs of the text encoder's modules over arrays of ``batch`` and ``text_len``
    (defaults: batch 1, 512 tokens); ``modules``, ``metrics``, ``validate``: see the module docstring."""
    unknown = set(values) - {"batch", "text_len"}
    if unknown:
        raise LlmPerfOptError(f"{sorted(unknown)[0]}: unknown workload field; accepted: batch, text_len")
    workload = Workload(
        batch=values.get("batch", 1),
        frames=_UNUSED,
        height=_UNUSED,
        width=_UNUSED,
        steps=_UNUSED,
        text_len=values.get("text_len", PADDED_TEXT_LEN),
    )
    profile = get_implementation(implementation)
    return _evaluate_grid(
        text_encoder_tree(profile),
        lambda: text_encoder_evaluator(profile),
        workload,
        values,
        modules=modules,
        metrics=metrics,
        validate=validate,
    )


@functools.cache
def image_encoder_tree(
    num_images: int, implementation: Implementation, config: VisionTransformerConfig = CLIP_VIT_H_14
) -> ModuleTree:
    """The module tree of the CLIP image encoder on ``num_images`` images per sample, built once."""
    return build_tree(declare_image_encoder(num_images, implementation, config), IMAGE_ENCODER_PREFIX)


def image_encoder_evaluator(
    num_images: int, implementation: Implementation, config: VisionTransformerConfig = CLIP_VIT_H_14
) -> Evaluator:
    """The compiled evaluator of :func:`image_encoder_tree`, compiled once per process."""
    return compile_tree(image_encoder_tree(num_images, implementation, config))


def resolve_num_images(images: str | WanVariant | int) -> int:
    """Conditioning images per sample: a variant's (I2V 1, FLF2V 2) or a count ≥ 1.

    A text-only variant is an error: its pipeline does not run the image encoder.
    """
    if isinstance(images, str | WanVariant):
        record = images if isinstance(images, WanVariant) else get_variant(images)
        if not record.num_images:
            raise LlmPerfOptError(
                f"images: {record.model_variant} conditions on no image, so no image encoder runs; "
                "accepted: an image-conditioned variant (i2v, flf2v) or a number of images ≥ 1"
            )
        return record.num_images
    return _positive_int("num_images", images)


@frozen(kw_only=True)
class ImageEncoderEvaluation:
    """Exact costs of one forward of the image encoder for one workload.

    Attributes:
        implementation: the implementation profile (blocks run, dtypes).
        num_images: conditioning images per sample.
        workload: the workload as run (``batch`` samples; the other symbols unused).
        metrics: module id → metric → exact int, for every module of the tree.
        notes: what was decided (images encoded, blocks run).
    """

    implementation: Implementation
    num_images: int
    workload: Workload
    metrics: dict[str, dict[str, int]]
    notes: list[str]


def evaluate_image_encoder(
    images: str | WanVariant | int,
    *,
    batch: int = 1,
    implementation: str | Implementation = "official",
) -> ImageEncoderEvaluation:
    """Exact integer costs of every module of one CLIP forward on ``batch·num_images`` images.

    ``images`` is an image-conditioned variant (I2V: 1 image, FLF2V: 2) or a number of images.
    """
    profile = get_implementation(implementation)
    num_images = resolve_num_images(images)
    batch = check_field("batch", batch, name="batch_size")
    workload = Workload(batch=batch, frames=_UNUSED, height=_UNUSED, width=_UNUSED, steps=_UNUSED, text_len=0)
    tokens = CLIP_VIT_H_14.tokens
    notes = [
        f"{batch * num_images} image(s) of {CLIP_VIT_H_14.image_size}×{CLIP_VIT_H_14.image_size}, "
        f"{tokens} tokens each",
        f"{profile.image_encoder_layers} of {CLIP_VIT_H_14.num_layers} blocks run ({profile.name})",
    ]
    metrics = image_encoder_evaluator(num_images, profile).evaluate_exact(workload)
    return ImageEncoderEvaluation(
        implementation=profile, num_images=num_images, workload=workload, metrics=metrics, notes=notes
    )


def evaluate_image_encoder_grid(
    images: str | WanVariant | int,
    *,
    implementation: str | Implementation = "official",
    modules: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    validate: bool = True,
    **values: Any,
) -> GridResult | ColumnGrid:
    """Float64 costs of the image encoder's modules over an array of ``batch`` (default 1);
    ``modules``, ``metrics``, ``validate``: see the module docstring."""
    unknown = set(values) - {"batch"}
    if unknown:
        raise LlmPerfOptError(f"{sorted(unknown)[0]}: unknown workload field; accepted: batch")
    workload = Workload(
        batch=values.get("batch", 1), frames=_UNUSED, height=_UNUSED, width=_UNUSED, steps=_UNUSED, text_len=0
    )
    num_images, profile = resolve_num_images(images), get_implementation(implementation)
    return _evaluate_grid(
        image_encoder_tree(num_images, profile),
        lambda: image_encoder_evaluator(num_images, profile),
        workload,
        values,
        modules=modules,
        metrics=metrics,
        validate=validate,
    )


# ─── VAE (Wan-VAE) ──────────────────────────────────────────────────────────────────────────────

VAE_PREFIX = "vae"
_VAE_TEXT_LEN = 0
"""Value of the symbols the VAE does not depend on (text_len; steps is 1)."""


@functools.cache
def vae_tree(
    implementation: Implementation, *, encodes: int = 1, decodes: int = 1, config: WanVAEConfig = WAN_VAE
) -> ModuleTree:
    """The module tree of the VAE for ``encodes`` encodes and ``decodes`` decodes per call, built once."""
    return build_tree(
        declare_vae(implementation, encodes=encodes, decodes=decodes, config=config), VAE_PREFIX
    )


def vae_evaluator(
    implementation: Implementation, *, encodes: int = 1, decodes: int = 1, config: WanVAEConfig = WAN_VAE
) -> Evaluator:
    """The compiled evaluator of :func:`vae_tree`, compiled once per process."""
    return compile_tree(vae_tree(implementation, encodes=encodes, decodes=decodes, config=config))


def resolve_vae_workload(*, batch: int, frames: int, height: int, width: int) -> tuple[Workload, list[str]]:
    """Validate a VAE workload (a video of ``frames`` frames at ``height × width``) and return it with
    notes: the effective frame count of a count that is not ``4k + 1``, the latent and the chunks.
    """
    batch = check_field("batch", batch, name="batch_size")
    effective = check_frame_count(frames)
    check_frame_size(height, width)
    latent = int(latent_frames(frames))
    notes = []
    if effective != frames:
        notes.append(
            f"num_frames {frames} is not 4k+1: encode reads only the first {effective} frames and decode "
            f"gives {effective} frames ({latent} latent frames)"
        )
    notes.append(
        f"{latent} chunks per encode (frame 0, then 4 frames each) and per decode (1 latent frame each), "
        f"latent {latent}×{height // 8}×{width // 8}"
    )
    workload = Workload(
        batch=batch, frames=frames, height=height, width=width, steps=1, text_len=_VAE_TEXT_LEN
    )
    return workload, notes


@frozen(kw_only=True)
class VaeEvaluation:
    """Exact costs of some encodes and decodes of the VAE for one workload.

    Attributes:
        implementation: the implementation profile the bytes follow.
        encodes: encodes per evaluation (``vae.encoder`` and ``vae.conv1`` run this often).
        decodes: decodes per evaluation (``vae.conv2`` and ``vae.decoder``).
        workload: the workload as run (``batch`` videos of ``frames`` frames at ``height × width``).
        metrics: module id → metric → exact int, for every module of the tree (the parts that do not
            run have zero work and keep their parameters).
        notes: what was decided about the workload (effective frames, chunks).
    """

    implementation: Implementation
    encodes: int
    decodes: int
    workload: Workload
    metrics: dict[str, dict[str, int]]
    notes: list[str]


def evaluate_vae(
    *,
    frames: int,
    height: int,
    width: int,
    batch: int = 1,
    encodes: int = 1,
    decodes: int = 1,
    implementation: str | Implementation = "official",
) -> VaeEvaluation:
    """Exact integer costs of every module of ``encodes`` encodes and ``decodes`` decodes of ``batch``
    videos of ``frames`` frames at ``height × width``."""
    profile = get_implementation(implementation)
    encodes = _positive_int("encodes", encodes, minimum=0)
    decodes = _positive_int("decodes", decodes, minimum=0)
    workload, notes = resolve_vae_workload(batch=batch, frames=frames, height=height, width=width)
    metrics = vae_evaluator(profile, encodes=encodes, decodes=decodes).evaluate_exact(workload)
    return VaeEvaluation(
        implementation=profile,
        encodes=encodes,
        decodes=decodes,
        workload=workload,
        metrics=metrics,
        notes=notes,
    )


def evaluate_vae_encode(
    *, frames: int, height: int, width: int, batch: int = 1, implementation: str | Implementation = "official"
) -> VaeEvaluation:
    """Exact integer costs of one encode of ``batch`` videos (I2V, FLF2V: the conditioning video)."""
    return evaluate_vae(
        frames=frames,
        height=height,
        width=width,
        batch=batch,
        encodes=1,
        decodes=0,
        implementation=implementation,
    )


def evaluate_vae_decode(
    *, frames: int, height: int, width: int, batch: int = 1, implementation: str | Implementation = "official"
) -> VaeEvaluation:
    """Exact integer costs of one decode of the latents of ``batch`` videos of ``frames`` frames."""
    return evaluate_vae(
        frames=frames,
        height=height,
        width=width,
        batch=batch,
        encodes=0,
        decodes=1,
        implementation=implementation,
    )


def evaluate_vae_grid(
    *,
    encodes: int = 1,
    decodes: int = 1,
    implementation: str | Implementation = "official",
    modules: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    validate: bool = True,
    **values: Any,
) -> GridResult | ColumnGrid:
    """Float64 costs of the VAE's modules over arrays of ``batch`` (default 1), ``frames``,
    ``height`` and ``width`` (required); ``modules``, ``metrics``, ``validate``: see the module docstring.
    """
    profile = get_implementation(implementation)
    encodes = _positive_int("encodes", encodes, minimum=0)
    decodes = _positive_int("decodes", decodes, minimum=0)
    for required in ("frames", "height", "width"):
        if required not in values:
            raise LlmPerfOptError(f"{required}: required for a grid evaluation")
    unknown = set(values) - {"batch", "frames", "height", "width"}
    if unknown:
        raise LlmPerfOptError(
            f"{sorted(unknown)[0]}: unknown workload field; accepted: batch, frames, height, width"
        )
    workload = Workload(
        batch=values.get("batch", 1),
        frames=values["frames"],
        height=values["height"],
        width=values["width"],
        steps=1,
        text_len=_VAE_TEXT_LEN,
    )
    return _evaluate_grid(
        vae_tree(profile, encodes=encodes, decodes=decodes),
        lambda: vae_evaluator(profile, encodes=encodes, decodes=decodes),
        workload,
        values,
        modules=modules,
        metrics=metrics,
        validate=validate,
    )
