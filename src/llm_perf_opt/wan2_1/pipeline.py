"""The whole generation of one video batch: every stage, with the calls the real loop makes.

Per task, as the official ``generate()`` runs it (``wan/text2video.py``, ``wan/image2video.py``,
``wan/first_last_frame2video.py``) and diffusers alike:

- the text encoder runs twice (prompt and negative prompt, each padded to 512 tokens);
- the image encoder runs once for I2V (one image) and FLF2V (two images);
- the VAE encodes the conditioning video once for I2V and FLF2V;
- the diffusion transformer runs ``2·S`` times with classifier-free guidance (two separate
  forwards per step, conditional and unconditional), ``S`` times without;
- the guidance combination runs once per guided step, the scheduler step once per step, on the latent;
- the VAE decodes once.

The what-ifs of :mod:`llm_perf_opt.symbolic.whatif` are in every tree: the self-attention cores
cost ρ of their dense work, the transformer runs ``dit_forwards`` times (``S − k`` computed steps, a
second forward on the first ``⌊τ·S⌋`` of them) and the guidance combination runs ``⌊τ·S⌋`` times; at
ρ = 1, k = 0, τ = 1 every figure is the dense, uncached, fully guided run's. A sparse-attention
pattern adds its overhead; a step-cache method adds a ``step_cache`` module (its residual store and
reuse, and its per-forward check).

The root's children are the stages, each keeping its own id prefix (``diffusion.…``), so a
pipeline tree's ids equal the component trees' ids.
"""

from __future__ import annotations

import functools
from typing import Final

import attrs
import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.dtypes import FP32
from llm_perf_opt.symbolic.module import Module, ModuleTree, Repeated, build_tree
from llm_perf_opt.symbolic.primitives import OpCall, add, mul
from llm_perf_opt.symbolic.symbols import B, S, reused_steps
from llm_perf_opt.symbolic.whatif import dit_forwards, guided_steps, with_attention_density
from llm_perf_opt.wan2_1.dit import declare_dit
from llm_perf_opt.wan2_1.geometry import latent_frames, latent_height, latent_width, video_tokens
from llm_perf_opt.wan2_1.image_encoder import declare_image_encoder
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.text_encoder import declare_text_encoder
from llm_perf_opt.wan2_1.vae import declare_vae
from llm_perf_opt.wan2_1.variants import WanVariant

__all__ = [
    "PIPELINE_ID",
    "SCHEDULER_UPDATES",
    "STEP_CACHES",
    "TASK_CLASSES",
    "TEXT_ENCODER_CALLS",
    "StepCache",
    "cached_residual_bytes",
    "declare_pipeline",
    "dit_calls",
    "guidance_ops",
    "pipeline_key",
    "pipeline_tree",
    "scheduler_module",
    "sparse_dit",
    "step_cache_module",
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
    """Forwards of the diffusion transformer per video: two per computed, guided step, one per
    computed step without guidance (``2·S`` and ``S`` at k = 0, τ = 1;
    :func:`~llm_perf_opt.symbolic.whatif.dit_forwards`)."""
    return dit_forwards(guidance=guidance)


SELF_ATTENTION_CLASS: Final = "WanSelfAttention"
"""The module whose attention core a sparse-attention method replaces (self-attention over the video
tokens; the cross-attention to the text and image tokens stays dense)."""


def _is_self_attention(module: Module) -> bool:
    return module.class_name == SELF_ATTENTION_CLASS


def sparse_dit(dit: Module, pattern: str = "ideal") -> Module:
    """A transformer declaration whose self-attention cores compute ρ of their scores under
    ``pattern`` (:data:`~llm_perf_opt.symbolic.whatif.SPARSE_PATTERNS`)."""
    result: Module = with_attention_density(dit, pattern, where=_is_self_attention)
    return result


@attrs.frozen(kw_only=True)
class StepCache:
    """A step-cache method: what it computes on every forward to decide, and where it comes from.

    Attributes:
        name: the method's name.
        class_name: the class of its reference implementation.
        check_passes: element-wise passes over the timestep modulation ``e0`` (B·6·dim fp32) on every
            forward to decide whether to reuse (TeaCache's relative L1 distance: a difference and a
            reduction); 0 when the decision reads precomputed per-step figures (MagCache).
        source: the implementation the figures are read from.
    """

    name: str
    class_name: str
    check_passes: int
    source: str


STEP_CACHES: Final = {
    cache.name: cache
    for cache in (
        StepCache(
            name="teacache",
            class_name="TeaCache",
            check_passes=2,
            source=(
                "ali-vilab/TeaCache TeaCache4Wan2.1/teacache_generate.py: relative L1 of the modulated "
                "timestep input, a polynomial rescale; previous_residual = x − ori_x after the blocks, "
                "x += previous_residual when skipped, per cond and uncond branch"
            ),
        ),
        StepCache(
            name="magcache",
            class_name="MagCache",
            check_passes=0,
            source=(
                "Zehong-Ma/MagCache (Wan2.1): skips by precomputed per-step magnitude ratios (scalar "
                "arithmetic); the residual is stored and reused as in TeaCache"
            ),
        ),
    )
}
"""The step caches whose cost is declared (FBCache runs the first block of a reused forward: not
declared; its reuse is counted as a whole skipped forward)."""


def _step_cache(name: str) -> StepCache:
    try:
        return STEP_CACHES[name]
    except KeyError:
        raise LlmPerfOptError(
            f"step_cache: unknown step cache {name!r}, expected one of {', '.join(STEP_CACHES)}"
        ) from None


def step_cache_module(
    variant: WanVariant, implementation: Implementation, name: str, *, guidance: bool
) -> Module:
    """The step cache ``name`` of a run: on every computed forward it stores the blocks' residual
    ``x − ori_x``, on every reused one it adds it back (B·tokens·dim at the residual stream's dtype),
    and on every forward it runs its check."""
    cache = _step_cache(name)
    stream = implementation.stream_dtype
    residual = B * video_tokens() * variant.dim
    computed = dit_forwards(guidance=guidance)
    every = computed.subs(reused_steps, 0)
    children = [
        Module(
            name="store_residual",
            class_name="Residual",
            stage="diffusion",
            ops=(add(residual, dtype=stream),),  # x − ori_x
            calls=computed,
        ),
        Module(
            name="apply_residual",
            class_name="Residual",
            stage="diffusion",
            ops=(add(residual, dtype=stream),),  # x + previous_residual
            calls=every - computed,
        ),
    ]
    if cache.check_passes:
        e0 = B * 6 * variant.dim  # the timestep modulation e0:[B, 6, dim] in fp32
        children.append(
            Module(
                name="check",
                class_name="RelativeL1",
                stage="diffusion",
                ops=tuple(add(e0, dtype=FP32) for _ in range(cache.check_passes)),
                calls=every,
            )
        )
    return Module(
        name="step_cache",
        class_name=cache.class_name,
        stage="diffusion",
        params={"method": cache.name, "source": cache.source},
        children=tuple(children),
    )


def cached_residual_bytes(
    variant: WanVariant, implementation: Implementation, *, guidance: bool, tokens: sympy.Expr | None = None
) -> sympy.Expr:
    """Bytes a step cache keeps resident during sampling: one residual ``x − ori_x`` per guidance
    branch (cond and uncond with guidance), B·tokens·dim at the residual stream's dtype; ``tokens``
    are the video tokens a device holds (all of them by default)."""
    branches = 2 if guidance else 1
    held = video_tokens() if tokens is None else tokens
    return branches * B * held * variant.dim * implementation.stream_dtype.size_bytes


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
    """``uncond + g·(cond − uncond)`` on a latent of ``latent_numel`` elements, once per guided step
    (``⌊τ·S⌋``: every step at τ = 1), in fp32."""
    numel = guided_steps() * latent_numel
    return (
        add(numel, dtype=FP32),  # cond − uncond
        mul(numel, dtype=FP32, other_numel=1),  # ·g
        add(numel, dtype=FP32),  # + uncond
    )


@functools.cache
def declare_pipeline(
    variant: WanVariant,
    implementation: Implementation,
    *,
    guidance: bool = True,
    sparse_attention: str = "ideal",
    step_cache: str | None = None,
) -> Module:
    """Every stage of generating ``B`` videos with ``variant``, as ``implementation`` runs them, with
    the sparse-attention pattern's overhead and the step cache's module when one is named."""
    children: list[Module | Repeated] = [
        attrs.evolve(declare_text_encoder(implementation), calls=TEXT_ENCODER_CALLS),
    ]
    if variant.num_images:
        children.append(declare_image_encoder(variant.num_images, implementation))
    children += [
        declare_vae(implementation, encodes=1 if variant.num_images else 0, decodes=1),
        attrs.evolve(
            sparse_dit(declare_dit(variant, implementation), sparse_attention),
            calls=dit_calls(guidance=guidance),
        ),
    ]
    if step_cache is not None:
        children.append(step_cache_module(variant, implementation, step_cache, guidance=guidance))
    children.append(scheduler_module(_latent_numel(variant)))
    return Module(
        name=PIPELINE_ID,
        class_name=TASK_CLASSES[variant.model_type],
        stage="other",
        params={
            "task": variant.official_task,
            "guidance": guidance,
            "sparse_attention": sparse_attention,
            "step_cache": step_cache,
        },
        children=tuple(children),
        ops=guidance_ops(_latent_numel(variant)) if guidance else (),
    )


@functools.cache
def pipeline_tree(
    variant: WanVariant,
    implementation: Implementation,
    guidance: bool = True,
    sparse_attention: str = "ideal",
    step_cache: str | None = None,
) -> ModuleTree:
    """The module tree of a whole run, ids as the components' (``text_encoder…``, ``diffusion…``),
    built once per process."""
    declaration = declare_pipeline(
        variant, implementation, guidance=guidance, sparse_attention=sparse_attention, step_cache=step_cache
    )
    return build_tree(declaration, PIPELINE_ID, bare_children=True)


def pipeline_key(
    variant: WanVariant,
    implementation: Implementation,
    guidance: bool = True,
    sparse_attention: str = "ideal",
    step_cache: str | None = None,
) -> str:
    """What determines :func:`pipeline_tree` besides the package's code (a disk-cache key)."""
    return f"wan2.1 pipeline|{variant!r}|{implementation!r}|{guidance}|{sparse_attention}|{step_cache}"
