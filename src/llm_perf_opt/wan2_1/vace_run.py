"""How Wan2.1 VACE runs on devices: Wan2.1's run rules on the VACE pipeline tree.

``WanVace`` (``wan/vace.py`` of Wan-Video/Wan2.1) is a ``WanT2V``: ``generate.py`` places, offloads
and splits it as Wan2.1's text-to-video (umT5 moved in and out, the transformer resident from the
start and moved out after sampling with ``--offload_model``, Ulysses/ring and FSDP over the
``VaceWanModel`` whose blocks include the VACE blocks). So :data:`VACE` builds a Wan2.1 deployment
of the base transformer record and applies :data:`~llm_perf_opt.wan2_1.run.WAN2_1`'s schedule,
stages and memory to the VACE tree (control video encoded twice, reference frames in front of the
latent). The run's reference-image count is the variant record's ``reference_images``.

Approximations on top of Wan2.1's: the sequence-parallel collectives and the residual stream are
taken at the video's tokens without the reference frames (2 of 21 latent frames at the default run),
and the memory of the two control-video encodes is not a phase of its own (the VAE decode's peak of
the same size is). FSDP of the VACE transformer (``--dit_fsdp``) is not modelled and is an error:
its blocks are not one repeated unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs
import sympy
from attrs import frozen

from llm_perf_opt.deployment.schedule import RunMemory, Schedule
from llm_perf_opt.deployment.value import Deployment
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.wan2_1.geometry import SIZE_MULTIPLE, VAE_TEMPORAL_STRIDE
from llm_perf_opt.wan2_1.run import STAGES, WAN2_1, check_no_whatif_methods
from llm_perf_opt.wan2_1.vace import VaceVariant, get_vace_variant
from llm_perf_opt.wan2_1.vace_pipeline import pipeline_tree

__all__ = ["VACE", "VaceFamily"]


@frozen(eq=False)
class VaceFamily:
    """Wan2.1 VACE's run rules (see the module docstring); :data:`VACE` is the one instance."""

    name: str = "wan2.1-vace"
    stages: tuple[str, ...] = STAGES
    frame_stride: int = VAE_TEMPORAL_STRIDE
    size_multiple: int = SIZE_MULTIPLE

    def deployment(
        self, variant: str | VaceVariant, *, reference_images: int | None = None, **options: Any
    ) -> Deployment:
        """A validated deployment with ``generate.py``'s defaults (Wan2.1's builder, ``options`` as
        there); ``reference_images`` defaults to the README command's."""
        record = variant if isinstance(variant, VaceVariant) else get_vace_variant(variant)
        if reference_images is not None:
            if (
                isinstance(reference_images, bool)
                or not isinstance(reference_images, int)
                or reference_images < 0
            ):
                raise LlmPerfOptError(f"reference_images: must be an integer ≥ 0, got {reference_images!r}")
            record = attrs.evolve(record, reference_images=reference_images)
        base = WAN2_1.deployment(record.transformer, **options)
        return attrs.evolve(base, family=self, variant=record)

    def _base(self, deployment: Deployment) -> Deployment:
        """The same deployment of the base transformer under Wan2.1's rules."""
        variant = deployment.variant
        if not isinstance(variant, VaceVariant):
            raise LlmPerfOptError(f"variant: expected a VACE variant record, got {variant!r}")
        return attrs.evolve(deployment, family=WAN2_1, variant=variant.transformer)

    def check(self, deployment: Deployment) -> None:
        self._base(deployment)
        check_no_whatif_methods(deployment)
        if deployment.parallelism.fsdp:
            raise LlmPerfOptError(
                "fsdp: the VACE transformer's blocks differ (hinted and plain ones, and the VACE "
                "blocks), so its FSDP units are not modelled; got fsdp=True (accepted: False, e.g. "
                "--no-fsdp with Ulysses or ring)"
            )

    def pipeline_tree(self, deployment: Deployment) -> ModuleTree:
        variant: VaceVariant = deployment.variant
        return pipeline_tree(
            variant, deployment.implementation, deployment.guidance, variant.reference_images
        )

    def tree_key(self, deployment: Deployment) -> str:
        variant: VaceVariant = deployment.variant
        return (
            f"wan2.1 vace pipeline|{variant!r}|{deployment.implementation!r}|{deployment.guidance}|"
            f"{variant.reference_images}"
        )

    def describe(self, deployment: Deployment) -> str:
        images = deployment.variant.reference_images
        return f"{WAN2_1.describe(self._base(deployment))}, {images} reference images"

    def schedule(self, tree: ModuleTree, deployment: Deployment) -> Schedule:
        return WAN2_1.schedule(tree, self._base(deployment))

    def stage_seconds(
        self, seconds: Mapping[str, sympy.Expr], own: Mapping[str, sympy.Expr]
    ) -> dict[str, sympy.Expr]:
        return WAN2_1.stage_seconds(seconds, own)

    def memory(self, tree: ModuleTree, deployment: Deployment) -> RunMemory:
        return WAN2_1.memory(tree, self._base(deployment))


VACE: Final = VaceFamily()
"""Wan2.1 VACE's run rules."""
