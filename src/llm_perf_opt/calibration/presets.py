"""Predicted time per denoising step of every stack preset, as the documentation shows it.

The table (:func:`preset_step_table`) runs each preset of :data:`~llm_perf_opt.deployment.stacks.STACK_NAMES`
with its own defaults for the device and GPU count (:func:`~llm_perf_opt.models.build_deployment`
with ``stack=``) under the shipped, fitted efficiency factors, and reports the transformer stage
over the steps: the seconds of one step's forwards (two with guidance). ``docs/stacks.md`` holds
its output for I2V-14B-480P (81 frames, 480×832, 40 steps, guidance) on one and eight H100s, and a
test checks the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from attrs import frozen

from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.stacks import STACK_NAMES
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, EfficiencyTable
from llm_perf_opt.models import build_deployment
from llm_perf_opt.symbolic.symbols import Workload

__all__ = ["DOCUMENTED", "PresetStep", "StepQuery", "preset_step_table", "preset_steps"]


@frozen(kw_only=True)
class StepQuery:
    """What the table predicts: a variant, a video, the steps, guidance, a device and GPU counts."""

    variant: str = "I2V-14B-480P"
    frames: int = 81
    height: int = 480
    width: int = 832
    steps: int = 40
    guidance: bool = True
    device: str = "h100-sxm"
    gpu_counts: tuple[int, ...] = (1, 8)

    @property
    def workload(self) -> Workload:
        return Workload(
            batch=1, frames=self.frames, height=self.height, width=self.width, steps=self.steps, text_len=512
        )


DOCUMENTED: Final = StepQuery()
"""The query ``docs/stacks.md`` shows."""


@frozen(kw_only=True)
class PresetStep:
    """One preset on one GPU count.

    Attributes:
        stack: the preset.
        gpus: the GPU count.
        seconds_per_step: the transformer's seconds per denoising step.
        setup: the deployment in words.
    """

    stack: str
    gpus: int
    seconds_per_step: float
    setup: str


def preset_steps(
    query: StepQuery = DOCUMENTED,
    stacks: Sequence[str] = STACK_NAMES,
    efficiencies: EfficiencyTable = EFFICIENCIES,
) -> tuple[PresetStep, ...]:
    """Every preset's predicted seconds per step on each GPU count of ``query``."""
    found = []
    for stack in stacks:
        for gpus in query.gpu_counts:
            deployment = build_deployment(
                query.variant,
                stack=stack,
                accelerator=query.device,
                gpus=gpus,
                guidance=query.guidance,
                efficiencies=efficiencies,
            )
            model = run_model(deployment)
            value = model.evaluate(query.workload, names=("stage.diffusion",))["stage.diffusion"]
            found.append(
                PresetStep(
                    stack=stack,
                    gpus=gpus,
                    seconds_per_step=float(value) / query.steps,
                    setup=deployment.flags,
                )
            )
    return tuple(found)


def preset_step_table(query: StepQuery = DOCUMENTED, stacks: Sequence[str] = STACK_NAMES) -> str:
    """The Markdown table of :func:`preset_steps`: one row per preset, the seconds per step on
    each GPU count, the speed-up and the setups."""
    steps = preset_steps(query, stacks)
    counts = query.gpu_counts
    header = ["preset", *(f"{n}× s/step" for n in counts)]
    if len(counts) > 1:
        header.append(f"{counts[-1]}× speed-up")
    header += [f"setup on {n}" for n in counts]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for stack in stacks:
        row = {step.gpus: step for step in steps if step.stack == stack}
        cells = [f"`{stack}`", *(f"{row[n].seconds_per_step:.2f}" for n in counts)]
        if len(counts) > 1:
            cells.append(f"{row[counts[0]].seconds_per_step / row[counts[-1]].seconds_per_step:.1f}×")
        cells += [row[n].setup for n in counts]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
