"""The Wan2.2 family: T2V-A14B and I2V-A14B (two 14B experts), TI2V-5B.

The surface a report, the time model or a command line needs, in one place:

- :data:`VARIANTS`, :func:`get_variant`: the variants as data (transformer record + official sampling);
- :func:`pipeline_tree` ``(variant, implementation, guidance=True)``: the module tree of a whole run,
  stages as children keeping their ids (``text_encoder``, ``vae``, ``high_noise_model`` and
  ``low_noise_model`` or ``diffusion``, ``scheduler``); :func:`undeclared_stages` lists what it lacks;
- :func:`resolve_workload`: a validated :class:`~llm_perf_opt.symbolic.symbols.Workload` and notes,
  missing fields taken from :func:`default_profile`;
- :func:`default_profile`: frames, size, steps, guidance and fps of the official default run;
- :func:`expert_split`: steps of each A14B expert as SymPy expressions in ``steps``;
- :func:`evaluate_dit`, :func:`evaluate_dit_grid`: one transformer forward, exact or over grids;
  :func:`evaluate_vae`: the Wan2.2 VAE, exact.
"""

from __future__ import annotations

from attrs import frozen

from llm_perf_opt.wan2_2.evaluate import evaluate_dit, evaluate_dit_grid, evaluate_vae, resolve_workload
from llm_perf_opt.wan2_2.pipeline import dit_calls, expert_split, pipeline_tree, undeclared_stages
from llm_perf_opt.wan2_2.variants import VARIANTS, Wan22Variant, get_variant

__all__ = [
    "VARIANTS",
    "DefaultProfile",
    "Wan22Variant",
    "default_profile",
    "dit_calls",
    "evaluate_dit",
    "evaluate_dit_grid",
    "evaluate_vae",
    "expert_split",
    "get_variant",
    "pipeline_tree",
    "resolve_workload",
    "undeclared_stages",
]


@frozen(kw_only=True)
class DefaultProfile:
    """The official default run of a variant (its README command with the config's defaults)."""

    frames: int
    height: int
    width: int
    steps: int
    guidance: bool
    guide_scale: tuple[float, float]
    """(low-noise expert, high-noise expert); both halves equal for TI2V-5B."""
    fps: int


def default_profile(variant: str | Wan22Variant) -> DefaultProfile:
    """Frames, size, steps, guidance and fps of the variant's official default run."""
    record = variant if isinstance(variant, Wan22Variant) else get_variant(variant)
    width, height = record.default_width_height
    return DefaultProfile(
        frames=record.frame_num,
        height=height,
        width=width,
        steps=record.sample_steps,
        guidance=True,
        guide_scale=record.sample_guide_scale,
        fps=record.sample_fps,
    )
