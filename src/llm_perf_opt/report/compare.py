"""Compare two reports: what moved, by how much, and which modules and categories it came from.

Modules are matched by id (ids are stable across runs of the same model version), so two workloads
of one variant compare module by module; two variants compare on the ids they share, and the ids
only one of them has are listed. Totals are the roots' figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from attrs import frozen

from llm_perf_opt.contracts.models import ModuleMetricsSnapshot, Wan2_1AnalyticModel

__all__ = ["Change", "ReportComparison", "compare_reports", "comparison_markdown"]

METRICS: Final = (
    ("total_flops_tflops", "FLOPs (T)"),
    ("total_io_tb", "bytes moved (TB)"),
    ("memory_weights_gb", "weights (GB)"),
    ("memory_activations_gb", "activations (GB)"),
    ("total_time_ms", "time (ms)"),
)
TOP_MOVERS: Final = 10


@frozen
class Change:
    """One figure in both reports."""

    key: str
    metric: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        """``after − before``."""
        return self.after - self.before

    @property
    def ratio(self) -> float | None:
        """``after / before``, ``None`` when ``before`` is 0."""
        return self.after / self.before if self.before else None


@frozen(kw_only=True)
class ReportComparison:
    """Totals, the modules that moved most, categories, and the ids only one report has.

    Attributes:
        before, after: the two report ids.
        totals: one change per metric of :data:`METRICS`, for the roots.
        movers: the modules whose FLOPs moved most (by absolute change): leaves and synthetic
            own-ops children only, so no work is counted twice, each summed over the blocks of a
            repetition (``diffusion.blocks.*.ffn.0``).
        categories: FLOPs per operator category of the roots.
        only_before, only_after: module ids in one report only.
    """

    before: str
    after: str
    totals: list[Change]
    movers: list[Change]
    categories: list[Change]
    only_before: list[str]
    only_after: list[str]


def _by_id(model: Wan2_1AnalyticModel) -> dict[str, ModuleMetricsSnapshot]:
    return {snapshot.module_id: snapshot for snapshot in model.module_metrics}


def _patterns(model: Wan2_1AnalyticModel) -> dict[str, str]:
    """Module id → the id with every repeated block's index written ``*`` (``blocks.*.ffn.0``)."""
    nodes = {node.module_id: node for node in model.modules}
    patterns: dict[str, str] = {}
    for node in model.modules:  # pre-order: a parent's pattern is known before its children's
        if node.parent_id is None:
            patterns[node.module_id] = node.module_id
            continue
        parent = nodes[node.parent_id]
        name = "*" if parent.repetition == "for" else node.name
        base = patterns[node.parent_id]
        # a pipeline's stages carry their own ids, not prefixed by the root's
        patterns[node.module_id] = (
            f"{base}.{name}" if node.module_id.startswith(f"{parent.module_id}.") else node.module_id
        )
    return patterns


def _leaf_flops(model: Wan2_1AnalyticModel) -> dict[str, float]:
    """FLOPs of the leaves (and own-ops children), summed over the blocks of each repetition."""
    patterns = _patterns(model)
    leaves = {node.module_id for node in model.modules if not node.children}
    totals: dict[str, float] = {}
    for snapshot in model.module_metrics:
        if snapshot.module_id in leaves:
            key = patterns[snapshot.module_id]
            totals[key] = totals.get(key, 0.0) + snapshot.total_flops_tflops
    return totals


def _category_flops(snapshot: ModuleMetricsSnapshot) -> Mapping[str, float]:
    return {row.category_id: row.flops_tflops for row in snapshot.operator_breakdown}


def compare_reports(
    before: Wan2_1AnalyticModel, after: Wan2_1AnalyticModel, *, top: int = TOP_MOVERS
) -> ReportComparison:
    """What moved from ``before`` to ``after`` (see :class:`ReportComparison`)."""
    a, b = _by_id(before), _by_id(after)
    root_a, root_b = a[before.modules[0].module_id], b[after.modules[0].module_id]
    totals = [
        Change("total", metric, getattr(root_a, metric), getattr(root_b, metric)) for metric, _ in METRICS
    ]
    leaves_a, leaves_b = _leaf_flops(before), _leaf_flops(after)
    movers = sorted(
        (
            Change(key, "total_flops_tflops", leaves_a[key], leaves_b[key])
            for key in leaves_b
            if key in leaves_a
        ),
        key=lambda change: (-abs(change.delta), change.key),
    )
    cats_a, cats_b = _category_flops(root_a), _category_flops(root_b)
    categories = [
        Change(key, "flops_tflops", cats_a.get(key, 0.0), cats_b.get(key, 0.0))
        for key in dict.fromkeys([*cats_a, *cats_b])
    ]
    return ReportComparison(
        before=before.report_id,
        after=after.report_id,
        totals=totals,
        movers=[change for change in movers[:top] if change.delta != 0],
        categories=sorted(categories, key=lambda change: (-abs(change.delta), change.key)),
        only_before=sorted(set(a) - set(b)),
        only_after=sorted(set(b) - set(a)),
    )


def _ratio(change: Change) -> str:
    return "—" if change.ratio is None else f"×{change.ratio:.3f}"


def comparison_markdown(comparison: ReportComparison) -> str:
    """The comparison as markdown tables (also readable in a terminal)."""
    names = dict(METRICS)
    lines = [f"# `{comparison.before}` → `{comparison.after}`", "", "## Totals", ""]
    lines += ["| metric | before | after | change | ratio |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {names[c.metric]} | {c.before:,.4f} | {c.after:,.4f} | {c.delta:+,.4f} | {_ratio(c)} |"
        for c in comparison.totals
    ]
    lines += ["", "## Modules that moved most (TFLOPs)", ""]
    lines += ["| module | before | after | change | ratio |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| `{c.key}` | {c.before:,.4f} | {c.after:,.4f} | {c.delta:+,.4f} | {_ratio(c)} |"
        for c in comparison.movers
    ]
    lines += ["", "## Operator categories (TFLOPs)", ""]
    lines += ["| category | before | after | change | ratio |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {c.key} | {c.before:,.4f} | {c.after:,.4f} | {c.delta:+,.4f} | {_ratio(c)} |"
        for c in comparison.categories
    ]
    for label, ids in (("before", comparison.only_before), ("after", comparison.only_after)):
        if ids:
            shown = ", ".join(f"`{i}`" for i in ids[:20]) + (
                f" … ({len(ids)} in all)" if len(ids) > 20 else ""
            )
            lines += ["", f"Only in {label}: {shown}"]
    return "\n".join(lines) + "\n"
