"""Calibration: the efficiency factors fitted to the published Wan2.1 timings C1–C8, and the table
that shows how well the model reproduces them.

Two kinds of points are fitted together. The transformer-only timings (:data:`DIT_POINTS`: C4, C5,
C6, C7 with FA2 and FA3, C8) are predicted by the compiled time model of the transformer. The
end-to-end records C1–C3 (:data:`PIPELINE_RECORDS`: umT5, the transformer, the VAE, offload on
1–8 GPUs) are predicted by the whole-run model of :mod:`.pipeline` through the
:class:`PipelinePredictor` hook of :func:`calibration_table` and :func:`fit_efficiencies`, which
defaults to :func:`predict_record`. Measurements with ``torch.compile`` are kept as records, not
fitted: the model prices every element-wise op as its own unfused kernel, which compiled code is
not.

The fit (:func:`fit_efficiencies`) is a damped Gauss–Newton least squares over the logarithms of
a handful of factors (:data:`PIPELINE_FREE_FACTORS`): residuals are ``log(predicted / measured)``
per point plus a weak pull of each factor towards its prior, which settles directions the points
do not determine; priors from kernel measurements pull harder than assumed ones
(``FreeFactor.confidence``). It is deterministic; the shipped ``efficiencies.json`` holds its
result rounded to three decimals, and a test refits and compares.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import get_accelerator
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, EfficiencyTable
from llm_perf_opt.hardware.parallel import Parallelism, dit_parallel_time
from llm_perf_opt.hardware.pipeline import NumericRun, numeric_run
from llm_perf_opt.hardware.roofline import (
    RooflineTerm,
    host_transfer_seconds,
    roofline_terms,
    terms_seconds,
    time_model,
)
from llm_perf_opt.hardware.run import RunConfig, run_config
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.evaluate import dit_tree
from llm_perf_opt.wan2_1.geometry import PADDED_TEXT_LEN
from llm_perf_opt.wan2_1.implementation import OFFICIAL, get_implementation
from llm_perf_opt.wan2_1.variants import get_variant

__all__ = [
    "DIT_POINTS",
    "FREE_FACTORS",
    "PIPELINE_FREE_FACTORS",
    "PIPELINE_RECORDS",
    "RECORDS",
    "CalibrationPoint",
    "CalibrationRow",
    "CalibrationTable",
    "FitResult",
    "FreeFactor",
    "PipelinePredictor",
    "PipelineRecord",
    "calibration_table",
    "dit_only_seconds",
    "fit_efficiencies",
    "predict_point",
    "predict_record",
    "record_config",
    "record_run",
]

FloatArray = npt.NDArray[np.float64]

_OFFLOADS: Final = ("none", "group")


def _offload(_instance: object, attribute: object, value: object) -> None:
    if value not in _OFFLOADS:
        raise LlmPerfOptError(f"offload: must be one of {', '.join(_OFFLOADS)}, got {value!r}")


@frozen(kw_only=True)
class CalibrationPoint:
    """One published timing of the diffusion transformer alone.

    Attributes:
        id: ``C4`` … ``C8`` (with the kernel for the C7 rows).
        source: where it was published.
        variant: the Wan2.1 variant (``t2v-14b``).
        implementation: the implementation profile closest to the code timed (``diffusers``).
        accelerator: the device.
        attention_kernel: ``sdpa``, ``fa2`` or ``fa3``.
        frames: video frames.
        height: video height in pixels.
        width: video width in pixels.
        forwards: transformer forwards timed (steps × 2 with CFG).
        measured_seconds: the published time, in seconds.
        offload: ``none``, or ``group``: diffusers group offloading streams the bf16 weights from
            the host once per forward, overlapped with compute (time = max(compute, transfer)).
        fitted: whether the fit uses it; records that are not fitted are shown in the table.
        note: what was assumed about the setup.
    """

    id: str
    source: str
    variant: str
    implementation: str
    accelerator: str
    attention_kernel: str
    frames: int
    height: int
    width: int
    forwards: int
    measured_seconds: float
    offload: str = field(default="none", validator=_offload)
    fitted: bool = True
    note: str = ""


_DIFFUSERS_PR: Final = "huggingface/diffusers PR #11605 (H100 and RTX 4090, Wan 14B transformer, bf16)"
_FASTWAN: Final = "FastWan blog (Hao AI Lab), Table 1 (FastVideo on H200)"
_FASTVIDEO_NOTE: Final = (
    "FastVideo's Wan transformer holds bf16 weights and a bf16 stream: priced with the diffusers profile"
)

DIT_POINTS: Final[tuple[CalibrationPoint, ...]] = (
    CalibrationPoint(
        id="C4",
        source=_DIFFUSERS_PR,
        variant="t2v-14b",
        implementation="diffusers",
        accelerator="h100-sxm",
        attention_kernel="sdpa",
        frames=81,
        height=480,
        width=832,
        forwards=1,
        measured_seconds=4.6018,
        note="one eager forward, latent 1×16×21×60×104, 512 text tokens; the H100 taken to be SXM",
    ),
    CalibrationPoint(
        id="C5",
        source=_DIFFUSERS_PR,
        variant="t2v-14b",
        implementation="diffusers",
        accelerator="rtx4090",
        attention_kernel="sdpa",
        frames=81,
        height=480,
        width=832,
        forwards=1,
        measured_seconds=13.6581,
        offload="group",
        note=(
            "one eager forward with group offloading (28.6 GB of bf16 weights do not fit in 24 GB): "
            "the weights stream over PCIe Gen4 once per forward, overlapped with compute"
        ),
    ),
    CalibrationPoint(
        id="C6",
        source=_FASTWAN,
        variant="t2v-14b",
        implementation="diffusers",
        accelerator="h200",
        attention_kernel="fa2",
        frames=81,
        height=720,
        width=1280,
        forwards=100,
        measured_seconds=1746.5,
        note=f"50 steps with CFG, denoising only; {_FASTVIDEO_NOTE}",
    ),
    CalibrationPoint(
        id="C7-fa2",
        source=_FASTWAN,
        variant="t2v-14b",
        implementation="diffusers",
        accelerator="h200",
        attention_kernel="fa2",
        frames=81,
        height=720,
        width=1280,
        forwards=3,
        measured_seconds=52.0,
        note=f"3-step distilled model (same architecture), no CFG, DiT only; {_FASTVIDEO_NOTE}",
    ),
    CalibrationPoint(
        id="C7-fa3",
        source=_FASTWAN,
        variant="t2v-14b",
        implementation="diffusers",
        accelerator="h200",
        attention_kernel="fa3",
        frames=81,
        height=720,
        width=1280,
        forwards=3,
        measured_seconds=37.87,
        note=f"as C7-fa2 with FlashAttention-3; {_FASTVIDEO_NOTE}",
    ),
    CalibrationPoint(
        id="C8",
        source=_FASTWAN,
        variant="t2v-1.3b",
        implementation="diffusers",
        accelerator="h200",
        attention_kernel="fa2",
        frames=81,
        height=480,
        width=832,
        forwards=100,
        measured_seconds=95.21,
        note=f"50 steps with CFG, denoising only; {_FASTVIDEO_NOTE}",
    ),
)
"""The transformer-only timings the factors are fitted to."""

_COMPILED: Final = "torch.compile fuses element-wise chains, which the unfused byte model does not price"

RECORDS: Final[tuple[CalibrationPoint, ...]] = (
    CalibrationPoint(
        id="C4-compiled",
        source=_DIFFUSERS_PR,
        variant="t2v-14b",
        implementation="diffusers",
        accelerator="h100-sxm",
        attention_kernel="sdpa",
        frames=81,
        height=480,
        width=832,
        forwards=1,
        measured_seconds=3.7663,
        fitted=False,
        note=_COMPILED,
    ),
    CalibrationPoint(
        id="C5-compiled",
        source=_DIFFUSERS_PR,
        variant="t2v-14b",
        implementation="diffusers",
        accelerator="rtx4090",
        attention_kernel="sdpa",
        frames=81,
        height=480,
        width=832,
        forwards=1,
        measured_seconds=11.5838,
        offload="group",
        fitted=False,
        note=_COMPILED,
    ),
    CalibrationPoint(
        id="C7-fa3-compiled",
        source=_FASTWAN,
        variant="t2v-14b",
        implementation="diffusers",
        accelerator="h200",
        attention_kernel="fa3",
        frames=81,
        height=720,
        width=1280,
        forwards=3,
        measured_seconds=29.5,
        fitted=False,
        note=_COMPILED,
    ),
)
"""Transformer-only timings shown next to the model but not fitted (compiled runs)."""


@frozen(kw_only=True)
class PipelineRecord:
    """A published end-to-end timing on 1–8 GPUs (Wan-Video/Wan2.1 README efficiency table).

    Attributes:
        id: ``C1`` … ``C3``.
        source: where it was published.
        variant: the Wan2.1 variant.
        accelerator: the device (``h100-sxm``: the README lumps H800 and H100, same compute).
        frames, height, width: the video (presumably the 81-frame default).
        steps: sampling steps.
        guidance: classifier-free guidance on (two transformer forwards per step).
        gpus: GPU counts of the columns.
        measured_seconds: total time per GPU count (includes umT5 and the VAE).
        measured_peak_gb: peak GPU memory per GPU count, in GB.
        settings: command-line flags per GPU count, as published or presumed.
        ulysses: Ulysses degree per GPU count.
        ring: ring degree per GPU count.
        fsdp: ``--dit_fsdp`` per GPU count.
        t5_fsdp: ``--t5_fsdp`` per GPU count.
        offload: ``--offload_model`` per GPU count.
        t5_cpu: ``--t5_cpu`` per GPU count.
        attention_kernel: the attention kernel presumed (see ``presumptions``).
        presumptions: what is presumed beyond the published flags.
    """

    id: str
    source: str
    variant: str
    accelerator: str
    frames: int
    height: int
    width: int
    steps: int
    guidance: bool
    gpus: tuple[int, ...]
    measured_seconds: tuple[float, ...]
    measured_peak_gb: tuple[float, ...]
    settings: tuple[str, ...]
    ulysses: tuple[int, ...]
    ring: tuple[int, ...]
    fsdp: tuple[bool, ...]
    t5_fsdp: tuple[bool, ...]
    offload: tuple[bool, ...]
    t5_cpu: tuple[bool, ...]
    attention_kernel: str
    presumptions: str


_README: Final = (
    "Wan-Video/Wan2.1 README, 'Computational Efficiency on Different GPUs' (assets/comp_effic.png)"
)
_PRESUMED: Final = (
    "81 frames at the default size, the default UniPC solver, one generate() call with checkpoint "
    "loading excluded; FlashAttention-2 (the official attention takes FlashAttention-3 only when "
    "flash_attn_interface is importable; requirements.txt installs flash_attn, i.e. FA2, and the "
    "FA3 reading contradicts C7's FA3 measurement, see docs/hardware.md); multi-GPU flags "
    "--dit_fsdp --t5_fsdp --ulysses_size N as in the README's and tests/test.sh's recipes"
)

PIPELINE_RECORDS: Final[tuple[PipelineRecord, ...]] = (
    PipelineRecord(
        id="C1",
        source=_README,
        variant="t2v-14b",
        accelerator="h100-sxm",
        frames=81,
        height=720,
        width=1280,
        steps=50,
        guidance=True,
        gpus=(1, 2, 4, 8),
        measured_seconds=(1837.9, 945.1, 497.0, 287.9),
        measured_peak_gb=(69.1, 53.9, 37.9, 29.9),
        settings=(
            "--offload_model True",
            "--dit_fsdp --t5_fsdp --ulysses_size 2 (presumed)",
            "--dit_fsdp --t5_fsdp --ulysses_size 4 (presumed)",
            "--dit_fsdp --t5_fsdp --ulysses_size 8 (presumed)",
        ),
        ulysses=(1, 2, 4, 8),
        ring=(1, 1, 1, 1),
        fsdp=(False, True, True, True),
        t5_fsdp=(False, True, True, True),
        offload=(True, False, False, False),
        t5_cpu=(False, False, False, False),
        attention_kernel="fa2",
        presumptions=_PRESUMED,
    ),
    PipelineRecord(
        id="C2",
        source=_README,
        variant="i2v-14b-720p",
        accelerator="h100-sxm",
        frames=81,
        height=720,
        width=1280,
        steps=40,
        guidance=True,
        gpus=(1, 2, 4, 8),
        measured_seconds=(1491.6, 753.9, 403.9, 238.8),
        measured_peak_gb=(76.7, 59.8, 41.9, 32.9),
        settings=(
            "--offload_model True",
            "--dit_fsdp --t5_fsdp --ulysses_size 2 (presumed)",
            "--dit_fsdp --t5_fsdp --ulysses_size 4 (presumed)",
            "--dit_fsdp --t5_fsdp --ulysses_size 8 (presumed)",
        ),
        ulysses=(1, 2, 4, 8),
        ring=(1, 1, 1, 1),
        fsdp=(False, True, True, True),
        t5_fsdp=(False, True, True, True),
        offload=(True, False, False, False),
        t5_cpu=(False, False, False, False),
        attention_kernel="fa2",
        presumptions=_PRESUMED + "; a 16:9 input image, so the video is 1280×720",
    ),
    PipelineRecord(
        id="C3",
        source=_README,
        variant="t2v-1.3b",
        accelerator="rtx4090",
        frames=81,
        height=480,
        width=832,
        steps=50,
        guidance=True,
        gpus=(1, 2, 4, 8),
        measured_seconds=(261.4, 188.5, 120.8, 112.3),
        measured_peak_gb=(8.19, 18.1, 14.1, 12.2),
        settings=(
            "--offload_model True --t5_cpu",
            "flags not published (presumed --dit_fsdp --t5_fsdp --ulysses_size 2)",
            "flags not published (presumed --dit_fsdp --t5_fsdp --ulysses_size 4)",
            "--ring_size 8 --ulysses_size 1 (published; 12 heads do not split 8 ways; FSDP presumed)",
        ),
        ulysses=(1, 2, 4, 1),
        ring=(1, 1, 1, 8),
        fsdp=(False, True, True, True),
        t5_fsdp=(False, True, True, True),
        offload=(True, False, False, False),
        t5_cpu=(True, False, False, False),
        attention_kernel="fa2",
        presumptions=_PRESUMED + "; umT5 on the host CPU at the assumed rate (hardware.host)",
    ),
)
"""The end-to-end records, predicted by the pipeline layer and fitted with the transformer points."""


def record_config(record: PipelineRecord, gpus: int) -> RunConfig:
    """The :class:`~.run.RunConfig` of one column of a record."""
    if gpus not in record.gpus:
        raise LlmPerfOptError(f"gpus: {record.id} has columns {record.gpus}, got {gpus!r}")
    column = record.gpus.index(gpus)
    return run_config(
        get_variant(record.variant).num_heads,
        get_accelerator(record.accelerator),
        gpus=gpus,
        parallelism=Parallelism(record.ulysses[column], record.ring[column], record.fsdp[column]),
        offload=record.offload[column],
        t5_cpu=record.t5_cpu[column],
        t5_fsdp=record.t5_fsdp[column],
        attention_kernel=record.attention_kernel,
        guidance=record.guidance,
    )


def record_run(record: PipelineRecord, gpus: int) -> NumericRun:
    """The numeric run of one column (official profile), for fitting and the table."""
    return numeric_run(
        get_variant(record.variant),
        OFFICIAL,
        get_accelerator(record.accelerator),
        record_config(record, gpus),
        record.frames,
        record.height,
        record.width,
        record.steps,
    )


def predict_record(record: PipelineRecord, gpus: int, efficiencies: EfficiencyTable = EFFICIENCIES) -> float:
    """Predicted seconds of one column of an end-to-end record: the whole run on rank 0
    (:mod:`.pipeline`); the :class:`PipelinePredictor` the table and the fit use."""
    return record_run(record, gpus).seconds(efficiencies)["total"]


class PipelinePredictor(Protocol):
    """The hook the pipeline layer fills: predicted seconds of one end-to-end record.

    Called with the record, the GPU count of one of its columns, and the efficiency table to use
    (the fit passes trial tables); returns the predicted total time in seconds.
    """

    def __call__(self, record: PipelineRecord, gpus: int, efficiencies: EfficiencyTable) -> float: ...


# ─── predictions ────────────────────────────────────────────────────────────────────────────────


def _workload(point: CalibrationPoint) -> Workload:
    return Workload(
        batch=1,
        frames=point.frames,
        height=point.height,
        width=point.width,
        steps=1,
        text_len=PADDED_TEXT_LEN,
    )


def _tree(point: CalibrationPoint) -> ModuleTree:
    return dit_tree(get_variant(point.variant), get_implementation(point.implementation))


def _offload_seconds(point: CalibrationPoint, efficiencies: EfficiencyTable) -> float:
    """Seconds to stream the transformer's weights from the host once (group offloading)."""
    if point.offload == "none":
        return 0.0
    tree = _tree(point)
    weight_bytes = int(tree.root.aggregate.weight_bytes)
    return host_transfer_seconds(weight_bytes, get_accelerator(point.accelerator), efficiencies)


def predict_point(point: CalibrationPoint, efficiencies: EfficiencyTable = EFFICIENCIES) -> float:
    """Predicted seconds of a transformer-only point: the compiled time model × forwards, with
    group-offload transfers overlapped (max of compute and transfer per forward)."""
    model = time_model(
        _tree(point),
        get_accelerator(point.accelerator),
        efficiencies,
        attention_kernel=point.attention_kernel,
    )
    forward = model.evaluate_point(_workload(point))[model.tree.root_id]
    return point.forwards * max(forward, _offload_seconds(point, efficiencies))


@functools.cache
def _terms(point: CalibrationPoint) -> tuple[RooflineTerm, ...]:
    return roofline_terms(
        _tree(point),
        get_accelerator(point.accelerator),
        _workload(point),
        attention_kernel=point.attention_kernel,
    )


def _fast_predict(point: CalibrationPoint, efficiencies: EfficiencyTable) -> float:
    """:func:`predict_point` from the precomputed roofline terms (equal up to float rounding)."""
    efficiency = efficiencies.for_device(get_accelerator(point.accelerator))
    forward = terms_seconds(_terms(point), efficiency)
    return point.forwards * max(forward, _offload_seconds(point, efficiencies))


# ─── the fit ────────────────────────────────────────────────────────────────────────────────────

_ALL_FAMILIES: Final = ("ampere", "hopper", "ada", "blackwell", "cdna3")


@frozen(kw_only=True)
class FreeFactor:
    """One fitted factor, possibly tied across several cells of the table.

    Attributes:
        name: a short name for reports.
        cells: the ``(scope, key)`` cells of the :class:`EfficiencyTable` that take its value.
        prior: the value the kernel measurements suggest; the fit starts there and is pulled
            weakly towards it.
        basis: where the prior comes from.
        lower: smallest value allowed.
        upper: largest value allowed.
        confidence: how strongly the fit is pulled towards the prior, relative to a prior taken
            from a kernel measurement (1); an assumed prior without a measurement pulls weakly.
    """

    name: str
    cells: tuple[tuple[str, str], ...]
    prior: float
    basis: str
    lower: float = 0.05
    upper: float = 1.0
    confidence: float = 1.0


FREE_FACTORS: Final[tuple[FreeFactor, ...]] = (
    FreeFactor(
        name="hopper.matmul",
        cells=(("family:hopper", "matmul"),),
        prior=0.75,
        basis="bf16 cuBLAS GEMMs of Wan's sizes; no Hopper GEMM measurement in the references, "
        "L20 reaches 0.88-0.96 and H100-class parts run lower",
    ),
    FreeFactor(
        name="hopper.attention.fa2",
        cells=(("family:hopper", "attention.fa2"), ("family:hopper", "attention.sdpa")),
        prior=0.343,
        basis="FA2 ~339 of 989 TFLOP/s on H100 (SageAttention chart); PyTorch SDPA runs its "
        "FlashAttention-2 backend, so sdpa is tied to fa2",
    ),
    FreeFactor(
        name="hopper.attention.fa3",
        cells=(("family:hopper", "attention.fa3"),),
        prior=0.47,
        basis="FA3-fp16 ~459-470 of 989 TFLOP/s on H100 (SageAttention chart); up to 0.75 in the FA3 paper",
    ),
    FreeFactor(
        name="memory_elementwise",
        cells=tuple((f"family:{family}", "memory_elementwise") for family in _ALL_FAMILIES),
        prior=0.7,
        basis="a streaming kernel's typical fraction of bandwidth; stock eager norm/RoPE kernels reach "
        "far less (svg-project/Sparse-VideoGen: 17-350 vs ~800 GB/s fused). One value for every "
        "family: it is a property of the PyTorch eager kernels",
    ),
    FreeFactor(
        name="ada.matmul",
        cells=(("family:ada", "matmul"),),
        prior=0.9,
        basis="cuBLAS FP16 GEMM 105-115 of 119.5 TFLOP/s on L20 (DefTruth/CUDA-Learn-Notes hgemm)",
    ),
)
"""The factors the transformer-only calibration fits; every other factor keeps its prior."""

PIPELINE_FREE_FACTORS: Final[tuple[FreeFactor, ...]] = (
    *FREE_FACTORS,
    FreeFactor(
        name="hopper.convolution",
        cells=(("family:hopper", "convolution"),),
        prior=0.5,
        basis="no convolution measurement in the references: an assumption, pulled weakly; the "
        "VAE's fp32 (TF32) 3-D convolutions of C1-C2 decide it",
        lower=0.01,
        confidence=0.1,
    ),
    FreeFactor(
        name="ada.convolution",
        cells=(("family:ada", "convolution"),),
        prior=0.5,
        basis="as hopper.convolution, decided by C3",
        lower=0.01,
        confidence=0.1,
    ),
    FreeFactor(
        name="ada.host_link",
        cells=(("family:ada", "host_link"),),
        prior=0.8,
        basis="a PCIe copy's typical fraction of the link; on GeForce cards (no peer-to-peer) the "
        "collectives of C3 on 2-8 GPUs also go through host memory, crossing PCIe twice and sharing "
        "the host's lanes, which no measurement in the references prices: pulled weakly",
        confidence=0.1,
    ),
)
"""The factors fitted to C1–C8 together: the transformer's, the VAE's fp32 (TF32) convolutions,
and the host link the RTX 4090s' collectives go through."""

PRIOR_WEIGHT: Final = 0.05
"""Weight of the pull towards the priors, per squared log-ratio (a point's residual has weight 1)."""


@frozen(kw_only=True)
class FitResult:
    """The outcome of :func:`fit_efficiencies`.

    Attributes:
        table: the efficiency table with the fitted values.
        values: fitted value per free factor name.
        priors: prior per free factor name.
        residuals: ``log(predicted / measured)`` per fitted point id.
        iterations: Gauss–Newton steps taken.
    """

    table: EfficiencyTable
    values: Mapping[str, float]
    priors: Mapping[str, float]
    residuals: Mapping[str, float]
    iterations: int


def _apply(base: EfficiencyTable, free: Sequence[FreeFactor], values: Sequence[float]) -> EfficiencyTable:
    return base.with_values(
        {cell: float(v) for factor, v in zip(free, values, strict=True) for cell in factor.cells}
    )


def fit_efficiencies(
    points: Sequence[CalibrationPoint] = DIT_POINTS,
    free: Sequence[FreeFactor] | None = None,
    base: EfficiencyTable = EFFICIENCIES,
    *,
    prior_weight: float = PRIOR_WEIGHT,
    pipeline_predictor: PipelinePredictor | None = predict_record,
    pipeline_records: Sequence[PipelineRecord] = PIPELINE_RECORDS,
    max_iterations: int = 200,
) -> FitResult:
    """Fit the ``free`` factors to the measured points by damped Gauss–Newton in log space.

    Residuals: ``log(predicted / measured)`` for each fitted point and each column of the pipeline
    records (unless ``pipeline_predictor`` is ``None``: the transformer-only points alone), and
    ``√(prior_weight · confidence) · log(value / prior)`` per factor. Values stay within each
    factor's bounds. Deterministic. ``free`` defaults to :data:`PIPELINE_FREE_FACTORS`, or to
    :data:`FREE_FACTORS` without a ``pipeline_predictor``.
    """
    if free is None:
        free = FREE_FACTORS if pipeline_predictor is None else PIPELINE_FREE_FACTORS
    if not free:
        raise LlmPerfOptError("free: expected at least one factor to fit, got none")
    fitted = [p for p in points if p.fitted]
    targets: list[tuple[str, Callable[[EfficiencyTable], float], float]] = [
        (p.id, functools.partial(_fast_predict, p), p.measured_seconds) for p in fitted
    ]
    if pipeline_predictor is not None:
        for record in pipeline_records:
            for gpus, measured in zip(record.gpus, record.measured_seconds, strict=True):
                predict = functools.partial(_predict_record, pipeline_predictor, record, gpus)
                targets.append((f"{record.id}x{gpus}", predict, measured))
    if not targets:
        raise LlmPerfOptError("points: expected at least one fitted point, got none")
    lower = np.log([f.lower for f in free])
    upper = np.log([f.upper for f in free])
    prior = np.log([f.prior for f in free])
    weight = np.sqrt(prior_weight * np.array([f.confidence for f in free]))

    def residuals(theta: FloatArray) -> FloatArray:
        table = _apply(base, free, np.exp(theta).tolist())
        fit = [math.log(predict(table) / measured) for _, predict, measured in targets]
        return np.array(fit + list(weight * (theta - prior)))

    theta = prior.copy()
    current = residuals(theta)
    damping = 1e-3
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007  # the count is reported
        jacobian = np.empty((current.size, theta.size))
        for j in range(theta.size):
            # a forward difference, backward at the upper bound
            step = 1e-6 if theta[j] + 1e-6 <= upper[j] else -1e-6
            shifted = theta.copy()
            shifted[j] += step
            jacobian[:, j] = (residuals(shifted) - current) / step
        normal = jacobian.T @ jacobian
        gradient = jacobian.T @ current
        improved = False
        while damping < 1e8:
            delta = np.linalg.solve(normal + damping * np.diag(np.diag(normal) + 1e-12), -gradient)
            candidate = np.clip(theta + delta, lower, upper)
            trial = residuals(candidate)
            if trial @ trial < current @ current:
                improved = True
                gain = current @ current - trial @ trial
                theta, current = candidate, trial
                damping = max(damping / 10, 1e-9)
                break
            damping *= 10
        if not improved or gain < 1e-14:
            break
    values = np.exp(theta).tolist()
    return FitResult(
        table=_apply(base, free, values),
        values=MappingProxyType({f.name: v for f, v in zip(free, values, strict=True)}),
        priors=MappingProxyType({f.name: f.prior for f in free}),
        residuals=MappingProxyType(
            {name: float(r) for (name, _, _), r in zip(targets, current[: len(targets)], strict=True)}
        ),
        iterations=iterations,
    )


def _predict_record(
    predictor: PipelinePredictor, record: PipelineRecord, gpus: int, efficiencies: EfficiencyTable
) -> float:
    return float(predictor(record, gpus, efficiencies))


def dit_only_seconds(
    record: PipelineRecord,
    gpus: int,
    efficiencies: EfficiencyTable = EFFICIENCIES,
    *,
    attention_kernel: str = "fa2",
) -> float:
    """The transformer's share of an end-to-end record: all its forwards on one rank (official
    profile, the record's parallelism for ``gpus``), without umT5, the VAE or offload."""
    column = record.gpus.index(gpus) if gpus in record.gpus else None
    if column is None:
        raise LlmPerfOptError(f"gpus: {record.id} has columns {record.gpus}, got {gpus!r}")
    parallelism = Parallelism(record.ulysses[column], record.ring[column], record.fsdp[column])
    forward = _parallel_forward(
        record.variant,
        record.accelerator,
        parallelism,
        efficiencies,
        attention_kernel,
        record.frames,
        record.height,
        record.width,
    )
    return forward * record.steps * (2 if record.guidance else 1)


@functools.lru_cache(maxsize=64)
def _parallel_forward(
    variant: str,
    accelerator: str,
    parallelism: Parallelism,
    efficiencies: EfficiencyTable,
    attention_kernel: str,
    frames: int,
    height: int,
    width: int,
) -> float:
    timing = dit_parallel_time(
        get_variant(variant),
        OFFICIAL,
        get_accelerator(accelerator),
        parallelism,
        efficiencies=efficiencies,
        attention_kernel=attention_kernel,
    )
    workload = Workload(batch=1, frames=frames, height=height, width=width, steps=1, text_len=PADDED_TEXT_LEN)
    return timing.evaluate_point(workload)["forward"]


# ─── the table ──────────────────────────────────────────────────────────────────────────────────


@frozen(kw_only=True)
class CalibrationRow:
    """One row of the calibration table.

    Attributes:
        id: the point (``C6``) or record column (``C1x8``).
        setup: variant, device, kernel, resolution and forwards, in words.
        measured_seconds: the published time.
        predicted_seconds: the model's time; ``None`` while the pipeline layer is missing.
        error: ``predicted / measured − 1``; ``None`` without a prediction.
        fitted: whether the point is one the factors were fitted to.
        note: assumptions, or what is missing.
        dit_only_seconds: for an end-to-end record, the transformer's share as this layer predicts
            it (official profile, FlashAttention-2, the record's parallelism, all forwards): context
            for the pipeline layer, not a prediction of the total.
    """

    id: str
    setup: str
    measured_seconds: float
    predicted_seconds: float | None
    error: float | None
    fitted: bool
    note: str
    dit_only_seconds: float | None = None


@frozen(kw_only=True)
class CalibrationTable:
    """Each calibration point's prediction, measurement and error, and the MAPE of the fitted ones.

    Attributes:
        rows: one per point, record and record column.
        mape: mean absolute percentage error over the fitted rows with a prediction, in percent.
        max_abs_error: largest |error| among them, in percent.
    """

    rows: tuple[CalibrationRow, ...]
    mape: float
    max_abs_error: float

    def text(self) -> str:
        """The table as aligned plain text."""
        header = (
            f"{'point':<16}{'setup':<58}{'measured s':>12}{'predicted s':>13}{'error':>9}  fitted"
            f"{'DiT only s':>12}"
        )
        lines = [header, "-" * len(header)]
        for row in self.rows:
            predicted = "—" if row.predicted_seconds is None else f"{row.predicted_seconds:.2f}"
            error = "—" if row.error is None else f"{row.error * 100:+.1f}%"
            dit_only = "" if row.dit_only_seconds is None else f"{row.dit_only_seconds:.1f}"
            lines.append(
                f"{row.id:<16}{row.setup:<58}{row.measured_seconds:>12.2f}{predicted:>13}{error:>9}  "
                f"{'yes' if row.fitted else 'no ':<6}{dit_only:>12}"
            )
        lines.append(
            f"MAPE over the fitted points: {self.mape:.1f}%  (largest |error| {self.max_abs_error:.1f}%)"
        )
        return "\n".join(lines)


def _setup(point: CalibrationPoint) -> str:
    offload = ", group offload" if point.offload == "group" else ""
    return (
        f"{point.variant} {point.width}x{point.height}x{point.frames} {point.accelerator} "
        f"{point.attention_kernel}{offload}, {point.forwards} fwd"
    )


def calibration_table(
    efficiencies: EfficiencyTable = EFFICIENCIES,
    *,
    pipeline_predictor: PipelinePredictor | None = predict_record,
) -> CalibrationTable:
    """Every calibration point with the model's prediction, the measurement and the error.

    Transformer-only points are predicted by the compiled time model, the columns of the
    end-to-end records C1–C3 by ``pipeline_predictor`` (the whole-run model by default); both count
    in the MAPE. With ``pipeline_predictor=None`` the records are listed without a prediction.
    """
    rows: list[CalibrationRow] = []
    for point in (*DIT_POINTS, *RECORDS):
        predicted = predict_point(point, efficiencies)
        rows.append(
            CalibrationRow(
                id=point.id,
                setup=_setup(point),
                measured_seconds=point.measured_seconds,
                predicted_seconds=predicted,
                error=predicted / point.measured_seconds - 1,
                fitted=point.fitted,
                note=point.note,
            )
        )
    for record in PIPELINE_RECORDS:
        for gpus, measured, setting in zip(
            record.gpus, record.measured_seconds, record.settings, strict=True
        ):
            predicted_record = (
                None
                if pipeline_predictor is None
                else _predict_record(pipeline_predictor, record, gpus, efficiencies)
            )
            rows.append(
                CalibrationRow(
                    id=f"{record.id}x{gpus}",
                    setup=f"{record.variant} {record.width}x{record.height}x{record.frames} "
                    f"{record.accelerator} x{gpus}, {record.steps} steps, end to end",
                    measured_seconds=measured,
                    predicted_seconds=predicted_record,
                    error=None if predicted_record is None else predicted_record / measured - 1,
                    fitted=pipeline_predictor is not None,
                    note=setting if pipeline_predictor is not None else "pending: no pipeline predictor",
                    dit_only_seconds=dit_only_seconds(record, gpus, efficiencies),
                )
            )
    errors = [abs(row.error) * 100 for row in rows if row.fitted and row.error is not None]
    return CalibrationTable(rows=tuple(rows), mape=float(np.mean(errors)), max_abs_error=float(max(errors)))
