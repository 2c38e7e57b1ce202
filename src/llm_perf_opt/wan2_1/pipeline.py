"""The whole generation of one video batch: every stage, with the calls the real loop makes.

Per task, as the official ``generate()`` runs it (``wan/text2video.py``, ``wan/image2video.py``,
``wan/first_last_frame2video.py``) and diffusers alike:

- the text encoder runs twice (prompt and negative prompt, each padded to 512 tokens);
- the image encoder runs once for I2V (one image) and FLF2V (two images);
- the VAE encodes the conditioning video once for I2V and FLF2V;
- the diffusion transformer runs ``2·S`` times with classifier-free guidance (two separate
  forwards per step, conditional and unconditional), ``S`` times without;
- the guidance combination and the scheduler step run once per step on the latent;
- the VAE decodes once.

The root's children are the stages, each keeping its own id prefix (``diffusion.…``), so a
pipeline tree's ids equal the component trees' ids.
"""

from __future__ import annotations

import functools
from typing import Final

import attrs
import sympy

from llm_perf_opt.symbolic.dtypes import FP32
from llm_perf_opt.symbolic.module import Module, ModuleTree, Repeated, build_tree
from llm_perf_opt.symbolic.primitives import OpCall, add, mul
from llm_perf_opt.symbolic.symbols import B, S
from llm_perf_opt.wan2_1.dit import declare_dit
from llm_perf_opt.wan2_1.geometry import latent_frames, latent_height, latent_width
from llm_perf_opt.wan2_1.image_encoder import declare_image_encoder
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.text_encoder import declare_text_encoder
from llm_perf_opt.wan2_1.vae import declare_vae
from llm_perf_opt.wan2_1.variants import WanVariant

__all__ = [
    "PIPELINE_ID",
    "SCHEDULER_UPDATES",
    "TASK_CLASSES",
    "TEXT_ENCODER_CALLS",
    "declare_pipeline",
    "dit_calls",
    "guidance_ops",
    "pipeline_key",
    "pipeline_tree",
    "scheduler_module",
]

PIPELINE_ID: Final = "pipeline"
TASK_CLASSES: Final = {"t2v": "WanT2V", "i2v": "WanI2V", "flf2v": "WanFLF2V"}
"""The official pipeline class of each model type (``wan/text2video.py`` …)."""

TEXT_ENCODER_CALLS: Final = 2
"""The prompt and the negative prompt, each encoded by its own call (both padded to 512 tokens)."""

SCHEDULER_UPDATES: Final = 4
"""Element-wise multiply-adds one UniPC step makes on the latent (model-output conversion,
corrector and predictor of order 2). An approximation: the exact count depends on the step's order."""


def dit_calls(*, guidance: bool) -> sympy.Expr:
    """Forwards of the diffusion transformer per video: two per step with guidance, one without."""
    return 2 * S if guidance else S


def _latent_numel(variant: WanVariant) -> sympy.Expr:
    return B * variant.z_dim * latent_frames() * latent_height() * latent_width()


def scheduler_module(latent_numel: sympy.Expr, **params: object) -> Module:
    """``FlowUniPCMultistepScheduler.step`` once per step, in fp32 on a latent of ``latent_numel``
    elements; ``params`` add to its constructor parameters (Wan2.2's ``shift``)."""
    ops: list[OpCall] = []
    for _ in range(SCHEDULER_UPDATES):
        ops += [mul(latent_numel, dtype=FP32, other_numel=1), add(latent_numel, dtype=FP32)]
    return Module(
        name="scheduler",
        class_name="FlowUniPCMultistepScheduler",
        stage="other",
        params={"solver_order": 2, "prediction_type": "flow_prediction", **params},
        ops=tuple(ops),
        calls=S,
    )


def guidance_ops(latent_numel: sympy.Expr) -> tuple[OpCall, ...]:
    """``uncond + g·(cond − uncond)`` on a latent of ``latent_numel`` elements, once per step (fp32)."""
    return (
        add(S * latent_numel, dtype=FP32),  # cond − uncond
        mul(S * latent_numel, dtype=FP32, other_numel=1),  # ·g
        add(S * latent_numel, dtype=FP32),  # + uncond
    )


@functools.cache
def declare_pipeline(variant: WanVariant, implementation: Implementation, *, guidance: bool = True) -> Module:
    """Every stage of generating ``B`` videos with ``variant``, as ``implementation`` runs them."""
    children: list[Module | Repeated] = [
        attrs.evolve(declare_text_encoder(implementation), calls=TEXT_ENCODER_CALLS),
    ]
    if variant.num_images:
        children.append(declare_image_encoder(variant.num_images, implementation))
    children += [
        declare_vae(implementation, encodes=1 if variant.num_images else 0, decodes=1),
        attrs.evolve(declare_dit(variant, implementation), calls=dit_calls(guidance=guidance)),
        scheduler_module(_latent_numel(variant)),
    ]
    return Module(
        name=PIPELINE_ID,
        class_name=TASK_CLASSES[variant.model_type],
        stage="other",
        params={"task": variant.official_task, "guidance": guidance},
        children=tuple(children),
        ops=guidance_ops(_latent_numel(variant)) if guidance else (),
    )


@functools.cache
def pipeline_tree(variant: WanVariant, implementation: Implementation, guidance: bool = True) -> ModuleTree:
    """The module tree of a whole run, ids as the components' (``text_encoder…``, ``diffusion…``),
    built once per process."""
    return build_tree(
        declare_pipeline(variant, implementation, guidance=guidance), PIPELINE_ID, bare_children=True
    )


def pipeline_key(variant: WanVariant, implementation: Implementation, guidance: bool = True) -> str:
    """What determines :func:`pipeline_tree` besides the package's code (a disk-cache key)."""
    return f"wan2.1 pipeline|{variant!r}|{implementation!r}|{guidance}"
