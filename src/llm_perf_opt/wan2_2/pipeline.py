"""The whole generation of one Wan2.2 video batch: every stage, with the calls the real loop makes.

As the official ``generate()`` runs it (``wan/text2video.py`` ``WanT2V``, ``wan/image2video.py``
``WanI2V``, ``wan/textimage2video.py`` ``WanTI2V`` of Wan-Video/Wan2.2):

- the text encoder (umT5-XXL, as Wan2.1's) runs twice: prompt and negative prompt;
- no image encoder: I2V-A14B conditions through the VAE latent of the image (encoded once, with the
  zero frames after it, as Wan2.1's I2V); TI2V-5B puts the image's latent in the first latent frame;
- A14B: two experts of the same 14B architecture, ``high_noise_model`` for the first
  ``high(S)`` steps and ``low_noise_model`` for the other ``low(S)`` (:mod:`.schedule`), each two
  forwards per step with classifier-free guidance (conditional, unconditional), one without;
- TI2V-5B: one 5B transformer, ``2·S`` or ``S`` forwards;
- the guidance combination and the scheduler step once per step on the latent;
- the VAE decodes once: Wan2.1's VAE for A14B, the Wan2.2 VAE (4 × 16 × 16, 48 channels,
  :mod:`.vae`) for TI2V-5B.

TI2V-5B runs text-to-video by default (the README command); with ``image=True`` it also encodes its
input image, one frame, once.
"""

from __future__ import annotations

import functools
from typing import Final

import attrs
import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.module import Module, ModuleTree, Repeated, build_tree
from llm_perf_opt.symbolic.symbols import B
from llm_perf_opt.symbolic.whatif import dit_forwards
from llm_perf_opt.wan2_1.dit import declare_dit
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.pipeline import TEXT_ENCODER_CALLS, guidance_ops, scheduler_module, sparse_dit
from llm_perf_opt.wan2_1.text_encoder import declare_text_encoder
from llm_perf_opt.wan2_1.vae import declare_vae
from llm_perf_opt.wan2_2.geometry import latent_shape
from llm_perf_opt.wan2_2.schedule import ExpertSteps, expert_steps
from llm_perf_opt.wan2_2.vae import declare_vae as declare_wan2_2_vae
from llm_perf_opt.wan2_2.variants import Wan22Variant

__all__ = [
    "PIPELINE_ID",
    "TASK_CLASSES",
    "declare_pipeline",
    "dit_calls",
    "expert_split",
    "pipeline_key",
    "pipeline_tree",
    "undeclared_stages",
]

PIPELINE_ID: Final = "pipeline"
TASK_CLASSES: Final = {"t2v": "WanT2V", "i2v": "WanI2V", "ti2v": "WanTI2V"}
"""The official pipeline class of each model type."""


def expert_split(variant: Wan22Variant) -> ExpertSteps | None:
    """Steps of each A14B expert as expressions in ``S`` at the variant's boundary and shift; ``None``
    for a single transformer."""
    if variant.boundary is None:
        return None
    return expert_steps(variant.boundary, variant.sample_shift, variant.num_train_timesteps)


def dit_calls(variant: Wan22Variant, *, guidance: bool) -> dict[str, sympy.Expr]:
    """Forwards per video of each transformer, keyed by its id (``diffusion``, or the two experts):
    two per computed, guided step, one per other computed step
    (:func:`~llm_perf_opt.symbolic.whatif.dit_forwards`); the high-noise expert runs the first steps."""
    split = expert_split(variant)
    if split is None:
        return {"diffusion": dit_forwards(guidance=guidance)}
    high, low = variant.experts or ()
    return {
        high: dit_forwards(guidance=guidance, count=split.high_noise),
        low: dit_forwards(guidance=guidance, first=split.high_noise, count=split.low_noise),
    }


def undeclared_stages(variant: Wan22Variant) -> tuple[str, ...]:
    """Stages the real run has that the tree lacks: none for the Wan2.2 variants (kept so a report can
    ask every family the same question)."""
    return ()


def _latent_numel(variant: Wan22Variant) -> sympy.Expr:
    frames, height, width = latent_shape(variant.transformer)
    return B * variant.transformer.z_dim * frames * height * width


@functools.cache
def declare_pipeline(
    variant: Wan22Variant, implementation: Implementation, *, guidance: bool = True, image: bool = False
) -> Module:
    """Every stage of generating ``B`` videos with ``variant``, as ``implementation`` runs them;
    ``image`` runs TI2V-5B in image-to-video mode (I2V-A14B always takes an image)."""
    if image and variant.transformer.model_type != "ti2v":
        raise LlmPerfOptError(
            f"image: only ti2v-5b takes an optional input image, got image=True for {variant.model_variant}"
        )
    children: list[Module | Repeated] = [
        attrs.evolve(declare_text_encoder(implementation), calls=TEXT_ENCODER_CALLS),
    ]
    if variant.vae == "wan2.1":
        encodes = 1 if variant.transformer.model_type == "i2v" else 0
        children.append(declare_vae(implementation, encodes=encodes, decodes=1))
    else:
        children.append(
            declare_wan2_2_vae(implementation, encodes=1 if image else 0, decodes=1, encode_image=image)
        )
    dit = sparse_dit(declare_dit(variant.transformer, implementation))
    for name, calls in dit_calls(variant, guidance=guidance).items():
        children.append(attrs.evolve(dit, name=name, calls=calls))
    children.append(scheduler_module(_latent_numel(variant), shift=variant.sample_shift))
    return Module(
        name=PIPELINE_ID,
        class_name=TASK_CLASSES[variant.transformer.model_type],
        stage="other",
        params={
            "task": variant.transformer.official_task,
            "guidance": guidance,
            "boundary": variant.boundary,
            "image": image or variant.transformer.model_type == "i2v",
        },
        children=tuple(children),
        ops=guidance_ops(_latent_numel(variant)) if guidance else (),
    )


@functools.cache
def pipeline_tree(
    variant: Wan22Variant, implementation: Implementation, guidance: bool = True, image: bool = False
) -> ModuleTree:
    """The module tree of a whole run, ids as the components' (``text_encoder…``, ``vae…``,
    ``high_noise_model…`` / ``low_noise_model…`` or ``diffusion…``), built once per process."""
    return build_tree(
        declare_pipeline(variant, implementation, guidance=guidance, image=image),
        PIPELINE_ID,
        bare_children=True,
    )


def pipeline_key(
    variant: Wan22Variant, implementation: Implementation, guidance: bool = True, image: bool = False
) -> str:
    """What determines :func:`pipeline_tree` besides the package's code (a disk-cache key)."""
    return f"wan2.2 pipeline|{variant!r}|{implementation!r}|{guidance}|{image}"
