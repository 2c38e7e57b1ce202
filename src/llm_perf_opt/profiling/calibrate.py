"""Calibrate on a trace: what an efficiency fit needs, and a draft fit of the efficiency factors.

:func:`fit_samples` is the one function that turns an imported trace and the module tree it ran into
fit data: per *unit* (a module id that has ranges in the trace) and op class, the measured seconds and
the roofline terms of the analytic work the unit did in the trace — per op kind, its compute seconds
and memory seconds at efficiency 1 and the two factor keys that divide them — so that
``Σ max(compute / η[compute key], memory / η[memory key])`` is the unit's predicted time.

Work and time are keyed alike on both sides: the analytic own ops of a tree node without a range in
the trace (diffusers runs Wan-VAE's two SiLUs through one unmapped module) move to its nearest ancestor
that has one, as the trace attributes them, and measured time of a range the tree does not declare
(``Dropout(0)``, identity shortcuts) moves to its nearest declared ancestor. The analytic work is the
tree's own cost per call × the node's calls per root call × the root calls the trace measured.

:func:`draft_fit` fits one factor per key to every sample with ``scipy.optimize.least_squares`` on
log time ratios (every factor in (0, 1]), reports the residuals per op class, and
:func:`write_efficiency_override` writes the factors as a file of the shipped ``efficiencies.json``
schema that ``--efficiencies`` / ``load_efficiencies`` read. The fit goes through one adapter,
:func:`_fit_factors`: the time engine's own fit is to replace it.

Rates: a device of the accelerator table (its peak at each op's precision, its memory bandwidth) or the
host CPU (``host``: the assumed rates of ``llm_perf_opt.hardware.host.DEFAULT_HOST``: matmul rate for
matrix products, convolutions and attention, vector rate for element-wise work).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import sympy
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.profiling.files import write_atomic
from llm_perf_opt.profiling.op_flops import OP_CLASSES
from llm_perf_opt.profiling.trace import TraceProfile
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.symbolic.symbols import Workload

if TYPE_CHECKING:
    from llm_perf_opt.hardware.efficiency import EfficiencyTable

__all__ = [
    "CalibrationFit",
    "ClassResidual",
    "FitSample",
    "FitTerm",
    "canonical_device",
    "draft_fit",
    "fit_samples",
    "fitted_table",
    "write_efficiency_override",
]

_SMALLEST_FACTOR: Final = 1e-6
"""Lower bound of a fitted factor (the fit works on its logarithm)."""


@frozen(kw_only=True)
class FitTerm:
    """One op kind of a unit, over the trace's calls, before efficiency factors."""

    kind: tuple[str, str]
    """(primitive, dtype) of the op kind."""
    flops: float
    """Its work: FLOPs (matrix products, convolutions, attention) or element-wise FLOPs."""
    bytes_moved: float
    """Bytes read and written."""
    compute_seconds: float
    """flops / peak at its precision."""
    compute_factor: str
    """The factor key dividing :attr:`compute_seconds`."""
    memory_seconds: float
    """bytes / memory bandwidth."""
    memory_factor: str
    """The factor key dividing :attr:`memory_seconds`."""


@frozen(kw_only=True)
class FitSample:
    """One unit and op class: measured seconds against the terms that predict them."""

    module_id: str
    op_class: str
    measured_seconds: float
    terms: tuple[FitTerm, ...]

    def predicted_seconds(self, factors: Mapping[str, float]) -> float:
        """Σ over the terms of ``max(compute / η_compute, memory / η_memory)``."""
        return sum(
            max(t.compute_seconds / factors[t.compute_factor], t.memory_seconds / factors[t.memory_factor])
            for t in self.terms
        )

    @property
    def flops(self) -> float:
        """Work of every term."""
        return sum(t.flops for t in self.terms)

    @property
    def bytes_moved(self) -> float:
        """Bytes of every term."""
        return sum(t.bytes_moved for t in self.terms)


@frozen(kw_only=True)
class ClassResidual:
    """How well the fitted factors predict one op class."""

    op_class: str
    samples: int
    measured_seconds: float
    predicted_seconds: float
    rms_log_residual: float
    """Root mean square of ``ln(predicted / measured)`` over the class's samples."""


@frozen(kw_only=True)
class CalibrationFit:
    """Fitted factors and residuals."""

    device: str
    factors: dict[str, float]
    """Factor key → fitted fraction, for every key some sample uses."""
    residuals: tuple[ClassResidual, ...]
    samples: int
    at_bound: tuple[str, ...]
    """Keys whose fitted value sits at 1 (the device ran faster than its assumed peak allows) or at the
    lower bound."""
    undetermined: tuple[str, ...]
    """Keys no term is bound by at the fitted factors: the trace says nothing about them, their value is
    the fit's starting point."""


@frozen
class _Rates:
    name: str
    tensor_flops: Mapping[str, float] | None
    """Peak FLOP/s per precision (an accelerator); ``None`` for the host."""
    host_tensor: float
    host_vector: float
    bandwidth: float

    def peak(self, op_class: str, precision: str) -> float:
        if self.tensor_flops is not None:
            if precision not in self.tensor_flops:
                raise LlmPerfOptError(f"precision: {self.name} has no {precision!r} rate")
            return self.tensor_flops[precision]
        return self.host_vector if op_class == "elementwise" else self.host_tensor


def _rates(device: str) -> _Rates:
    """The rates of a table device or of the host CPU: the one place this module reads devices."""
    from llm_perf_opt.hardware.accelerators import PRECISIONS, get_accelerator
    from llm_perf_opt.hardware.host import DEFAULT_HOST

    if device == "host":
        return _Rates(
            DEFAULT_HOST.name,
            None,
            DEFAULT_HOST.matmul_flops,
            DEFAULT_HOST.vector_flops,
            DEFAULT_HOST.memory_bandwidth,
        )
    accelerator = get_accelerator(device)
    peaks = {p: accelerator.peak_flops(p) for p in PRECISIONS if accelerator.supports(p)}
    return _Rates(accelerator.name, peaks, 0.0, 0.0, accelerator.memory_bandwidth)


def canonical_device(device: str) -> str:
    """The table's name of a device (``h100`` → ``h100-sxm``), or ``host``: the name an override row needs."""
    return _rates(device).name


def _nearest(module_id: str, present: Iterable[str]) -> str | None:
    """``module_id`` or its nearest dotted ancestor among ``present``."""
    known = set(present)
    parts = module_id.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def fit_samples(
    trace: TraceProfile,
    tree: ModuleTree,
    workload: Workload,
    device: str,
    *,
    attention_kernel: str = "sdpa",
) -> tuple[FitSample, ...]:
    """Measured seconds and analytic roofline terms per unit and op class (see the module docstring).

    ``tree`` and ``workload`` are what the traced model ran (its stage's tree); the root calls come from
    the trace (the root id's range count). Raises when the trace has no range of the tree's root.
    """
    from llm_perf_opt.hardware.roofline import op_class, roofline_rule

    root = tree.root_id
    ranged = {t.module_id for t in trace.modules if t.calls}
    if root not in ranged:
        raise LlmPerfOptError(
            f"trace: {trace.source} has no range of {root!r}: it is not a trace of this tree's model"
        )
    runs = trace.module(root).calls
    rates = _rates(device)
    values = workload.subs()
    terms: dict[tuple[str, str], list[FitTerm]] = defaultdict(list)
    for node in tree:
        if not node.own_breakdown:
            continue
        unit = _nearest(node.id, ranged)
        if unit is None:
            continue
        calls = runs * float(sympy.sympify(node.calls).subs(values))
        if not calls:
            continue
        for kind, cost in node.own_breakdown.items():
            rule = roofline_rule(kind, attention_kernel)
            cls = op_class(kind[0]).value
            work = calls * float(sympy.sympify(getattr(cost, rule.work)).subs(values))
            traffic = calls * float(sympy.sympify(cost.bytes_read + cost.bytes_written).subs(values))
            if not work and not traffic:
                continue
            terms[unit, cls].append(
                FitTerm(
                    kind=kind,
                    flops=work,
                    bytes_moved=traffic,
                    compute_seconds=work / rates.peak(cls, rule.precision),
                    compute_factor=rule.compute_factor,
                    memory_seconds=traffic / rates.bandwidth,
                    memory_factor=rule.memory_factor,
                )
            )
    measured: dict[tuple[str, str], float] = defaultdict(float)
    for timing in trace.modules:
        if not timing.calls or timing.module_id.split(".")[0] != root.split(".")[0]:
            continue
        unit = _nearest(timing.module_id, set(tree.nodes) & ranged)
        if unit is None:
            continue
        for cls, micros in timing.own_us_by_class.items():
            if micros:
                measured[unit, cls] += micros / 1e6
    keys = sorted(set(terms) | set(measured))
    return tuple(
        FitSample(
            module_id=unit,
            op_class=cls,
            measured_seconds=measured.get((unit, cls), 0.0),
            terms=tuple(terms.get((unit, cls), ())),
        )
        for unit, cls in keys
    )


def _fit_factors(samples: Sequence[FitSample], keys: Sequence[str]) -> dict[str, float]:
    """Least-squares fit of one factor per key on ``ln(predicted / measured)``, factors in (0, 1].

    The adapter the time engine's own fit replaces.
    """
    try:
        from scipy.optimize import least_squares
    except ImportError:
        raise LlmPerfOptError(
            'samples: fitting needs scipy; install the profiling extra (pip install -e ".[profiling]")'
        ) from None

    def residuals(log_factors: np.ndarray) -> np.ndarray:
        factors = dict(zip(keys, np.exp(log_factors), strict=True))
        return np.array([math.log(s.predicted_seconds(factors) / s.measured_seconds) for s in samples])

    start = np.full(len(keys), math.log(0.5))
    solution = least_squares(
        residuals, start, bounds=(math.log(_SMALLEST_FACTOR), 0.0), method="trf", x_scale=1.0
    )
    return {key: float(math.exp(value)) for key, value in zip(keys, solution.x, strict=True)}


def draft_fit(samples: Sequence[FitSample], device: str) -> CalibrationFit:
    """Fit every factor key the samples use to the samples that have both measured time and work."""
    usable = [s for s in samples if s.measured_seconds > 0 and s.terms and s.predicted_seconds(_Ones()) > 0]
    if not usable:
        raise LlmPerfOptError("samples: none has both measured time and analytic work; nothing to fit")
    keys = sorted({k for s in usable for t in s.terms for k in (t.compute_factor, t.memory_factor)})
    factors = _fit_factors(usable, keys)
    residuals = []
    for cls in OP_CLASSES:
        chosen = [s for s in usable if s.op_class == cls]
        if not chosen:
            continue
        logs = [math.log(s.predicted_seconds(factors) / s.measured_seconds) for s in chosen]
        residuals.append(
            ClassResidual(
                op_class=cls,
                samples=len(chosen),
                measured_seconds=sum(s.measured_seconds for s in chosen),
                predicted_seconds=sum(s.predicted_seconds(factors) for s in chosen),
                rms_log_residual=math.sqrt(sum(v * v for v in logs) / len(logs)),
            )
        )
    at_bound = tuple(
        key for key, value in factors.items() if value > 1 - 1e-9 or value < _SMALLEST_FACTOR * (1 + 1e-6)
    )
    binding = set()
    for sample in usable:
        for t in sample.terms:
            compute = t.compute_seconds / factors[t.compute_factor]
            binding.add(
                t.compute_factor
                if compute >= t.memory_seconds / factors[t.memory_factor]
                else t.memory_factor
            )
    return CalibrationFit(
        device=device,
        factors=factors,
        residuals=tuple(residuals),
        samples=len(usable),
        at_bound=at_bound,
        undetermined=tuple(key for key in keys if key not in binding),
    )


class _Ones(dict[str, float]):
    """Every factor 1: the roofline at peak."""

    def __missing__(self, key: str) -> float:
        return 1.0


def fitted_table(fit: CalibrationFit, base: EfficiencyTable | None = None) -> EfficiencyTable:
    """The efficiency table (the shipped one unless ``base``) with the fitted factors as a row of
    ``fit.device``: what the time model takes to predict with them."""
    from llm_perf_opt.hardware.efficiency import EFFICIENCIES

    table = EFFICIENCIES if base is None else base
    return table.with_values({(f"device:{fit.device}", key): value for key, value in fit.factors.items()})


def write_efficiency_override(fit: CalibrationFit, path: Path, *, basis: str) -> Path:
    """Write the fitted factors for ``fit.device`` as an efficiency-table override file (the schema of the
    shipped ``efficiencies.json``, read by ``load_efficiencies``), through a temporary file and a rename."""
    factors: dict[str, object] = {}
    attention: dict[str, float] = {}
    for key, value in sorted(fit.factors.items()):
        if key.startswith("attention."):
            attention[key.removeprefix("attention.")] = float(f"{value:.6g}")
        else:
            factors[key] = float(f"{value:.6g}")
    if attention:
        factors["attention"] = attention
    document = {"schema_version": 1, "devices": {fit.device: {"factors": factors, "basis": basis}}}
    write_atomic(Path(path), json.dumps(document, indent=2) + "\n")
    return Path(path)
