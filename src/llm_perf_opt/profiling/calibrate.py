"""Calibrate on a trace: the deployment's efficiency factors fitted to a profiled run by the engine's
own fit, written as an efficiency-table override file, with the residuals per op class.

:func:`trace_targets` turns an imported trace into fit targets of the time engine
(:class:`llm_perf_opt.calibration.FitTarget`): per *unit* — a module id that has ranges in the trace —
the measured seconds (its ranges' own time, over every call in the trace) against the sum of the
engine's ``own.<id>`` outputs of the tree nodes whose work the trace attributes to it, scaled from the
run's calls to the trace's (``trace calls of the stage / the stage's calls per run``). Work and time are
keyed alike on both sides: the analytic own ops of a tree node without a range in the trace (diffusers
runs Wan-VAE's two SiLUs through one unmapped module) move to its nearest ancestor that has one, as
the trace attributes them, and measured time of a range the tree does not declare (``Dropout(0)``,
identity shortcuts) moves to its nearest declared ancestor.

:func:`fit_trace` (:func:`fit_traces` for several traces of one device at once) fits the
deployment's factors to those targets with
:func:`llm_perf_opt.calibration.fit_targets` — the same bounded least squares on ``ln(predicted /
measured)`` with the same weak pull towards the prior as the calibration on published timings; the
priors are the deployment's current factors of its device, and only the factors some target depends
on are fitted (the others are reported as undetermined and left out of the override). The
residuals are reported per op class: each unit is classed by the op class of most of its measured
time. :func:`write_efficiency_override` writes the fitted factors as a device row of the shipped
``efficiencies.json`` schema, which ``--efficiencies`` / ``load_efficiencies`` read, with the
residuals in the row's basis.

The host CPU as the device (``host``) is :func:`host_accelerator`: an accelerator row with the
assumed rates of :data:`llm_perf_opt.hardware.host.DEFAULT_HOST` (every tensor precision at its
matrix rate, its memory bandwidth), whose factors start at the host's reached rates (1, and the vector
rate's share of the matrix rate for element-wise work).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final

import attrs
import sympy
from attrs import frozen

from llm_perf_opt.calibration import CALIBRATION, FitTarget, FreeFactor, fit_targets, predict_targets
from llm_perf_opt.deployment.engine import RunModel
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import Accelerator
from llm_perf_opt.hardware.efficiency import FACTOR_KEYS, EfficiencyTable
from llm_perf_opt.hardware.host import DEFAULT_HOST, HostCpu
from llm_perf_opt.profiling.files import write_atomic
from llm_perf_opt.profiling.op_flops import OP_CLASSES
from llm_perf_opt.profiling.trace import TraceProfile
from llm_perf_opt.symbolic.symbols import Workload

__all__ = [
    "HOST_FAMILY",
    "LOWEST_FACTOR",
    "ClassResidual",
    "TraceFit",
    "TraceUnit",
    "TracedRun",
    "fit_trace",
    "fit_traces",
    "host_accelerator",
    "host_efficiencies",
    "residual_notes",
    "trace_targets",
    "write_efficiency_override",
]

LOWEST_FACTOR: Final = 1e-4
"""Lower bound of a factor fitted to a trace: a profiled run may sit far below the datasheet (a small
model bound by per-operator dispatch, a CPU), further than the published timings' 0.05."""
HOST_FAMILY: Final = "hopper"
"""The family of :func:`host_accelerator`; it only selects efficiency rows, every one of which the
host's own row (:func:`host_efficiencies`) replaces."""
_SENSITIVITY: Final = 0.5
"""A factor is fitted when scaling it by this changes some target's prediction."""
_AT_BOUND: Final = 1e-3
"""A fitted factor within this of a bound, in ln, is reported at the bound."""


def host_accelerator(host: HostCpu = DEFAULT_HOST) -> Accelerator:
    """The host CPU as a device the engine runs on: every tensor precision at the host's matrix rate,
    its memory bandwidth, no GPU link."""
    tflops = host.matmul_flops / 1e12
    return Accelerator(
        name="host",
        display_name=host.name,
        family=HOST_FAMILY,
        peak_tflops={precision: tflops for precision in ("fp32", "tf32", "bf16", "fp16")},
        memory_gb=1024,
        memory_bandwidth_tbps=host.memory_bandwidth / 1e12,
        link_gbps_per_direction=0.0,
        host_link_gbps_per_direction=host.memory_bandwidth / 1e9,
        source=f"the host CPU's assumed rates: {host.basis or host.name}",
    )


def host_efficiencies(base: EfficiencyTable, host: HostCpu = DEFAULT_HOST) -> EfficiencyTable:
    """``base`` with a row for :func:`host_accelerator`: the host's rates are reached rates (1),
    element-wise work at the vector rate's share of the matrix rate."""
    values = {key: 1.0 for key in FACTOR_KEYS}
    values["vector"] = min(1.0, host.vector_flops / host.matmul_flops)
    return base.with_values({("device:host", key): value for key, value in values.items()})


@frozen(kw_only=True)
class TraceUnit:
    """One module id with ranges in the trace: what was measured and which tree nodes predict it.

    Attributes:
        module_id: the id.
        measured_seconds: own time of its ranges (and of undeclared ranges beneath), every call.
        seconds_by_class: :attr:`measured_seconds` by op class.
        nodes: the tree nodes whose own work the trace attributes to it.
    """

    module_id: str
    measured_seconds: float
    seconds_by_class: Mapping[str, float]
    nodes: tuple[str, ...]

    @property
    def op_class(self) -> str:
        """The op class of most of its measured time."""
        return max(OP_CLASSES, key=lambda cls: self.seconds_by_class.get(cls, 0.0))


@frozen(kw_only=True)
class ClassResidual:
    """How well the fitted factors predict the units of one op class.

    Attributes:
        op_class: the class (of most of each unit's measured time).
        units: units of the class.
        measured_seconds, predicted_seconds: their sums, at the fitted factors.
        rms_log_residual: root mean square of ``ln(predicted / measured)`` over them.
        largest_log_residual: the largest ``|ln(predicted / measured)|`` among them.
    """

    op_class: str
    units: int
    measured_seconds: float
    predicted_seconds: float
    rms_log_residual: float
    largest_log_residual: float


@frozen(kw_only=True)
class TraceFit:
    """The factors fitted to a trace and how well they predict it.

    Attributes:
        source: the traces' file names.
        device: the device row the factors belong to.
        factors: fitted value per factor key the trace determines.
        priors: the value each started from (the deployment's).
        residuals: per op class.
        units: the fitted units (targets).
        at_bound: keys whose fitted value sits at a bound (1: the run was faster than the rates allow).
        not_binding: fitted keys no prediction depends on at the fitted values (every op they divide
            is bound by the other side of its roofline): the trace leaves them where the prior pull
            did.
        undetermined: keys no target depends on at the starting values (not fitted, not written).
        unpredicted_seconds: measured time of ranges the tree declares no work for.
        unmeasured: units with analytic work but no measured time (left out of the fit).
        table: the efficiency table with the fitted factors.
    """

    source: str
    device: str
    factors: Mapping[str, float]
    priors: Mapping[str, float]
    residuals: tuple[ClassResidual, ...]
    units: tuple[TraceUnit, ...]
    at_bound: tuple[str, ...]
    not_binding: tuple[str, ...]
    undetermined: tuple[str, ...]
    unpredicted_seconds: float
    unmeasured: tuple[str, ...]
    table: EfficiencyTable


def _nearest(module_id: str, present: Iterable[str]) -> str | None:
    """``module_id`` or its nearest dotted ancestor among ``present``."""
    known = set(present)
    parts = module_id.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def _within(module_id: str, root: str) -> bool:
    return module_id == root or module_id.startswith(f"{root}.")


def trace_targets(
    trace: TraceProfile, model: RunModel, workloads: Mapping[str, Workload]
) -> tuple[tuple[FitTarget, ...], tuple[TraceUnit, ...], float, tuple[str, ...]]:
    """The fit targets of a trace against a compiled run (see the module docstring).

    ``workloads`` maps each traced stage's root id (a node of the run's tree with ranges in the trace:
    the transformer, the VAE) to the workload that stage ran at. Returns the targets, their units, the
    measured seconds no tree node predicts (no declared work, or none that takes time) and the units
    with work but no measured time.
    """
    tree = model.tree
    ranged = {t.module_id for t in trace.modules if t.calls}
    targets: list[FitTarget] = []
    units: list[TraceUnit] = []
    unpredicted = 0.0
    unmeasured: list[str] = []
    if not workloads:
        raise LlmPerfOptError("workloads: expected at least one traced stage, got none")
    for root, workload in workloads.items():
        if root not in tree.nodes:
            raise LlmPerfOptError(f"workloads: {root!r} is not a module of the run's tree")
        if root not in ranged:
            raise LlmPerfOptError(
                f"trace: {trace.source} has no range of {root!r}: it is not a trace of this model's stage"
            )
        run_calls = float(sympy.sympify(tree[root].calls).subs(workload.subs()))
        if not run_calls > 0:
            raise LlmPerfOptError(f"workloads: the run calls {root!r} {run_calls:g} times; nothing to scale")
        scale = trace.module(root).calls / run_calls
        stage_ranges = {r for r in ranged if _within(r, root)}
        nodes: dict[str, list[str]] = defaultdict(list)
        for node in tree:
            if _within(node.id, root) and node.own_breakdown:
                unit = _nearest(node.id, stage_ranges)
                if unit is not None:
                    nodes[unit].append(node.id)
        declared = {i for i in tree.nodes if _within(i, root)} & ranged
        measured: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for timing in trace.modules:
            if timing.calls and _within(timing.module_id, root):
                unit = _nearest(timing.module_id, declared)
                for cls, micros in timing.own_us_by_class.items():
                    if unit is not None and micros:
                        measured[unit][cls] += micros / 1e6
        for unit in sorted(set(nodes) | set(measured)):
            seconds = sum(measured[unit].values()) if unit in measured else 0.0
            if not nodes.get(unit):
                unpredicted += seconds
                continue
            if seconds <= 0:
                unmeasured.append(unit)
                continue
            record = TraceUnit(
                module_id=unit,
                measured_seconds=seconds,
                seconds_by_class=dict(measured[unit]),
                nodes=tuple(nodes[unit]),
            )
            units.append(record)
            targets.append(
                FitTarget(
                    id=unit,
                    model=model,
                    workload=workload,
                    outputs=tuple(f"own.{n}" for n in record.nodes),
                    measured_seconds=seconds,
                    scale=scale,
                )
            )
    if targets:
        predicted = predict_targets(targets, model.deployment.efficiencies)
        kept = [i for i, seconds in enumerate(predicted) if seconds > 0]
        unpredicted += sum(u.measured_seconds for u in units) - sum(units[i].measured_seconds for i in kept)
        targets, units = [targets[i] for i in kept], [units[i] for i in kept]
    if not targets:
        raise LlmPerfOptError(
            f"trace: {trace.source}: no module range has both measured time and analytic work; nothing to fit"
        )
    return tuple(targets), tuple(units), unpredicted, tuple(unmeasured)


def _binding(targets: Sequence[FitTarget], table: EfficiencyTable, device: Accelerator) -> list[str]:
    """The factor keys of ``device`` some target's prediction depends on under ``table``."""
    current = table.for_device(device).factors
    scope = f"device:{device.name}"
    base = predict_targets(targets, table)
    keys = []
    for key in FACTOR_KEYS:
        if key in current:
            moved = predict_targets(targets, table.with_values({(scope, key): current[key] * _SENSITIVITY}))
            if (abs(moved / base - 1) > 1e-9).any():
                keys.append(key)
    return keys


def _free_factors(
    targets: Sequence[FitTarget], table: EfficiencyTable, device: Accelerator
) -> list[FreeFactor]:
    """A free factor per key some target's prediction depends on, starting at the device's value."""
    current = table.for_device(device).factors
    return [
        FreeFactor(
            name=key,
            cells=((f"device:{device.name}", key),),
            prior=max(current[key], LOWEST_FACTOR),
            basis=f"the {device.name} factor before the fit",
            lower=LOWEST_FACTOR,
        )
        for key in _binding(targets, table, device)
    ]


def _class_residuals(units: Sequence[TraceUnit], logs: Sequence[float]) -> tuple[ClassResidual, ...]:
    """Per op class, the units' residuals (``logs``: ln(predicted / measured) per unit, in order)."""
    of_unit = {id(unit): value for unit, value in zip(units, logs, strict=True)}
    rows = []
    for cls in OP_CLASSES:
        chosen = [u for u in units if u.op_class == cls]
        if not chosen:
            continue
        values = [of_unit[id(u)] for u in chosen]
        rows.append(
            ClassResidual(
                op_class=cls,
                units=len(chosen),
                measured_seconds=sum(u.measured_seconds for u in chosen),
                predicted_seconds=sum(u.measured_seconds * math.exp(of_unit[id(u)]) for u in chosen),
                rms_log_residual=math.sqrt(sum(v * v for v in values) / len(values)),
                largest_log_residual=max(abs(v) for v in values),
            )
        )
    return tuple(rows)


@frozen(kw_only=True, eq=False)
class TracedRun:
    """One imported trace and what it ran.

    Attributes:
        trace: the imported trace.
        model: the compiled run of the deployment it was measured on.
        workloads: each traced stage's root id → the workload it ran at (as :func:`trace_targets`).
    """

    trace: TraceProfile
    model: RunModel
    workloads: Mapping[str, Workload]


def fit_traces(runs: Sequence[TracedRun], *, prior_weight: float = CALIBRATION.prior_weight) -> TraceFit:
    """Fit the factors of the runs' device (its row of the first run's efficiency table) to every
    trace's units at once (see the module docstring). The runs must share a device."""
    if not runs:
        raise LlmPerfOptError("traces: expected at least one trace to fit, got none")
    first = runs[0].model.deployment
    table, device = first.efficiencies, first.accelerator
    targets: list[FitTarget] = []
    units: list[TraceUnit] = []
    unpredicted = 0.0
    unmeasured: list[str] = []
    for index, run in enumerate(runs):
        if run.model.deployment.accelerator.name != device.name:
            raise LlmPerfOptError(
                f"traces: {run.trace.source} was measured on {run.model.deployment.accelerator.name}, "
                f"{runs[0].trace.source} on {device.name}: one fit is of one device"
            )
        found, mine, seconds, missing = trace_targets(run.trace, run.model, run.workloads)
        if len(runs) > 1:
            found = tuple(attrs.evolve(t, id=f"{index}:{t.id}") for t in found)
        targets += found
        units += mine
        unpredicted += seconds
        unmeasured += missing
    sources = ", ".join(run.trace.source for run in runs)
    free = _free_factors(targets, table, device)
    if not free:
        raise LlmPerfOptError(f"traces: {sources}: the predictions depend on no efficiency factor")
    result = fit_targets(targets, free, table, prior_weight=prior_weight)
    at_bound = tuple(
        f.name
        for f in free
        if min(abs(math.log(result.values[f.name] / bound)) for bound in (f.lower, f.upper)) < _AT_BOUND
    )
    binding = set(_binding(targets, result.table, device))
    fitted = {f.name for f in free}
    return TraceFit(
        source=sources,
        device=device.name,
        factors=dict(result.values),
        priors=dict(result.priors),
        residuals=_class_residuals(units, [result.residuals[t.id] for t in targets]),
        units=tuple(units),
        at_bound=at_bound,
        not_binding=tuple(f.name for f in free if f.name not in binding),
        undetermined=tuple(key for key in table.for_device(device).factors if key not in fitted),
        unpredicted_seconds=unpredicted,
        unmeasured=tuple(unmeasured),
        table=result.table,
    )


def fit_trace(
    trace: TraceProfile,
    model: RunModel,
    workloads: Mapping[str, Workload],
    *,
    prior_weight: float = CALIBRATION.prior_weight,
) -> TraceFit:
    """:func:`fit_traces` of one trace."""
    return fit_traces([TracedRun(trace=trace, model=model, workloads=workloads)], prior_weight=prior_weight)


def residual_notes(fit: TraceFit) -> str:
    """The residuals per op class in one line, for the override file's basis."""
    parts = [
        f"{r.op_class} {r.rms_log_residual:.3f} over {r.units} units (predicted {r.predicted_seconds:.4g} s "
        f"of measured {r.measured_seconds:.4g} s)"
        for r in fit.residuals
    ]
    return "residuals per op class, RMS of ln(predicted / measured): " + "; ".join(parts)


def write_efficiency_override(fit: TraceFit, path: Path, *, basis: str) -> Path:
    """Write the fitted factors for ``fit.device`` as an efficiency-table override file (the schema of
    the shipped ``efficiencies.json``, read by ``load_efficiencies``) with the residuals per op class in
    the row's basis, through a temporary file and a rename."""
    factors: dict[str, object] = {}
    attention: dict[str, float] = {}
    for key, value in sorted(fit.factors.items()):
        if key.startswith("attention."):
            attention[key.removeprefix("attention.")] = float(f"{value:.6g}")
        else:
            factors[key] = float(f"{value:.6g}")
    if attention:
        factors["attention"] = attention
    row = {"factors": factors, "basis": f"{basis}; {residual_notes(fit)}"}
    document = {"schema_version": 1, "devices": {fit.device: row}}
    write_atomic(Path(path), json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return Path(path)
