"""Sizing queries answered from the formulas: the largest video that fits a time and/or memory
budget on a deployment, and the fewest devices that meet a budget.

Each query evaluates the deployment's compiled engine (:func:`~.engine.run_model`) over every
candidate at once — one numpy call for all frame counts or all resolutions — and returns the largest
candidate such that it and every smaller one fit (time and peak memory per device grow with frames
and resolution, so the next size up is the first that does not fit). The answer carries the figures
at it and at the next size up.

- :func:`largest_frames`: the frame counts the family's VAE produces (``stride·k + 1``,
  :attr:`~.value.ModelFamily.frame_stride`) at a size.
- :func:`largest_resolution`: heights on the family's size grid
  (:attr:`~.value.ModelFamily.size_multiple`) with the width at a fixed aspect ratio, rounded to
  the grid.
- :func:`fewest_devices`: 1, 2, 4, 8 devices (by default), each with the family's default recipe.

The memory budget defaults to the device's memory, and a larger budget is capped at it (and the
answer says so): a run that does not fit cannot run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from attrs import frozen

from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.value import Deployment
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.symbols import Workload

__all__ = [
    "DEVICE_COUNTS",
    "MAX_FRAMES",
    "MAX_HEIGHT",
    "RunFigures",
    "SizingAnswer",
    "check_on_grid",
    "estimate",
    "fewest_devices",
    "largest_frames",
    "largest_resolution",
]

FloatArray = npt.NDArray[np.float64]

MAX_FRAMES: Final = 1001
"""Largest frame count :func:`largest_frames` tries by default (4·250 + 1)."""
MAX_HEIGHT: Final = 2160
"""Largest height :func:`largest_resolution` tries by default."""
DEVICE_COUNTS: Final = (1, 2, 4, 8)
"""Device counts :func:`fewest_devices` tries by default."""
_GB: Final = 1e9


@frozen(kw_only=True)
class RunFigures:
    """Predicted figures of one run.

    Attributes:
        frames, height, width, steps: the video and the sampling steps.
        gpus: devices.
        flags: the setup in the family's words.
        seconds: the run's time.
        peak_memory_gb: peak memory per device, in GB (10⁹ bytes).
        device_memory_gb: the device's memory, in GB.
        fits: whether it meets every budget.
    """

    frames: int
    height: int
    width: int
    steps: int
    gpus: int
    flags: str
    seconds: float
    peak_memory_gb: float
    device_memory_gb: float
    fits: bool

    @property
    def fits_device(self) -> bool:
        """Whether the peak memory per device fits the device's memory."""
        return self.peak_memory_gb <= self.device_memory_gb

    def line(self) -> str:
        """One line: size, devices, time and memory."""
        memory = "" if self.fits_device else f" — DOES NOT FIT the {self.device_memory_gb:.1f} GB device"
        return (
            f"{self.width}x{self.height}x{self.frames}, {self.steps} steps, {self.gpus} GPU(s) "
            f"[{self.flags}]: {self.seconds:.1f} s, {self.peak_memory_gb:.1f} GB per device{memory}"
            f"{'' if self.fits else ' (over budget)'}"
        )


@frozen(kw_only=True)
class SizingAnswer:
    """The answer of a sizing query and the figures around it.

    Attributes:
        question: what was asked, in words.
        answer: the frame count, the height, or the number of devices (0: none fits).
        at_answer: the figures at the answer (``None`` when none fits).
        beyond: the figures of the candidate beyond the answer (``None`` at the search limit).
        limited_by: ``time``, ``memory``, ``time and memory``, or ``search limit``.
        time_budget_s: the time budget (``None``: none).
        memory_budget_gb: the memory budget per device used.
        notes: what was decided (a budget capped at the device's memory).
    """

    question: str
    answer: int
    at_answer: RunFigures | None
    beyond: RunFigures | None
    limited_by: str
    time_budget_s: float | None
    memory_budget_gb: float
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        """The answer and its figures as plain text."""
        budget = "no time budget" if self.time_budget_s is None else f"time ≤ {self.time_budget_s:g} s"
        lines = [
            f"{self.question} ({budget}, memory ≤ {self.memory_budget_gb:.1f} GB per device): {self.answer}"
        ]
        if self.at_answer is not None:
            lines.append(f"  at the answer: {self.at_answer.line()}")
        if self.beyond is not None:
            lines.append(f"  beyond it:     {self.beyond.line()}")
        lines.append(f"  limited by: {self.limited_by}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def _budget(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise LlmPerfOptError(f"{name}: must be a number > 0, got {value!r}")
    return float(value)


def _memory_budget(deployment: Deployment, memory_budget_gb: float | None) -> tuple[float, tuple[str, ...]]:
    device_gb = deployment.accelerator.memory_bytes / _GB
    checked = _budget("memory_budget_gb", memory_budget_gb)
    if checked is None:
        return device_gb, ()
    if checked > device_gb:
        return device_gb, (
            f"memory budget {checked:g} GB is more than the {deployment.accelerator.name}'s "
            f"{device_gb:.1f} GB: capped at the device's memory",
        )
    return checked, ()


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise LlmPerfOptError(f"{name}: must be an integer ≥ 1, got {value!r}")
    return int(value)


def check_on_grid(deployment: Deployment, height: int, width: int) -> None:
    """Reject a size off the family's grid (``size_multiple``), naming the nearest valid values."""
    grid = deployment.family.size_multiple
    for name, value in (("height", height), ("width", width)):
        if value % grid:
            lower = value // grid * grid
            nearest = f"{lower + grid}" if lower == 0 else f"{lower} or {lower + grid}"
            raise LlmPerfOptError(
                f"{name}: must be a multiple of {grid} for {deployment.family.name}, got {value}; "
                f"nearest valid: {nearest}"
            )


def _evaluate(
    deployment: Deployment, frames: npt.ArrayLike, height: npt.ArrayLike, width: npt.ArrayLike, steps: int
) -> tuple[FloatArray, FloatArray]:
    workload = Workload(
        batch=1,
        frames=np.asarray(frames),
        height=np.asarray(height),
        width=np.asarray(width),
        steps=steps,
        text_len=512,
    )
    values = run_model(deployment).evaluate(workload, names=("total", "peak_memory"))
    return values["total"], values["peak_memory"]


def estimate(deployment: Deployment, *, frames: int, height: int, width: int, steps: int) -> RunFigures:
    """The figures of one run of one video (a size off the family's grid is an error)."""
    check_on_grid(deployment, _positive("height", height), _positive("width", width))
    seconds, peak = _evaluate(deployment, frames, height, width, steps)
    return _figures(deployment, frames, height, width, steps, float(seconds), float(peak), fits=True)


def _figures(
    deployment: Deployment,
    frames: int,
    height: int,
    width: int,
    steps: int,
    seconds: float,
    peak: float,
    *,
    fits: bool,
) -> RunFigures:
    return RunFigures(
        frames=frames,
        height=height,
        width=width,
        steps=steps,
        gpus=deployment.gpus,
        flags=deployment.flags,
        seconds=seconds,
        peak_memory_gb=peak / _GB,
        device_memory_gb=deployment.accelerator.memory_bytes / _GB,
        fits=fits,
    )


def _largest(
    candidates: Sequence[tuple[int, int, int]],
    seconds: FloatArray,
    peak: FloatArray,
    time_budget: float | None,
    memory_budget_gb: float,
) -> tuple[int, str]:
    """Index of the last candidate before the first that does not fit (−1: none), and what limits it."""
    in_time = np.ones(seconds.shape, dtype=bool) if time_budget is None else seconds <= time_budget
    in_memory = peak <= memory_budget_gb * _GB
    failing = np.flatnonzero(~(in_time & in_memory))
    if failing.size == 0:
        return len(candidates) - 1, "search limit"
    first = int(failing[0])
    reasons = [name for name, ok in (("time", in_time[first]), ("memory", in_memory[first])) if not ok]
    return first - 1, " and ".join(reasons)


def _search(
    deployment: Deployment,
    question: str,
    candidates: list[tuple[int, int, int]],
    steps: int,
    time_budget_s: float | None,
    memory_budget_gb: float | None,
    answer_of: Callable[[tuple[int, int, int]], int],
) -> SizingAnswer:
    time_budget = _budget("time_budget_s", time_budget_s)
    memory_budget, notes = _memory_budget(deployment, memory_budget_gb)
    columns = np.array(candidates).T
    seconds, peak = _evaluate(deployment, columns[0], columns[1], columns[2], steps)
    index, limited_by = _largest(candidates, seconds, peak, time_budget, memory_budget)

    def figures(i: int, fits: bool) -> RunFigures:
        f, h, w = candidates[i]
        return _figures(deployment, f, h, w, steps, float(seconds[i]), float(peak[i]), fits=fits)

    return SizingAnswer(
        question=question,
        answer=answer_of(candidates[index]) if index >= 0 else 0,
        at_answer=figures(index, True) if index >= 0 else None,
        beyond=figures(index + 1, False) if index + 1 < len(candidates) else None,
        limited_by=limited_by,
        time_budget_s=time_budget,
        memory_budget_gb=memory_budget,
        notes=notes,
    )


def largest_frames(
    deployment: Deployment,
    *,
    height: int,
    width: int,
    steps: int,
    time_budget_s: float | None = None,
    memory_budget_gb: float | None = None,
    max_frames: int = MAX_FRAMES,
) -> SizingAnswer:
    """The most frames (``stride·k + 1``) of ``height × width`` within the budgets on ``deployment``."""
    height, width, steps = _positive("height", height), _positive("width", width), _positive("steps", steps)
    check_on_grid(deployment, height, width)
    stride = deployment.family.frame_stride
    candidates = [(f, height, width) for f in range(1, _positive("max_frames", max_frames) + 1, stride)]
    return _search(
        deployment,
        f"most frames of {width}x{height} on {deployment.gpus} × {deployment.accelerator.name}",
        candidates,
        steps,
        time_budget_s,
        memory_budget_gb,
        lambda c: c[0],
    )


def largest_resolution(
    deployment: Deployment,
    *,
    frames: int,
    steps: int,
    aspect: tuple[int, int] = (16, 9),
    time_budget_s: float | None = None,
    memory_budget_gb: float | None = None,
    max_height: int = MAX_HEIGHT,
) -> SizingAnswer:
    """The largest height on the family's size grid (the width at ``aspect``, rounded to the grid)
    within the budgets."""
    frames, steps = _positive("frames", frames), _positive("steps", steps)
    across, down = _positive("aspect width", aspect[0]), _positive("aspect height", aspect[1])
    candidates = []
    grid = deployment.family.size_multiple
    for height in range(grid, _positive("max_height", max_height) + 1, grid):
        width = max(grid, round(height * across / down / grid) * grid)
        candidates.append((frames, height, width))
    return _search(
        deployment,
        f"largest {across}:{down} resolution of {frames} frames on "
        f"{deployment.gpus} × {deployment.accelerator.name}",
        candidates,
        steps,
        time_budget_s,
        memory_budget_gb,
        lambda c: c[1],
    )


def fewest_devices(
    deployments: Sequence[Deployment],
    *,
    frames: int,
    height: int,
    width: int,
    steps: int,
    time_budget_s: float | None = None,
    memory_budget_gb: float | None = None,
) -> SizingAnswer:
    """The fewest devices among ``deployments`` (one per device count, fewest first) that run the
    video within the budgets."""
    if not deployments:
        raise LlmPerfOptError("deployments: expected at least one device count to try, got none")
    time_budget = _budget("time_budget_s", time_budget_s)
    tried = []
    notes: tuple[str, ...] = ()
    for deployment in deployments:
        figures = estimate(deployment, frames=frames, height=height, width=width, steps=steps)
        memory_budget, notes = _memory_budget(deployment, memory_budget_gb)
        fits = figures.peak_memory_gb <= memory_budget and (
            time_budget is None or figures.seconds <= time_budget
        )
        tried.append((deployment, figures, fits, memory_budget))
    for index, (deployment, figures, fits, memory_budget) in enumerate(tried):
        if fits:
            beyond = tried[index - 1][1] if index > 0 else None
            return SizingAnswer(
                question=f"fewest {deployment.accelerator.name} devices for {width}x{height}x{frames}",
                answer=deployment.gpus,
                at_answer=figures,
                beyond=beyond,
                limited_by="time" if time_budget is not None else "memory",
                time_budget_s=time_budget,
                memory_budget_gb=memory_budget,
                notes=notes,
            )
    last = tried[-1]
    return SizingAnswer(
        question=f"fewest {last[0].accelerator.name} devices for {width}x{height}x{frames}",
        answer=0,
        at_answer=None,
        beyond=last[1],
        limited_by="search limit",
        time_budget_s=time_budget,
        memory_budget_gb=last[3],
        notes=(*notes, f"no device count of {', '.join(str(d.gpus) for d in deployments)} meets the budgets"),
    )
