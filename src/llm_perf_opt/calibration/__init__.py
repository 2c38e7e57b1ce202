"""Calibration: the efficiency factors fitted to published Wan2.1 timings, and the table that shows
how well the model reproduces them.

The records (``records.json``, structured by the project's converter) each say what was run and
timed: variant, implementation, device, GPUs and flags, the video, steps and guidance, and whether
the whole generation (``end_to_end``) or the transformer's forwards alone (``dit_only``) were timed.
Each is predicted by the one compiled engine of its deployment
(:func:`llm_perf_opt.deployment.engine.run_model`): the ``total`` or the ``diffusion`` stage.

The fit (:func:`fit_efficiencies`, over :func:`fit_targets`) is ``scipy.optimize.least_squares``
with bounds over the logarithms of the free factors: residuals are ``log(predicted / measured)`` per
fitted record (per :class:`FitTarget`: a record, or any other measured time the engine predicts as a
sum of its outputs, such as a profiled module's) plus a
weak pull of each factor towards its prior, ``√(prior_weight · confidence) · log(value / prior)``,
which settles directions the records do not determine; priors from kernel measurements pull harder
than assumed ones. Trial factors are inputs of the compiled function, so a fit recompiles nothing;
the finite-difference Jacobian evaluates every trial column in one call. The shipped
``efficiencies.json`` holds its result rounded to three decimals, and a test refits and compares.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from attrs import evolve, field, frozen

from llm_perf_opt.contracts.converter import read_json, structure
from llm_perf_opt.deployment.engine import RunModel, run_model
from llm_perf_opt.deployment.value import Deployment, Parallelism
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, FACTOR_KEYS, EfficiencyTable
from llm_perf_opt.models import build_deployment
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.validation import FieldError, flag, integer, one_of, text

__all__ = [
    "CALIBRATION",
    "CalibrationFile",
    "CalibrationRecord",
    "CalibrationRow",
    "CalibrationTable",
    "FitResult",
    "FitTarget",
    "FreeFactor",
    "StackSummary",
    "calibration_rows",
    "calibration_table",
    "fit_efficiencies",
    "fit_targets",
    "load_calibration",
    "predict_record",
    "predict_targets",
    "record_deployment",
    "record_target",
]

FloatArray = npt.NDArray[np.float64]

CONFIDENCE_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType({"high": 1.0, "medium": 0.5, "low": 0.25})
"""How much a record's residual counts in the fit, by the confidence its source warrants: first-party
or fully specified (high), third-party or partly specified (medium), uncertain interpretation (low).
The residual is multiplied by the square root of the weight."""
FITTED_ON: Final = ("reference", "all")
"""Which records determine a free factor: ``reference``, the records of the eager reference setups
(no stack: C1–C8), so that stack records never move the reference predictions; ``all``, every
fitted record (the stack factors, which only stack records depend on)."""


WHAT_TIMED: Final = ("end_to_end", "dit_only", "per_step")
"""``end_to_end``: one whole generation; ``dit_only``: all transformer forwards of the run;
``per_step``: one denoising step (its forwards), the transformer stage over the steps."""
PADDED_TEXT_LEN: Final = 512


def _positive(_: object, attribute: Any, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise FieldError((attribute.name,), f"must be a number > 0, got {value!r}")


def _optional_text(_: object, attribute: Any, value: str | None) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise FieldError((attribute.name,), f"must be a non-empty string or absent, got {value!r}")


def _optional_positive(instance: object, attribute: Any, value: float | None) -> None:
    if value is not None:
        _positive(instance, attribute, value)


@frozen(kw_only=True)
class CalibrationRecord:
    """One published timing and the setup it was measured on.

    Attributes:
        id: ``C4``, ``C1x8`` …
        source: where it was published.
        variant, implementation, accelerator: what ran where (the implementation closest to the
            code timed; ``None``: the stack's, or the official code's without a stack).
        stack: the inference stack preset it ran on (``None``: the eager reference setup of
            ``generate.py`` or Diffusers as the flags say); its defaults fill what the record does
            not state.
        gemm_precision: the linear layers' precision where stated (``None``: the stack's).
        fusion: the fusion mode where stated (``torch-compile`` …; ``None``: the stack's).
        confidence: how far the record is to be trusted (:data:`CONFIDENCE_WEIGHTS`).
        gpus, ulysses, ring, fsdp, t5_fsdp, offload, t5_cpu: the setup (``generate.py``'s flags;
            offload ``none``, ``model`` or ``group``).
        attention_kernel: the kernel presumed (``None``: the stack's default on the device).
        frames, height, width, steps, guidance: the video and the sampling loop.
        what_timed: one of :data:`WHAT_TIMED`.
        measured_seconds: the published time.
        measured_peak_gb: the published peak memory per GPU (GB), if any.
        fitted: whether the fit uses it.
        note: what was assumed about the setup.
    """

    id: str = field(validator=text())
    source: str = field(validator=text())
    variant: str = field(validator=text())
    accelerator: str = field(validator=text())
    gpus: int = field(validator=integer(1))
    ulysses: int = field(default=1, validator=integer(1))
    ring: int = field(default=1, validator=integer(1))
    fsdp: bool = field(default=False, validator=flag())
    t5_fsdp: bool = field(default=False, validator=flag())
    offload: str = field(default="none")
    t5_cpu: bool = field(default=False, validator=flag())
    frames: int = field(validator=integer(1))
    height: int = field(validator=integer(1))
    width: int = field(validator=integer(1))
    steps: int = field(validator=integer(1))
    guidance: bool = field(validator=flag())
    what_timed: str = field(validator=one_of(WHAT_TIMED))
    measured_seconds: float = field(validator=_positive)
    measured_peak_gb: float | None = field(default=None, validator=_optional_positive)
    fitted: bool = field(default=True, validator=flag())
    note: str = ""
    implementation: str | None = field(default=None, validator=_optional_text)
    attention_kernel: str | None = field(default=None, validator=_optional_text)
    stack: str | None = field(default=None, validator=_optional_text)
    gemm_precision: str | None = field(default=None, validator=_optional_text)
    fusion: str | None = field(default=None, validator=_optional_text)
    confidence: str = field(default="high", validator=one_of(tuple(CONFIDENCE_WEIGHTS)))

    @property
    def output(self) -> str:
        """The engine output this record measured."""
        return "total" if self.what_timed == "end_to_end" else "stage.diffusion"

    @property
    def per(self) -> int:
        """What the output is divided by: the steps for a per-step time, else 1."""
        return self.steps if self.what_timed == "per_step" else 1

    @property
    def workload(self) -> Workload:
        return Workload(
            batch=1,
            frames=self.frames,
            height=self.height,
            width=self.width,
            steps=self.steps,
            text_len=PADDED_TEXT_LEN,
        )


@frozen(kw_only=True)
class FreeFactor:
    """One fitted factor, possibly tied across several cells of the efficiency table.

    Attributes:
        name: a short name for reports.
        cells: the ``[scope, key]`` cells of the table that take its value (``family:hopper``).
        prior: the value the kernel measurements suggest; the fit starts there and is pulled
            weakly towards it.
        basis: where the prior comes from.
        lower, upper: the bounds.
        confidence: how strongly the fit is pulled towards the prior, relative to a prior taken
            from a kernel measurement (1); an assumed prior pulls weakly.
        fitted_on: which records determine it (:data:`FITTED_ON`).
    """

    name: str = field(validator=text())
    cells: tuple[tuple[str, str], ...]
    prior: float = field(validator=_positive)
    basis: str = ""
    lower: float = field(default=0.05, validator=_positive)
    upper: float = field(default=1.0, validator=_positive)
    confidence: float = field(default=1.0, validator=_positive)
    fitted_on: str = field(default="reference", validator=one_of(FITTED_ON))

    def __attrs_post_init__(self) -> None:
        if not self.lower <= self.prior <= self.upper:
            raise FieldError(("prior",), f"must lie in [{self.lower:g}, {self.upper:g}], got {self.prior:g}")
        for index, (_, key) in enumerate(self.cells):
            if key not in FACTOR_KEYS:
                raise FieldError(
                    ("cells", str(index)), f"unknown factor {key!r}; known: {', '.join(FACTOR_KEYS)}"
                )


@frozen(kw_only=True)
class CalibrationFile:
    """The schema of ``records.json``."""

    schema_version: int = field(default=1, validator=integer(1))
    description: str = ""
    prior_weight: float = field(validator=_positive)
    free_factors: tuple[FreeFactor, ...]
    records: tuple[CalibrationRecord, ...]

    def __attrs_post_init__(self) -> None:
        ids = [record.id for record in self.records]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise FieldError(("records",), f"record ids must be unique, got {', '.join(duplicated)} twice")


@frozen(kw_only=True)
class RecordFile:
    """The schema of ``stack_records.json``: more records for the one fit."""

    description: str = ""
    records: tuple[CalibrationRecord, ...]


def load_calibration(path: str | Path | None = None) -> CalibrationFile:
    """The shipped records — ``records.json`` (C1–C8) and ``stack_records.json`` (optimised
    stacks), fitted together — or those of the JSON file ``path`` (the schema of ``records.json``)."""
    if path is None:
        folder = resources.files("llm_perf_opt.calibration")
        where = "built-in calibration records.json"
        data = json.loads(folder.joinpath("records.json").read_text("utf-8"))
        base = structure(data, CalibrationFile, where=where)
        where = "built-in calibration stack_records.json"
        more = structure(
            json.loads(folder.joinpath("stack_records.json").read_text("utf-8")), RecordFile, where=where
        )
        return evolve(base, records=(*base.records, *more.records))
    return structure(read_json(path), CalibrationFile, where=str(path))


CALIBRATION: Final = load_calibration()
"""The shipped calibration records and free factors."""


def record_deployment(record: CalibrationRecord, efficiencies: EfficiencyTable = EFFICIENCIES) -> Deployment:
    """The :class:`Deployment` a record was measured on."""
    if record.stack is not None:
        return build_deployment(
            record.variant,
            stack=record.stack,
            implementation=record.implementation,
            accelerator=record.accelerator,
            gpus=record.gpus,
            offload=None if record.offload == "none" else record.offload,
            attention_kernel=record.attention_kernel,
            gemm_precision=record.gemm_precision,
            fusion=record.fusion,
            guidance=record.guidance,
            efficiencies=efficiencies,
        )
    return build_deployment(
        record.variant,
        implementation=record.implementation,
        accelerator=record.accelerator,
        gpus=record.gpus,
        parallelism=Parallelism(record.ulysses, record.ring, record.fsdp),
        offload=record.offload,
        t5_cpu=record.t5_cpu,
        t5_fsdp=record.t5_fsdp,
        attention_kernel=record.attention_kernel,
        gemm_precision=record.gemm_precision,
        guidance=record.guidance,
        efficiencies=efficiencies,
    )


@functools.cache
def _model(record: CalibrationRecord) -> RunModel:
    return run_model(record_deployment(record))


def _factor_columns(model: RunModel, tables: Sequence[EfficiencyTable]) -> dict[str, FloatArray]:
    device, stack = model.deployment.accelerator, model.deployment.stack
    rows = [table.for_device(device, stack).factors for table in tables]
    return {key: np.array([row.get(key, 1.0) for row in rows]) for key in FACTOR_KEYS}


def predict_record(record: CalibrationRecord, efficiencies: EfficiencyTable = EFFICIENCIES) -> float:
    """Predicted seconds of what a record timed, under ``efficiencies``."""
    model = _model(record)
    factors = _factor_columns(model, [efficiencies])
    value = model.evaluate(record.workload, factors, names=(record.output,))[record.output][0]
    return float(value) / record.per


@frozen(kw_only=True, eq=False)
class FitTarget:
    """One measured time the fit matches: ``scale × Σ outputs`` of a compiled run at a workload.

    Attributes:
        id: names the target in :attr:`FitResult.residuals`.
        model: the compiled run that predicts it.
        workload: the workload it was measured at.
        outputs: the engine outputs whose sum is the prediction (``total``, ``own.<module id>`` …).
        measured_seconds: the measured time.
        scale: what the summed outputs are multiplied by (a trace's calls per run's calls; one over
            the steps for a per-step record).
        weight: the target's weight in the fit (a record's :data:`CONFIDENCE_WEIGHTS`).
    """

    id: str = field(validator=text())
    model: RunModel
    workload: Workload
    outputs: tuple[str, ...]
    measured_seconds: float = field(validator=_positive)
    scale: float = field(default=1.0, validator=_positive)
    weight: float = field(default=1.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if not self.outputs:
            raise FieldError(("outputs",), "must name at least one engine output, got none")


def record_target(record: CalibrationRecord) -> FitTarget:
    """A calibration record as a fit target: the output it timed, of its deployment's run, weighted
    by its source's confidence."""
    return FitTarget(
        id=record.id,
        model=_model(record),
        workload=record.workload,
        outputs=(record.output,),
        measured_seconds=record.measured_seconds,
        scale=1.0 / record.per,
        weight=CONFIDENCE_WEIGHTS[record.confidence],
    )


def _predict_many(targets: Sequence[FitTarget], tables: Sequence[EfficiencyTable]) -> FloatArray:
    """Predictions of every target (columns) under every table (rows), one engine call per compiled
    run and workload (every output its targets need, all trial tables as factor columns)."""
    out = np.empty((len(tables), len(targets)))
    groups: dict[tuple[int, int], list[int]] = {}
    for column, target in enumerate(targets):
        groups.setdefault((id(target.model), id(target.workload)), []).append(column)
    for columns in groups.values():
        first = targets[columns[0]]
        names = tuple(dict.fromkeys(name for c in columns for name in targets[c].outputs))
        values = first.model.evaluate(first.workload, _factor_columns(first.model, tables), names=names)
        for column in columns:
            target = targets[column]
            summed = values[target.outputs[0]]
            for name in target.outputs[1:]:
                summed = summed + values[name]
            out[:, column] = summed if target.scale == 1.0 else target.scale * summed
    return out


def predict_targets(targets: Sequence[FitTarget], efficiencies: EfficiencyTable = EFFICIENCIES) -> FloatArray:
    """Predicted seconds of every target under ``efficiencies``."""
    predicted: FloatArray = _predict_many(targets, [efficiencies])[0]
    return predicted


def _apply(base: EfficiencyTable, free: Sequence[FreeFactor], values: Sequence[float]) -> EfficiencyTable:
    return base.with_values(
        {cell: float(v) for factor, v in zip(free, values, strict=True) for cell in factor.cells}
    )


@frozen(kw_only=True)
class FitResult:
    """The outcome of :func:`fit_efficiencies`.

    Attributes:
        table: the efficiency table with the fitted values.
        values: fitted value per free factor name.
        priors: prior per free factor name.
        residuals: ``log(predicted / measured)`` per fitted record id (per target id).
        evaluations: residual evaluations the solver made.
    """

    table: EfficiencyTable
    values: Mapping[str, float]
    priors: Mapping[str, float]
    residuals: Mapping[str, float]
    evaluations: int


def _least_squares(
    targets: Sequence[FitTarget],
    free: Sequence[FreeFactor],
    base: EfficiencyTable,
    prior_weight: float,
) -> tuple[list[float], dict[str, float], int]:
    """Fitted values of ``free`` on ``targets`` over ``base``, the targets' log residuals and the
    evaluations the solver made."""
    measured = np.log([target.measured_seconds for target in targets])
    target_weight = np.sqrt([target.weight for target in targets])
    prior = np.log([factor.prior for factor in free])
    weight = np.sqrt(prior_weight * np.array([factor.confidence for factor in free]))
    lower = np.log([factor.lower for factor in free])
    upper = np.log([factor.upper for factor in free])

    def predicted(thetas: FloatArray) -> FloatArray:
        tables = [_apply(base, free, np.exp(theta).tolist()) for theta in thetas]
        return np.log(_predict_many(targets, tables))

    def residuals(theta: FloatArray) -> FloatArray:
        fit = target_weight * (predicted(theta[None, :])[0] - measured)
        return np.concatenate([fit, weight * (theta - prior)])

    def jacobian(theta: FloatArray) -> FloatArray:
        step = 1e-6
        steps = np.where(theta + step <= upper, step, -step)
        trials = np.vstack([theta, theta + np.diag(steps)])
        logs = predicted(trials)
        fit = ((logs[1:] - logs[0]) / steps[:, None]).T * target_weight[:, None]
        return np.vstack([fit, np.diag(weight)])

    import scipy.optimize  # heavy; only a fit needs it

    solution = scipy.optimize.least_squares(
        residuals,
        prior,
        jac=jacobian,
        bounds=(lower, upper),
        method="trf",
        xtol=1e-12,
        ftol=1e-12,
        gtol=1e-12,
    )
    final = residuals(solution.x)[: len(targets)] / target_weight
    return (
        np.exp(solution.x).tolist(),
        {t.id: float(x) for t, x in zip(targets, final, strict=True)},
        int(solution.nfev),
    )


def fit_efficiencies(
    calibration: CalibrationFile = CALIBRATION,
    base: EfficiencyTable = EFFICIENCIES,
    *,
    free: Sequence[FreeFactor] | None = None,
) -> FitResult:
    """Fit the free factors to the fitted records (see the module docstring). Deterministic.

    The factors fitted on the reference records come first (on those records alone); the factors
    fitted on all records follow, with the first ones at their fitted values."""
    free = calibration.free_factors if free is None else tuple(free)
    if not free:
        raise LlmPerfOptError("free: expected at least one factor to fit, got none")
    records = [record for record in calibration.records if record.fitted]
    if not records:
        raise LlmPerfOptError("records: expected at least one fitted record, got none")
    values: dict[str, float] = {}
    residuals: dict[str, float] = {}
    evaluations = 0
    table = base
    for fitted_on in FITTED_ON:
        group = [factor for factor in free if factor.fitted_on == fitted_on]
        used = [record_target(r) for r in records if fitted_on == "all" or r.stack is None]
        if not group or not used:
            continue
        fitted, residuals, count = _least_squares(used, group, table, calibration.prior_weight)
        table = _apply(table, group, fitted)
        values.update({f.name: v for f, v in zip(group, fitted, strict=True)})
        evaluations += count
    return FitResult(
        table=table,
        values=MappingProxyType({f.name: values[f.name] for f in free}),
        priors=MappingProxyType({f.name: f.prior for f in free}),
        residuals=MappingProxyType(residuals),
        evaluations=evaluations,
    )


def fit_targets(
    targets: Sequence[FitTarget],
    free: Sequence[FreeFactor],
    base: EfficiencyTable = EFFICIENCIES,
    *,
    prior_weight: float = CALIBRATION.prior_weight,
) -> FitResult:
    """Fit the ``free`` factors of ``base`` to ``targets`` in one pass (see the module docstring):
    the least-squares fit behind :func:`fit_efficiencies`, for any measured times the engine
    predicts (a profiled run's modules). Deterministic."""
    free = tuple(free)
    if not free:
        raise LlmPerfOptError("free: expected at least one factor to fit, got none")
    if not targets:
        raise LlmPerfOptError("targets: expected at least one measured time to fit, got none")
    fitted, residuals, evaluations = _least_squares(list(targets), free, base, prior_weight)
    return FitResult(
        table=_apply(base, free, fitted),
        values=MappingProxyType({f.name: v for f, v in zip(free, fitted, strict=True)}),
        priors=MappingProxyType({f.name: f.prior for f in free}),
        residuals=MappingProxyType(residuals),
        evaluations=evaluations,
    )


@frozen(kw_only=True)
class CalibrationRow:
    """One row of the calibration table.

    Attributes:
        record: the record.
        setup: variant, device, setup and what was timed, in words.
        predicted_seconds: the model's time.
        error: ``predicted / measured − 1``.
        dit_only_seconds: for an end-to-end record, the transformer stage of the same prediction.
        predicted_peak_gb: predicted peak memory per GPU (GB), for comparison with the published one.
        stack: the stack the deployment ran (``official`` or ``diffusers`` for the eager references).
    """

    record: CalibrationRecord
    setup: str
    predicted_seconds: float
    error: float
    dit_only_seconds: float | None
    predicted_peak_gb: float
    stack: str = "official"


@frozen(kw_only=True)
class StackSummary:
    """How well the model reproduces one stack's records.

    Attributes:
        stack: the stack's name.
        points: its records counted.
        mape: their mean absolute percentage error, in percent.
        max_abs_error: their largest |error|, in percent.
    """

    stack: str
    points: int
    mape: float
    max_abs_error: float


@frozen(kw_only=True)
class CalibrationTable:
    """Each record's prediction, measurement and error, and the MAPE of the fitted ones.

    Attributes:
        rows: one per record.
        mape: mean absolute percentage error over the fitted rows, in percent.
        max_abs_error: largest |error| among them, in percent.
    """

    rows: tuple[CalibrationRow, ...]
    mape: float
    max_abs_error: float

    def text(self) -> str:
        """The table as aligned plain text (with the published and predicted peak memory per GPU
        where a record has one)."""
        ids = max(16, *(len(row.record.id) + 1 for row in self.rows))
        setups = max(72, *(len(row.setup) + 1 for row in self.rows))
        header = (
            f"{'record':<{ids}}{'setup':<{setups}}{'measured s':>12}{'predicted s':>13}{'error':>9}  fitted"
            f"{'DiT only s':>12}{'peak GB':>16}"
        )
        lines = [header, "-" * len(header)]
        for row in self.rows:
            dit_only = "" if row.dit_only_seconds is None else f"{row.dit_only_seconds:.1f}"
            published = row.record.measured_peak_gb
            peak = "" if published is None else f"{published:.2f} → {row.predicted_peak_gb:.2f}"
            lines.append(
                f"{row.record.id:<{ids}}{row.setup:<{setups}}{row.record.measured_seconds:>12.2f}"
                f"{row.predicted_seconds:>13.2f}{row.error * 100:>+8.1f}%  "
                f"{'yes' if row.record.fitted else 'no ':<6}{dit_only:>12}{peak:>16}"
            )
        fitted = any(row.record.fitted for row in self.rows)
        which = "the fitted records" if fitted else "all records (none fitted)"
        lines.append(f"MAPE over {which}: {self.mape:.1f}%  (largest |error| {self.max_abs_error:.1f}%)")
        lines.append("")
        lines.append(f"{'stack':<20}{'points':>7}{'MAPE':>8}{'largest':>9}")
        for summary in self.by_stack(fitted_only=fitted):
            lines.append(
                f"{summary.stack:<20}{summary.points:>7}{summary.mape:>7.1f}%{summary.max_abs_error:>8.1f}%"
            )
        return "\n".join(lines)

    def by_stack(self, *, fitted_only: bool = True) -> tuple[StackSummary, ...]:
        """Points, MAPE and largest error per stack (of the fitted records, or of all)."""
        errors: dict[str, list[float]] = {}
        for row in self.rows:
            if row.record.fitted or not fitted_only:
                errors.setdefault(row.stack, []).append(abs(row.error) * 100)
        return tuple(
            StackSummary(
                stack=name, points=len(values), mape=float(np.mean(values)), max_abs_error=max(values)
            )
            for name, values in errors.items()
        )


def _setup(record: CalibrationRecord, deployment: Deployment) -> str:
    timed = {"end_to_end": "end to end", "dit_only": "DiT only", "per_step": "per step"}[record.what_timed]
    offload = {"none": "", "model": ", offload", "group": ", group offload"}.get(deployment.offload, "")
    stack = "" if record.stack is None else f"{record.stack} "
    kernel = deployment.attention_kernel
    if deployment.gemm_precision != "bf16":
        kernel += f" {deployment.gemm_precision}"
    return (
        f"{record.variant} {record.width}x{record.height}x{record.frames} {record.accelerator} "
        f"x{record.gpus} {stack}{kernel}{offload}, {record.steps} steps, {timed}"
    )


def calibration_rows(
    records: Sequence[CalibrationRecord], efficiencies: EfficiencyTable = EFFICIENCIES
) -> tuple[CalibrationRow, ...]:
    """Each record with the model's prediction under ``efficiencies``, the measurement and the error."""
    rows = []
    for record in records:
        model = _model(record)
        values = model.evaluate(record.workload, _factor_columns(model, [efficiencies]))
        predicted = float(values[record.output][0]) / record.per
        rows.append(
            CalibrationRow(
                record=record,
                setup=_setup(record, model.deployment),
                predicted_seconds=predicted,
                error=predicted / record.measured_seconds - 1,
                dit_only_seconds=float(values["stage.diffusion"][0])
                if record.what_timed == "end_to_end"
                else None,
                predicted_peak_gb=float(values["peak_memory"][0]) / 1e9,
                stack=model.deployment.stack,
            )
        )
    return tuple(rows)


def calibration_table(
    efficiencies: EfficiencyTable = EFFICIENCIES, calibration: CalibrationFile = CALIBRATION
) -> CalibrationTable:
    """Every record with the model's prediction, the measurement and the error."""
    rows = calibration_rows(calibration.records, efficiencies)
    errors = [abs(row.error) * 100 for row in rows if row.record.fitted]
    return CalibrationTable(rows=rows, mape=float(np.mean(errors)), max_abs_error=float(max(errors)))
