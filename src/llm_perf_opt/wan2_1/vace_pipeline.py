"""A whole Wan2.1 VACE run (``WanVace.generate`` of ``wan/vace.py``), and its workload entry point.

Stages, ids as the components': ``text_encoder`` (prompt and negative prompt), ``vae`` (the control
video encoded twice — its inactive ``frames·(1 − mask)`` and reactive ``frames·mask`` parts — and the
result decoded once, reference frames trimmed), ``diffusion`` (the ``VaceWanModel``, ``2·S`` forwards
with guidance), ``scheduler``.

**Not declared:** the VAE encodes of the reference images (one single-frame encode per image, each a
small fraction of one video encode): :func:`undeclared_work` says so for ``R > 0``. The mask folding
(reshape and nearest interpolation) has no FLOPs and is not declared either.

The surface a report or the time model needs: :data:`~llm_perf_opt.wan2_1.vace.VACE_VARIANTS`,
:func:`~llm_perf_opt.wan2_1.vace.get_vace_variant`, :func:`pipeline_tree`, :func:`resolve_workload`,
:func:`default_profile`.
"""

from __future__ import annotations

import functools
from typing import Final

import attrs
import sympy
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.module import Module, ModuleTree, build_tree
from llm_perf_opt.symbolic.symbols import B, Workload
from llm_perf_opt.wan2_1.evaluate import resolve_workload as resolve_wan2_1_workload
from llm_perf_opt.wan2_1.geometry import latent_frames, latent_height, latent_width
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.pipeline import TEXT_ENCODER_CALLS, dit_calls, guidance_ops, scheduler_module
from llm_perf_opt.wan2_1.text_encoder import declare_text_encoder
from llm_perf_opt.wan2_1.vace import VaceVariant, declare_vace_dit, with_reference_frames
from llm_perf_opt.wan2_1.vae import declare_vae

__all__ = [
    "CONTROL_VIDEO_ENCODES",
    "PIPELINE_ID",
    "VaceProfile",
    "declare_vace_pipeline",
    "default_profile",
    "pipeline_tree",
    "resolve_workload",
    "undeclared_work",
]

PIPELINE_ID: Final = "pipeline"
CONTROL_VIDEO_ENCODES: Final = 2
"""``vace_encode_frames`` with a mask encodes the inactive and the reactive video separately."""


@frozen(kw_only=True)
class VaceProfile:
    """The official default run of a VACE variant (its README command)."""

    frames: int
    height: int
    width: int
    steps: int
    guidance: bool
    guide_scale: float
    reference_images: int


def default_profile(variant: VaceVariant) -> VaceProfile:
    """Frames, size, steps, guidance and reference images of the README command."""
    width, height = variant.default_width_height
    return VaceProfile(
        frames=variant.frame_num,
        height=height,
        width=width,
        steps=variant.sample_steps,
        guidance=True,
        guide_scale=variant.sample_guide_scale,
        reference_images=variant.reference_images,
    )


def _count(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LlmPerfOptError(f"{field}: must be an integer ≥ {minimum}, got {value!r}")
    return value


def resolve_workload(
    variant: VaceVariant,
    *,
    control_video: bool,
    mask: bool,
    reference_images: int,
    batch: int = 1,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    steps: int | None = None,
) -> tuple[Workload, list[str]]:
    """Validate a VACE request and return the workload with notes.

    The official command needs a control video and a mask, or, without either, builds them (a zero
    video and an all-ones mask) — but only with reference images to condition on: a request with a
    mask but no control video, or with nothing at all, is an error, as is a negative image count.
    """
    reference_images = _count("reference_images", reference_images, 0)
    if mask and not control_video:
        raise LlmPerfOptError("src_video: a mask (src_mask) needs the control video it masks; got none")
    if not control_video and not reference_images:
        raise LlmPerfOptError(
            "src_video: VACE needs a control video or reference images (src_ref_images); got neither"
        )
    profile = default_profile(variant)
    workload, notes = resolve_wan2_1_workload(
        variant.transformer,
        batch=batch,
        frames=profile.frames if frames is None else frames,
        height=profile.height if height is None else height,
        width=profile.width if width is None else width,
        steps=profile.steps if steps is None else steps,
    )
    if not control_video:
        notes.append("no control video: the pipeline encodes a zero video under an all-ones mask")
    if reference_images:
        notes.append(
            f"{reference_images} reference images: {reference_images} more latent frames in the transformer; "
            "their own VAE encodes are not counted"
        )
    return workload, notes


def undeclared_work(reference_images: int) -> tuple[str, ...]:
    """What the run does that the tree does not count."""
    return ("vae encodes of the reference images",) if reference_images else ()


def _latent_numel(variant: VaceVariant) -> sympy.Expr:
    return B * variant.transformer.z_dim * latent_frames() * latent_height() * latent_width()


@functools.cache
def declare_vace_pipeline(
    variant: VaceVariant, implementation: Implementation, reference_images: int, *, guidance: bool = True
) -> Module:
    """Every declared stage of one VACE run of ``B`` videos with ``reference_images`` images."""
    numel = _latent_numel(variant)
    # the scheduler and the guidance run on the latent with the reference frames in front
    scheduler = with_reference_frames(scheduler_module(numel), reference_images)
    root = Module(
        name=PIPELINE_ID,
        class_name="WanVace",
        stage="other",
        params={"task": variant.transformer.official_task, "guidance": guidance},
        ops=guidance_ops(numel) if guidance else (),
    )
    guided = with_reference_frames(root, reference_images)
    return attrs.evolve(
        guided,
        children=(
            attrs.evolve(declare_text_encoder(implementation), calls=TEXT_ENCODER_CALLS),
            declare_vae(implementation, encodes=CONTROL_VIDEO_ENCODES, decodes=1),
            attrs.evolve(
                declare_vace_dit(variant, implementation, reference_images),
                calls=dit_calls(guidance=guidance),
            ),
            scheduler,
        ),
    )


@functools.cache
def pipeline_tree(
    variant: VaceVariant, implementation: Implementation, guidance: bool = True, reference_images: int = 0
) -> ModuleTree:
    """The module tree of a whole VACE run, ids as the components', built once per process."""
    return build_tree(
        declare_vace_pipeline(variant, implementation, reference_images, guidance=guidance),
        PIPELINE_ID,
        bare_children=True,
    )
