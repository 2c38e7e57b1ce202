"""Measured against predicted: an imported trace set against a report made with a device.

For every module id that has ranges in the trace and a snapshot in the report (:func:`compare`):

- **measured** — the trace's total time of the id (its own work and that of every id beneath it);
- **predicted** — the report's ``total_time_ms`` scaled from the report's calls to the calls the trace
  measured (a trace of 2 steps against a report of 50: ``predicted × calls_measured / calls_report``);
  the analytic FLOPs and bytes are scaled the same way;
- **ratio** measured / predicted, and the **gap** measured − predicted;
- **achieved** FLOP/s and bytes/s: the analytic FLOPs and bytes over the measured time;
- **% of the roofline**: achieved FLOP/s over what the device's roofline allows at the module's
  arithmetic intensity, ``min(peak, FLOPs/bytes × bandwidth)`` (a module without FLOPs: achieved bytes/s
  over the bandwidth). Peak and bandwidth are the datasheet figures of the device at one precision
  (``bf16`` by default), without efficiency factors; mixed-precision modules (the fp32 VAE of the
  official code) are measured against that one precision, an approximation the notes state.

The top modules by absolute gap are leaves of the id tree among the compared ids (no time counted
twice); stage totals are the stage ids (``diffusion``, ``vae``, …). The result is written as JSON
(through the contract's one cattrs converter) under the report's folder, in
``profiles/<profile_run_id>.json``, with a write that never leaves a partial file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from attrs import frozen

from llm_perf_opt.contracts.converter import from_json, to_json
from llm_perf_opt.contracts.models import ModuleMetricsSnapshot, Wan2_1AnalyticModel
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.profiling.files import write_atomic
from llm_perf_opt.profiling.trace import STAGES, TraceProfile

__all__ = [
    "HOST_DEVICE",
    "PROFILES_FOLDER",
    "DeviceRoofline",
    "ModuleComparison",
    "ProfileComparison",
    "StageComparison",
    "check_run_id",
    "compare",
    "comparison_path",
    "device_roofline",
    "format_comparison",
    "read_comparison",
    "write_comparison",
]

PROFILES_FOLDER: Final = "profiles"
"""Folder of a report that holds its measured-against-predicted comparisons."""
_TOP_GAPS: Final = 10
_RUN_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_TERA: Final = 1e12
_FLOPS_TOLERANCE: Final = 1e-3
"""Relative difference of traced and reported FLOPs beyond which a module is listed as a mismatch (the
report's FLOPs pass through TFLOP units, so they are exact only to rounding)."""


@frozen(kw_only=True)
class DeviceRoofline:
    """The datasheet roofline of the measured device at one precision."""

    name: str
    """The device."""
    precision: str
    """The precision of :attr:`peak_flops`."""
    peak_flops: float
    """Dense peak FLOP/s at :attr:`precision`."""
    memory_bandwidth: float
    """Memory bandwidth in bytes/s."""

    def fraction(self, flops: float, traffic: float, seconds: float) -> float:
        """Achieved rate over the roofline's attainable rate at this arithmetic intensity."""
        if seconds <= 0:
            return 0.0
        if flops > 0:
            attainable = (
                min(self.peak_flops, flops / traffic * self.memory_bandwidth) if traffic else self.peak_flops
            )
            return flops / seconds / attainable
        return traffic / seconds / self.memory_bandwidth


@frozen(kw_only=True)
class ModuleComparison:
    """One module id, measured against predicted over the calls the trace measured."""

    module_id: str
    """The module id."""
    stage: str
    """Its stage (the first part of the id)."""
    calls_measured: int
    """Range instances in the trace."""
    calls_report: int
    """Calls in the report's run."""
    measured_ms: float
    """Total measured time."""
    predicted_ms: float
    """The report's time scaled to :attr:`calls_measured`."""
    ratio: float | None
    """measured / predicted; ``None`` where the prediction is 0."""
    gap_ms: float
    """measured − predicted."""
    flops: float
    """Analytic FLOPs over the measured calls."""
    bytes_moved: float
    """Analytic bytes read and written over the measured calls."""
    achieved_tflops: float
    """flops / measured time, in 10¹² FLOP/s."""
    achieved_tbps: float
    """bytes / measured time, in 10¹² bytes/s."""
    roofline_fraction: float
    """Achieved over attainable on the device's roofline (see :class:`DeviceRoofline`)."""


@frozen(kw_only=True)
class StageComparison:
    """One stage's totals."""

    stage: str
    measured_ms: float
    predicted_ms: float
    ratio: float | None


@frozen(kw_only=True)
class ProfileComparison:
    """A trace against a report, stored under the report as ``profiles/<profile_run_id>.json``."""

    profile_run_id: str
    """The id of the measured run."""
    report_id: str
    """The report compared against."""
    device: DeviceRoofline
    """The device the trace was measured on."""
    trace: TraceProfile
    """The imported trace."""
    modules: tuple[ModuleComparison, ...]
    """Every module id with ranges in the trace and a snapshot in the report, by id."""
    top_gaps: tuple[str, ...]
    """Leaf ids among :attr:`modules` by absolute gap, largest first (at most 10)."""
    stages: tuple[StageComparison, ...]
    """The stage ids among :attr:`modules`."""
    trace_only: tuple[str, ...]
    """Ids with ranges in the trace but no snapshot in the report."""
    flops_mismatches: tuple[str, ...]
    """Compared ids whose FLOPs from the trace's recorded shapes differ from the report's by more than
    0.1%: the trace is of another workload or configuration than the report (empty without shapes)."""
    notes: tuple[str, ...]
    """Approximations and what was left out."""


HOST_DEVICE: Final = "host"
"""Device name of the host CPU (its assumed rates, :data:`llm_perf_opt.hardware.host.DEFAULT_HOST`)."""


def device_roofline(device: str, precision: str = "bf16") -> DeviceRoofline:
    """The roofline of a device of the accelerator table, or of the host CPU (``host``).

    The one place this package reads the hardware layer's devices.
    """
    from llm_perf_opt.hardware.accelerators import get_accelerator
    from llm_perf_opt.hardware.host import DEFAULT_HOST

    if device == HOST_DEVICE:
        return DeviceRoofline(
            name=DEFAULT_HOST.name,
            precision=precision,
            peak_flops=DEFAULT_HOST.matmul_flops,
            memory_bandwidth=DEFAULT_HOST.memory_bandwidth,
        )
    accelerator = get_accelerator(device)
    return DeviceRoofline(
        name=accelerator.name,
        precision=precision,
        peak_flops=accelerator.peak_flops(precision),
        memory_bandwidth=accelerator.memory_bandwidth,
    )


def _ratio(measured: float, predicted: float) -> float | None:
    return measured / predicted if predicted > 0 else None


def _row(
    timing_calls: int, measured_us: float, snapshot: ModuleMetricsSnapshot, device: DeviceRoofline
) -> ModuleComparison:
    scale = timing_calls / snapshot.calls
    measured_ms = measured_us / 1e3
    predicted_ms = snapshot.total_time_ms * scale
    flops = snapshot.total_flops_tflops * _TERA * scale
    traffic = snapshot.total_io_tb * _TERA * scale
    seconds = measured_ms / 1e3
    return ModuleComparison(
        module_id=snapshot.module_id,
        stage=snapshot.module_id.split(".")[0],
        calls_measured=timing_calls,
        calls_report=snapshot.calls,
        measured_ms=measured_ms,
        predicted_ms=predicted_ms,
        ratio=_ratio(measured_ms, predicted_ms),
        gap_ms=measured_ms - predicted_ms,
        flops=flops,
        bytes_moved=traffic,
        achieved_tflops=flops / seconds / _TERA if seconds > 0 else 0.0,
        achieved_tbps=traffic / seconds / _TERA if seconds > 0 else 0.0,
        roofline_fraction=device.fraction(flops, traffic, seconds),
    )


def check_run_id(profile_run_id: object) -> str:
    """A profile run id usable as a file name; raises naming what is accepted."""
    if not isinstance(profile_run_id, str) or not _RUN_ID.fullmatch(profile_run_id):
        raise LlmPerfOptError(
            f"profile_run_id: must be 1-128 letters, digits, '.', '_' or '-' starting with a letter or "
            f"digit, got {profile_run_id!r}"
        )
    return profile_run_id


def compare(
    trace: TraceProfile,
    report: Wan2_1AnalyticModel,
    device: DeviceRoofline,
    *,
    profile_run_id: str | None = None,
) -> ProfileComparison:
    """Set a trace against a report made with a device (see the module docstring).

    ``profile_run_id`` defaults to the report's own; one of the two must be set.
    """
    run_id = check_run_id(profile_run_id if profile_run_id is not None else report.profile_run_id)
    snapshots = {s.module_id: s for s in report.module_metrics}
    if not any(s.total_time_ms > 0 for s in report.module_metrics):
        raise LlmPerfOptError(
            f"report: {report.report_id} has no predicted times (made without a device); make it with "
            "--device"
        )
    rows = []
    trace_only = []
    mismatches = []
    for timing in trace.modules:
        if not timing.calls:
            continue
        snapshot = snapshots.get(timing.module_id)
        if snapshot is None or not snapshot.calls:
            trace_only.append(timing.module_id)
            continue
        row = _row(timing.calls, timing.total_us, snapshot, device)
        rows.append(row)
        if trace.shapes_recorded and abs(timing.total_flops - row.flops) > _FLOPS_TOLERANCE * row.flops:
            mismatches.append(row.module_id)
    if not rows:
        raise LlmPerfOptError(
            f"trace: {trace.source} has no module id in common with report {report.report_id}; annotate the "
            "run with llm_perf_opt.profiling.annotate"
        )
    compared = {row.module_id for row in rows}
    leaves = [row for row in rows if not any(other.startswith(row.module_id + ".") for other in compared)]
    leaves.sort(key=lambda row: -abs(row.gap_ms))
    stages = [
        StageComparison(
            stage=row.module_id, measured_ms=row.measured_ms, predicted_ms=row.predicted_ms, ratio=row.ratio
        )
        for row in rows
        if row.module_id in STAGES
    ]
    notes = [
        f"measured: {trace.timeline} work of {trace.source} ({trace.attributed_fraction:.1%} attributed to "
        f"module ranges, {trace.unattributed_us / 1e3:.3f} ms outside them)",
        "predicted: the report's times scaled from its calls to the calls the trace measured",
        f"roofline: {device.name} datasheet peak at {device.precision} and memory bandwidth, no efficiency "
        "factors; modules running at another precision are measured against it",
    ]
    if mismatches:
        notes.append(
            f"{len(mismatches)} of {len(rows)} modules' FLOPs from the trace's shapes differ from the "
            f"report's (e.g. {mismatches[0]}): the trace is of another workload or configuration"
        )
    return ProfileComparison(
        profile_run_id=run_id,
        report_id=report.report_id,
        device=device,
        trace=trace,
        modules=tuple(rows),
        top_gaps=tuple(row.module_id for row in leaves[:_TOP_GAPS]),
        stages=tuple(stages),
        trace_only=tuple(trace_only),
        flops_mismatches=tuple(mismatches),
        notes=tuple(notes),
    )


def comparison_path(report_folder: Path, profile_run_id: str) -> Path:
    """Where the comparison of one profile run is stored under a report's folder."""
    return Path(report_folder) / PROFILES_FOLDER / f"{check_run_id(profile_run_id)}.json"


def write_comparison(report_folder: Path, comparison: ProfileComparison) -> Path:
    """Store a comparison under its report's folder; returns the file."""
    path = comparison_path(report_folder, comparison.profile_run_id)
    write_atomic(path, to_json(comparison) + "\n")
    return path


def read_comparison(report_folder: Path, profile_run_id: str) -> ProfileComparison:
    """Read a stored comparison back; a missing or invalid file is an error naming it."""
    path = comparison_path(report_folder, profile_run_id)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise LlmPerfOptError(f"profile_run_id: cannot read {path}: {error.strerror}") from None
    try:
        return from_json(text, ProfileComparison)
    except LlmPerfOptError as error:
        raise LlmPerfOptError(f"{path}: {error}") from None


def format_comparison(comparison: ProfileComparison, rows: Sequence[str] | None = None) -> str:
    """The comparison for people: stage totals, then the top modules by gap."""
    by_id = {row.module_id: row for row in comparison.modules}
    lines = [
        f"profile {comparison.profile_run_id} against report {comparison.report_id} on "
        f"{comparison.device.name} ({comparison.device.precision})",
        *comparison.notes,
        "",
        f"{'module':<44} {'calls':>5} {'measured ms':>12} {'predicted ms':>12} {'ratio':>7} "
        f"{'TFLOP/s':>9} {'TB/s':>7} {'roofline':>8}",
    ]
    chosen = (
        list(rows) if rows is not None else [s.stage for s in comparison.stages] + list(comparison.top_gaps)
    )
    for module_id in chosen:
        row = by_id[module_id]
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else "-"
        lines.append(
            f"{row.module_id:<44} {row.calls_measured:>5} {row.measured_ms:>12.3f} {row.predicted_ms:>12.3f} "
            f"{ratio:>7} {row.achieved_tflops:>9.3f} {row.achieved_tbps:>7.3f} {row.roofline_fraction:>8.1%}"
        )
    if comparison.trace_only:
        lines.append(f"{len(comparison.trace_only)} ids in the trace only, e.g. {comparison.trace_only[0]}")
    return "\n".join(lines)
