"""Calibration: the efficiency factors fitted to published Wan2.1 timings, and the table that shows
how well the model reproduces them.

The records (``records.json``, structured by the project's converter) each say what was run and
timed: variant, implementation, device, GPUs and flags, the video, steps and guidance, and whether
the whole generation (``end_to_end``) or the transformer's forwards alone (``dit_only``) were timed.
Each is predicted by the one compiled engine of its deployment
(:func:`llm_perf_opt.deployment.engine.run_model`): the ``total`` or the ``diffusion`` stage.

The fit (:func:`fit_efficiencies`) is ``scipy.optimize.least_squares`` with bounds over the
logarithms of the free factors: residuals are ``log(predicted / measured)`` per fitted record plus a
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
from attrs import field, frozen

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
    "FreeFactor",
    "calibration_table",
    "fit_efficiencies",
    "load_calibration",
    "predict_record",
    "record_deployment",
]

FloatArray = npt.NDArray[np.float64]

WHAT_TIMED: Final = ("end_to_end", "dit_only")
"""``end_to_end``: one whole generation; ``dit_only``: all transformer forwards of the run."""
PADDED_TEXT_LEN: Final = 512


def _positive(_: object, attribute: Any, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise FieldError((attribute.name,), f"must be a number > 0, got {value!r}")


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
            code timed).
        gpus, ulysses, ring, fsdp, t5_fsdp, offload, t5_cpu: the setup (``generate.py``'s flags;
            offload ``none``, ``model`` or ``group``).
        attention_kernel: the kernel presumed.
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
    implementation: str = field(validator=text())
    accelerator: str = field(validator=text())
    gpus: int = field(validator=integer(1))
    ulysses: int = field(default=1, validator=integer(1))
    ring: int = field(default=1, validator=integer(1))
    fsdp: bool = field(default=False, validator=flag())
    t5_fsdp: bool = field(default=False, validator=flag())
    offload: str = field(default="none")
    t5_cpu: bool = field(default=False, validator=flag())
    attention_kernel: str = field(validator=text())
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

    @property
    def output(self) -> str:
        """The engine output this record measured."""
        return "total" if self.what_timed == "end_to_end" else "stage.diffusion"

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
    """

    name: str = field(validator=text())
    cells: tuple[tuple[str, str], ...]
    prior: float = field(validator=_positive)
    basis: str = ""
    lower: float = field(default=0.05, validator=_positive)
    upper: float = field(default=1.0, validator=_positive)
    confidence: float = field(default=1.0, validator=_positive)

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


def load_calibration(path: str | Path | None = None) -> CalibrationFile:
    """The shipped records (or those of the JSON file ``path``, same schema)."""
    if path is None:
        where = "built-in calibration records.json"
        data = json.loads(
            resources.files("llm_perf_opt.calibration").joinpath("records.json").read_text("utf-8")
        )
        return structure(data, CalibrationFile, where=where)
    return structure(read_json(path), CalibrationFile, where=str(path))


CALIBRATION: Final = load_calibration()
"""The shipped calibration records and free factors."""


def record_deployment(record: CalibrationRecord, efficiencies: EfficiencyTable = EFFICIENCIES) -> Deployment:
    """The :class:`Deployment` a record was measured on."""
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
        guidance=record.guidance,
        efficiencies=efficiencies,
    )


@functools.cache
def _model(record: CalibrationRecord) -> RunModel:
    return run_model(record_deployment(record))


def _factor_columns(model: RunModel, tables: Sequence[EfficiencyTable]) -> dict[str, FloatArray]:
    device = model.deployment.accelerator
    rows = [table.for_device(device).factors for table in tables]
    return {key: np.array([row.get(key, 1.0) for row in rows]) for key in FACTOR_KEYS}


def predict_record(record: CalibrationRecord, efficiencies: EfficiencyTable = EFFICIENCIES) -> float:
    """Predicted seconds of what a record timed, under ``efficiencies``."""
    model = _model(record)
    factors = _factor_columns(model, [efficiencies])
    return float(model.evaluate(record.workload, factors, names=(record.output,))[record.output][0])


def _predict_many(records: Sequence[CalibrationRecord], tables: Sequence[EfficiencyTable]) -> FloatArray:
    """Predictions of every record (columns) under every table (rows), one engine call per record."""
    out = np.empty((len(tables), len(records)))
    for column, record in enumerate(records):
        model = _model(record)
        values = model.evaluate(record.workload, _factor_columns(model, tables), names=(record.output,))
        out[:, column] = values[record.output]
    return out


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
        residuals: ``log(predicted / measured)`` per fitted record id.
        evaluations: residual evaluations the solver made.
    """

    table: EfficiencyTable
    values: Mapping[str, float]
    priors: Mapping[str, float]
    residuals: Mapping[str, float]
    evaluations: int


def fit_efficiencies(
    calibration: CalibrationFile = CALIBRATION,
    base: EfficiencyTable = EFFICIENCIES,
    *,
    free: Sequence[FreeFactor] | None = None,
) -> FitResult:
    """Fit the free factors to the fitted records (see the module docstring). Deterministic."""
    free = calibration.free_factors if free is None else tuple(free)
    if not free:
        raise LlmPerfOptError("free: expected at least one factor to fit, got none")
    records = [record for record in calibration.records if record.fitted]
    if not records:
        raise LlmPerfOptError("records: expected at least one fitted record, got none")
    measured = np.log([record.measured_seconds for record in records])
    prior = np.log([factor.prior for factor in free])
    weight = np.sqrt(calibration.prior_weight * np.array([factor.confidence for factor in free]))
    lower = np.log([factor.lower for factor in free])
    upper = np.log([factor.upper for factor in free])

    def predicted(thetas: FloatArray) -> FloatArray:
        tables = [_apply(base, free, np.exp(theta).tolist()) for theta in thetas]
        return np.log(_predict_many(records, tables))

    def residuals(theta: FloatArray) -> FloatArray:
        return np.concatenate([predicted(theta[None, :])[0] - measured, weight * (theta - prior)])

    def jacobian(theta: FloatArray) -> FloatArray:
        step = 1e-6
        steps = np.where(theta + step <= upper, step, -step)
        trials = np.vstack([theta, theta + np.diag(steps)])
        logs = predicted(trials)
        fit = ((logs[1:] - logs[0]) / steps[:, None]).T
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
    values = np.exp(solution.x).tolist()
    final = residuals(solution.x)
    return FitResult(
        table=_apply(base, free, values),
        values=MappingProxyType({f.name: v for f, v in zip(free, values, strict=True)}),
        priors=MappingProxyType({f.name: f.prior for f in free}),
        residuals=MappingProxyType(
            {r.id: float(x) for r, x in zip(records, final[: len(records)], strict=True)}
        ),
        evaluations=int(solution.nfev),
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
    """

    record: CalibrationRecord
    setup: str
    predicted_seconds: float
    error: float
    dit_only_seconds: float | None
    predicted_peak_gb: float


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
        header = (
            f"{'record':<16}{'setup':<72}{'measured s':>12}{'predicted s':>13}{'error':>9}  fitted"
            f"{'DiT only s':>12}{'peak GB':>16}"
        )
        lines = [header, "-" * len(header)]
        for row in self.rows:
            dit_only = "" if row.dit_only_seconds is None else f"{row.dit_only_seconds:.1f}"
            published = row.record.measured_peak_gb
            peak = "" if published is None else f"{published:.2f} → {row.predicted_peak_gb:.2f}"
            lines.append(
                f"{row.record.id:<16}{row.setup:<72}{row.record.measured_seconds:>12.2f}"
                f"{row.predicted_seconds:>13.2f}{row.error * 100:>+8.1f}%  "
                f"{'yes' if row.record.fitted else 'no ':<6}{dit_only:>12}{peak:>16}"
            )
        lines.append(
            f"MAPE over the fitted records: {self.mape:.1f}%  (largest |error| {self.max_abs_error:.1f}%)"
        )
        return "\n".join(lines)


def _setup(record: CalibrationRecord) -> str:
    timed = "end to end" if record.what_timed == "end_to_end" else "DiT only"
    offload = {"none": "", "model": ", offload", "group": ", group offload"}.get(record.offload, "")
    return (
        f"{record.variant} {record.width}x{record.height}x{record.frames} {record.accelerator} "
        f"x{record.gpus} {record.attention_kernel}{offload}, {record.steps} steps, {timed}"
    )


def calibration_table(
    efficiencies: EfficiencyTable = EFFICIENCIES, calibration: CalibrationFile = CALIBRATION
) -> CalibrationTable:
    """Every record with the model's prediction, the measurement and the error."""
    rows = []
    for record in calibration.records:
        model = _model(record)
        values = model.evaluate(record.workload, _factor_columns(model, [efficiencies]))
        predicted = float(values[record.output][0])
        rows.append(
            CalibrationRow(
                record=record,
                setup=_setup(record),
                predicted_seconds=predicted,
                error=predicted / record.measured_seconds - 1,
                dit_only_seconds=float(values["stage.diffusion"][0])
                if record.what_timed == "end_to_end"
                else None,
                predicted_peak_gb=float(values["peak_memory"][0]) / 1e9,
            )
        )
    errors = [abs(row.error) * 100 for row in rows if row.record.fitted]
    return CalibrationTable(rows=tuple(rows), mape=float(np.mean(errors)), max_abs_error=float(max(errors)))
