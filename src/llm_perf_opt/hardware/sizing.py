"""Sizing queries answered from the formulas: the largest video that fits a time and/or memory
budget on ``N`` devices of a kind, and the fewest devices that meet a budget.

Each query evaluates the compiled time and memory expressions of a run (:mod:`.pipeline`,
:func:`~.memory.run_memory`) over every candidate at once — one numpy call for all frame counts or
all resolutions — and returns the largest candidate such that it and every smaller one fit (time
and peak memory per device grow with frames and resolution, so the next size up is the first that
does not fit). The answer carries the figures at it and at the next size up.

- :func:`largest_frames`: frame counts ``4k + 1`` (the ones the VAE produces) at a fixed size.
- :func:`largest_resolution`: heights that are multiples of 16 with the width at a fixed aspect
  ratio, rounded to a multiple of 16.
- :func:`fewest_devices`: 1, 2, 4, 8 devices (by default), each with the README's recipe
  (``--dit_fsdp --t5_fsdp`` and Ulysses over all devices, ring where the heads do not split), or
  with ``all_splits`` the fastest valid Ulysses × ring split. The recipe is the default because the
  model prices ring attention's passes (hidden behind the attention) but not its per-round merge
  of partial outputs, so a search over splits would favour ring.

The memory budget defaults to the device's memory: a run that does not fit cannot run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt
from attrs import evolve, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import Accelerator
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, EfficiencyTable
from llm_perf_opt.hardware.host import DEFAULT_HOST, HostCpu
from llm_perf_opt.hardware.memory import run_memory
from llm_perf_opt.hardware.parallel import Parallelism
from llm_perf_opt.hardware.pipeline import (
    STAGES,
    numeric_run,
    pipeline_time,
    resolve_accelerator,
    resolve_implementation,
    resolve_variant,
)
from llm_perf_opt.hardware.run import RunConfig, default_parallelism, run_config
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.geometry import PADDED_TEXT_LEN, SIZE_MULTIPLE, check_frame_count, check_frame_size
from llm_perf_opt.wan2_1.implementation import Implementation
from llm_perf_opt.wan2_1.variants import WanVariant
from llm_perf_opt.wan2_1.workloads import default_steps

__all__ = [
    "DEVICE_COUNTS",
    "MAX_FRAMES",
    "MAX_HEIGHT",
    "RunFigures",
    "SizingAnswer",
    "estimate_run",
    "fewest_devices",
    "largest_frames",
    "largest_resolution",
    "resolution_candidates",
    "splits",
]

FloatArray = npt.NDArray[np.float64]

MAX_FRAMES: Final = 1001
"""Largest frame count :func:`largest_frames` tries by default (4·250 + 1; the models are trained at 81)."""
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
        flags: the ``generate.py`` flags of the setup (and the attention kernel).
        seconds: the run's time.
        stages: seconds per stage (:data:`~.pipeline.STAGES`).
        peak_memory_gb: peak memory per device, in GB (10⁹ bytes).
        fits: whether it meets every budget.
    """

    frames: int
    height: int
    width: int
    steps: int
    gpus: int
    flags: str
    seconds: float
    stages: Mapping[str, float]
    peak_memory_gb: float
    fits: bool

    def line(self) -> str:
        """One line: size, devices, time and memory."""
        return (
            f"{self.width}x{self.height}x{self.frames}, {self.steps} steps, {self.gpus} GPU(s) "
            f"[{self.flags}]: {self.seconds:.1f} s, {self.peak_memory_gb:.1f} GB per device"
            f"{'' if self.fits else ' (does not fit)'}"
        )


@frozen(kw_only=True)
class SizingAnswer:
    """The answer of a sizing query and the figures around it.

    Attributes:
        question: what was asked, in words.
        variant: the variant.
        accelerator: the device.
        answer: the frame count, the height, or the number of devices.
        at_answer: the figures of the run at the answer.
        beyond: the figures of the candidate beyond the answer, which does not meet the budgets:
            the next size up (frames, resolution) or one device count fewer (``None`` when the
            search reached its limit, or the answer is the smallest count).
        limited_by: ``time``, ``memory``, ``time and memory``, or ``search limit``.
        time_budget_s: the time budget (``None``: none).
        memory_budget_gb: the memory budget per device.
        tried: for :func:`fewest_devices`, the best setup of every device count tried.
    """

    question: str
    variant: str
    accelerator: str
    answer: int
    at_answer: RunFigures
    beyond: RunFigures | None
    limited_by: str
    time_budget_s: float | None
    memory_budget_gb: float
    tried: tuple[RunFigures, ...] = ()

    def text(self) -> str:
        """The answer and its figures as plain text."""
        budget = "no time budget" if self.time_budget_s is None else f"time ≤ {self.time_budget_s:g} s"
        lines = [
            f"{self.question} for {self.variant} on {self.accelerator} ({budget}, "
            f"memory ≤ {self.memory_budget_gb:.1f} GB per device): {self.answer}",
            f"  at the answer: {self.at_answer.line()}",
        ]
        if self.beyond is not None:
            lines.append(f"  beyond it:     {self.beyond.line()}")
        lines.append(f"  limited by: {self.limited_by}")
        lines.extend(f"  tried: {figures.line()}" for figures in self.tried)
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


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise LlmPerfOptError(f"{name}: must be an integer ≥ 1, got {value!r}")
    return int(value)


@frozen(kw_only=True, eq=False)
class _Setup:
    """Everything but the video: model, device, run setup, factors."""

    variant: WanVariant
    implementation: Implementation
    accelerator: Accelerator
    config: RunConfig
    efficiencies: EfficiencyTable
    host: HostCpu

    def evaluate(
        self, frames: npt.ArrayLike, height: npt.ArrayLike, width: npt.ArrayLike, steps: int
    ) -> tuple[FloatArray, dict[str, FloatArray], FloatArray]:
        """Seconds, stage seconds and peak bytes per device over arrays of videos (compiled)."""
        workload = Workload(
            batch=1,
            frames=np.asarray(frames),
            height=np.asarray(height),
            width=np.asarray(width),
            steps=steps,
            text_len=PADDED_TEXT_LEN,
        )
        timing = pipeline_time(
            self.variant,
            self.implementation,
            self.accelerator,
            gpus=self.config.gpus,
            parallelism=self.config.parallelism,
            offload=self.config.offload,
            t5_cpu=self.config.t5_cpu,
            t5_fsdp=self.config.t5_fsdp,
            attention_kernel=self.config.attention_kernel,
            efficiencies=self.efficiencies,
            guidance=self.config.guidance,
            overlap=self.config.overlap,
            host=self.host,
        ).evaluate(workload)
        peak = run_memory(self.variant, self.implementation, self.config).evaluate(workload)["peak"]
        return timing["total"], {stage: timing[stage] for stage in STAGES}, peak

    def point(self, frames: int, height: int, width: int, steps: int, fits: bool) -> RunFigures:
        """The figures of one video, from the numeric run (equal to the compiled expressions)."""
        seconds = numeric_run(
            self.variant,
            self.implementation,
            self.accelerator,
            self.config,
            frames,
            height,
            width,
            steps,
            self.host,
        ).seconds(self.efficiencies)
        workload = Workload(
            batch=1, frames=frames, height=height, width=width, steps=steps, text_len=PADDED_TEXT_LEN
        )
        peak = run_memory(self.variant, self.implementation, self.config).evaluate_point(workload)["peak"]
        return RunFigures(
            frames=frames,
            height=height,
            width=width,
            steps=steps,
            gpus=self.config.gpus,
            flags=self.config.flags,
            seconds=seconds["total"],
            stages=MappingProxyType({stage: seconds[stage] for stage in STAGES}),
            peak_memory_gb=peak / _GB,
            fits=fits,
        )


def _setup(
    variant: str | WanVariant,
    accelerator: str | Accelerator,
    gpus: int,
    *,
    implementation: str | Implementation,
    parallelism: Parallelism | None,
    offload: bool | None,
    t5_cpu: bool,
    t5_fsdp: bool | None,
    attention_kernel: str,
    efficiencies: EfficiencyTable,
    guidance: bool,
    host: HostCpu,
) -> _Setup:
    record = resolve_variant(variant)
    device = resolve_accelerator(accelerator)
    config = run_config(
        record.num_heads,
        device,
        gpus=gpus,
        parallelism=parallelism,
        offload=offload,
        t5_cpu=t5_cpu,
        t5_fsdp=t5_fsdp,
        attention_kernel=attention_kernel,
        guidance=guidance,
        efficiencies=efficiencies,
    )
    return _Setup(
        variant=record,
        implementation=resolve_implementation(implementation),
        accelerator=device,
        config=config,
        efficiencies=efficiencies,
        host=host,
    )


def _memory_budget(accelerator: Accelerator, memory_budget_gb: float | None) -> float:
    checked = _budget("memory_budget_gb", memory_budget_gb)
    return accelerator.memory_bytes / _GB if checked is None else checked


def _fits(
    seconds: FloatArray, peak: FloatArray, time_budget_s: float | None, memory_budget_gb: float
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    in_time = np.ones(seconds.shape, dtype=bool) if time_budget_s is None else seconds <= time_budget_s
    in_memory = peak <= memory_budget_gb * _GB
    return in_time, in_memory


def _largest(in_time: npt.NDArray[np.bool_], in_memory: npt.NDArray[np.bool_]) -> tuple[int, str]:
    """Index of the last candidate before the first that does not fit, and what limits it."""
    fits = in_time & in_memory
    failing = np.flatnonzero(~fits)
    if failing.size == 0:
        return fits.size - 1, "search limit"
    first = int(failing[0])
    reasons = [name for name, ok in (("time", in_time[first]), ("memory", in_memory[first])) if not ok]
    return first - 1, " and ".join(reasons)


def _steps(variant: WanVariant, steps: int | None) -> int:
    return default_steps(variant) if steps is None else _positive("steps", steps)


def largest_frames(
    variant: str | WanVariant,
    accelerator: str | Accelerator,
    gpus: int = 1,
    *,
    height: int,
    width: int,
    time_budget_s: float | None = None,
    memory_budget_gb: float | None = None,
    steps: int | None = None,
    max_frames: int = MAX_FRAMES,
    implementation: str | Implementation = "official",
    parallelism: Parallelism | None = None,
    offload: bool | None = None,
    t5_cpu: bool = False,
    t5_fsdp: bool | None = None,
    attention_kernel: str = "fa2",
    efficiencies: EfficiencyTable = EFFICIENCIES,
    guidance: bool = True,
    host: HostCpu = DEFAULT_HOST,
) -> SizingAnswer:
    """The most frames (``4k + 1``, up to ``max_frames``) of ``height × width`` video that one run
    on ``gpus`` devices makes within the budgets.

    ``steps`` defaults to the task's (50, or 40 for I2V); ``memory_budget_gb`` to the device's
    memory. Raises for bad sizes, budgets or setups, and when not even one frame fits.
    """
    setup = _setup(
        variant,
        accelerator,
        gpus,
        implementation=implementation,
        parallelism=parallelism,
        offload=offload,
        t5_cpu=t5_cpu,
        t5_fsdp=t5_fsdp,
        attention_kernel=attention_kernel,
        efficiencies=efficiencies,
        guidance=guidance,
        host=host,
    )
    check_frame_size(height, width)
    limit = check_frame_count(_positive("max_frames", max_frames), field="max_frames")
    time_budget = _budget("time_budget_s", time_budget_s)
    memory_budget = _memory_budget(setup.accelerator, memory_budget_gb)
    sampling = _steps(setup.variant, steps)
    frames = np.arange(1, limit + 1, 4)
    seconds, _, peak = setup.evaluate(frames, height, width, sampling)
    in_time, in_memory = _fits(seconds, peak, time_budget, memory_budget)
    index, limited_by = _largest(in_time, in_memory)
    if index < 0:
        raise LlmPerfOptError(
            f"frames: not even 1 frame of {width}x{height} fits on {gpus} {setup.accelerator.name}: "
            f"{seconds[0]:.1f} s and {peak[0] / _GB:.1f} GB per device against "
            f"{'no time budget' if time_budget is None else f'{time_budget:g} s'} and "
            f"{memory_budget:.1f} GB"
        )
    answer = int(frames[index])
    following = None if index + 1 >= frames.size else int(frames[index + 1])
    return SizingAnswer(
        question="largest frame count",
        variant=setup.variant.model_variant,
        accelerator=setup.accelerator.name,
        answer=answer,
        at_answer=setup.point(answer, height, width, sampling, True),
        beyond=None if following is None else setup.point(following, height, width, sampling, False),
        limited_by=limited_by,
        time_budget_s=time_budget,
        memory_budget_gb=memory_budget,
    )


def _aspect(aspect: tuple[int, int]) -> float:
    if (
        not isinstance(aspect, tuple)
        or len(aspect) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in aspect)
    ):
        raise LlmPerfOptError(
            f"aspect: must be (width, height) as two integers > 0, e.g. (16, 9); got {aspect!r}"
        )
    return aspect[0] / aspect[1]


def resolution_candidates(
    aspect: tuple[int, int], max_height: int = MAX_HEIGHT
) -> tuple[FloatArray, FloatArray]:
    """Heights ``16, 32, …, max_height`` and their widths at ``aspect`` (width : height), each
    rounded to the nearest multiple of 16 (at least 16)."""
    ratio = _aspect(aspect)
    heights = np.arange(SIZE_MULTIPLE, max_height + 1, SIZE_MULTIPLE, dtype=np.float64)
    widths = np.maximum(np.rint(heights * ratio / SIZE_MULTIPLE), 1) * SIZE_MULTIPLE
    return heights, widths


def largest_resolution(
    variant: str | WanVariant,
    accelerator: str | Accelerator,
    gpus: int = 1,
    *,
    aspect: tuple[int, int] = (16, 9),
    frames: int = 81,
    time_budget_s: float | None = None,
    memory_budget_gb: float | None = None,
    steps: int | None = None,
    max_height: int = MAX_HEIGHT,
    implementation: str | Implementation = "official",
    parallelism: Parallelism | None = None,
    offload: bool | None = None,
    t5_cpu: bool = False,
    t5_fsdp: bool | None = None,
    attention_kernel: str = "fa2",
    efficiencies: EfficiencyTable = EFFICIENCIES,
    guidance: bool = True,
    host: HostCpu = DEFAULT_HOST,
) -> SizingAnswer:
    """The largest height (a multiple of 16, up to ``max_height``; the width at ``aspect`` =
    (width, height), rounded to a multiple of 16) of a ``frames``-frame video that one run on
    ``gpus`` devices makes within the budgets. The answer is the height; its figures hold the width.
    """
    setup = _setup(
        variant,
        accelerator,
        gpus,
        implementation=implementation,
        parallelism=parallelism,
        offload=offload,
        t5_cpu=t5_cpu,
        t5_fsdp=t5_fsdp,
        attention_kernel=attention_kernel,
        efficiencies=efficiencies,
        guidance=guidance,
        host=host,
    )
    effective = check_frame_count(frames, field="frames")
    limit = _positive("max_height", max_height)
    if limit < SIZE_MULTIPLE:
        raise LlmPerfOptError(f"max_height: must be ≥ {SIZE_MULTIPLE}, got {max_height}")
    time_budget = _budget("time_budget_s", time_budget_s)
    memory_budget = _memory_budget(setup.accelerator, memory_budget_gb)
    sampling = _steps(setup.variant, steps)
    heights, widths = resolution_candidates(aspect, limit)
    seconds, _, peak = setup.evaluate(effective, heights, widths, sampling)
    in_time, in_memory = _fits(seconds, peak, time_budget, memory_budget)
    index, limited_by = _largest(in_time, in_memory)
    if index < 0:
        raise LlmPerfOptError(
            f"height: not even {int(widths[0])}x{int(heights[0])} fits on {gpus} {setup.accelerator.name}: "
            f"{seconds[0]:.1f} s and {peak[0] / _GB:.1f} GB per device"
        )

    def figures(i: int, fits: bool) -> RunFigures:
        return setup.point(effective, int(heights[i]), int(widths[i]), sampling, fits)

    return SizingAnswer(
        question=f"largest height at {aspect[0]}:{aspect[1]}",
        variant=setup.variant.model_variant,
        accelerator=setup.accelerator.name,
        answer=int(heights[index]),
        at_answer=figures(index, True),
        beyond=None if index + 1 >= heights.size else figures(index + 1, False),
        limited_by=limited_by,
        time_budget_s=time_budget,
        memory_budget_gb=memory_budget,
    )


def splits(num_heads: int, gpus: int) -> tuple[Parallelism, ...]:
    """Every valid ``Ulysses × ring`` split of ``gpus`` devices (heads divisible by the Ulysses
    degree), with ``--dit_fsdp`` on more than one device; one device runs alone."""
    if gpus == 1:
        return (Parallelism(),)
    return tuple(
        Parallelism(ulysses=u, ring=gpus // u, fsdp=True)
        for u in range(gpus, 0, -1)
        if gpus % u == 0 and num_heads % u == 0
    )


def fewest_devices(
    variant: str | WanVariant,
    accelerator: str | Accelerator,
    *,
    frames: int = 81,
    height: int = 720,
    width: int = 1280,
    time_budget_s: float | None = None,
    memory_budget_gb: float | None = None,
    steps: int | None = None,
    device_counts: Sequence[int] = DEVICE_COUNTS,
    all_splits: bool = False,
    implementation: str | Implementation = "official",
    offload: bool | None = None,
    t5_cpu: bool = False,
    attention_kernel: str = "fa2",
    efficiencies: EfficiencyTable = EFFICIENCIES,
    guidance: bool = True,
    host: HostCpu = DEFAULT_HOST,
) -> SizingAnswer:
    """The fewest devices (of ``device_counts``) on which one run meets the budgets.

    Each count runs the README's recipe (:func:`~.run.default_parallelism`: ``--dit_fsdp
    --t5_fsdp``, Ulysses over all devices or ring where the heads do not split), or with
    ``all_splits`` its fastest valid Ulysses × ring split that fits memory; offload follows
    ``generate.py``'s default unless given. Raises when no count meets the budgets, listing the best
    figures of each.
    """
    record = resolve_variant(variant)
    device = resolve_accelerator(accelerator)
    check_frame_size(height, width)
    effective = check_frame_count(frames, field="frames")
    time_budget = _budget("time_budget_s", time_budget_s)
    memory_budget = _memory_budget(device, memory_budget_gb)
    sampling = _steps(record, steps)
    counts = sorted({_positive("device_counts", n) for n in device_counts})
    if not counts:
        raise LlmPerfOptError("device_counts: expected at least one count, got none")
    tried: list[RunFigures] = []
    for count in counts:
        best: RunFigures | None = None
        candidates = (
            splits(record.num_heads, count) if all_splits else (default_parallelism(record.num_heads, count),)
        )
        for split in candidates:
            setup = _setup(
                record,
                device,
                count,
                implementation=implementation,
                parallelism=split,
                offload=offload,
                t5_cpu=t5_cpu,
                t5_fsdp=None,
                attention_kernel=attention_kernel,
                efficiencies=efficiencies,
                guidance=guidance,
                host=host,
            )
            figures = setup.point(effective, height, width, sampling, False)
            in_memory = figures.peak_memory_gb <= memory_budget
            fits = in_memory and (time_budget is None or figures.seconds <= time_budget)
            candidate = evolve(figures, fits=fits)
            if best is None or _better(candidate, best, in_memory, memory_budget):
                best = candidate
        if best is None:
            continue
        tried.append(best)
        if best.fits:
            return SizingAnswer(
                question="fewest devices",
                variant=record.model_variant,
                accelerator=device.name,
                answer=count,
                at_answer=best,
                beyond=tried[-2] if len(tried) > 1 else None,
                limited_by=_limit(tried[-2], time_budget, memory_budget)
                if len(tried) > 1
                else "search limit",
                time_budget_s=time_budget,
                memory_budget_gb=memory_budget,
                tried=tuple(tried),
            )
    raise LlmPerfOptError(
        f"device_counts: no count of {', '.join(map(str, counts))} {device.name} meets "
        f"{'no time budget' if time_budget is None else f'{time_budget:g} s'} and {memory_budget:.1f} GB "
        f"for {width}x{height}x{effective}; best per count: "
        + "; ".join(f"{f.gpus}: {f.seconds:.1f} s, {f.peak_memory_gb:.1f} GB" for f in tried)
    )


def _better(candidate: RunFigures, best: RunFigures, in_memory: bool, memory_budget: float) -> bool:
    """Fitting beats not fitting; among setups that fit memory the faster wins; else the smaller."""
    best_in_memory = best.peak_memory_gb <= memory_budget
    if candidate.fits != best.fits:
        return candidate.fits
    if in_memory != best_in_memory:
        return in_memory
    if in_memory:
        return candidate.seconds < best.seconds
    return candidate.peak_memory_gb < best.peak_memory_gb


def _limit(figures: RunFigures, time_budget: float | None, memory_budget: float) -> str:
    reasons = []
    if time_budget is not None and figures.seconds > time_budget:
        reasons.append("time")
    if figures.peak_memory_gb > memory_budget:
        reasons.append("memory")
    return " and ".join(reasons) or "search limit"


def estimate_run(
    variant: str | WanVariant,
    accelerator: str | Accelerator,
    gpus: int = 1,
    *,
    frames: int = 81,
    height: int = 720,
    width: int = 1280,
    steps: int | None = None,
    implementation: str | Implementation = "official",
    parallelism: Parallelism | None = None,
    offload: bool | None = None,
    t5_cpu: bool = False,
    t5_fsdp: bool | None = None,
    attention_kernel: str = "fa2",
    efficiencies: EfficiencyTable = EFFICIENCIES,
    guidance: bool = True,
    host: HostCpu = DEFAULT_HOST,
) -> RunFigures:
    """The predicted time (per stage) and peak memory per device of one run of one video."""
    setup = _setup(
        variant,
        accelerator,
        gpus,
        implementation=implementation,
        parallelism=parallelism,
        offload=offload,
        t5_cpu=t5_cpu,
        t5_fsdp=t5_fsdp,
        attention_kernel=attention_kernel,
        efficiencies=efficiencies,
        guidance=guidance,
        host=host,
    )
    check_frame_size(height, width)
    effective = check_frame_count(frames, field="frames")
    return setup.point(effective, height, width, _steps(setup.variant, steps), True)
