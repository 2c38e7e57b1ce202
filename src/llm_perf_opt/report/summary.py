"""The summary of a report: where the work goes, in rows a reader can compare.

Rows are taken one level below each stage (``diffusion.patch_embedding``, ``diffusion.head``, …),
and a repeated block's parts are summed over its repetitions into one row with a ``*`` for the
index (``diffusion.blocks.*.self_attn``, all 40 blocks): a single block is too small to rank and
the whole ``blocks`` container too coarse to say anything. The top 10 such rows by FLOPs and the
top 5 operator categories (by FLOPs, then bytes) are listed, with each stage's share of FLOPs.
"""

from __future__ import annotations

from typing import Final

from attrs import frozen

from llm_perf_opt.contracts.models import AnalyticModuleSummary, Wan2_1AnalyticReportSummary
from llm_perf_opt.report.analysis import OWN_OPS_NAME, TERA, Analysis, ModuleFigures
from llm_perf_opt.report.categories import CATEGORIES

__all__ = ["STAGE_ORDER", "SummaryRow", "format_si", "summarize", "summary_markdown", "summary_rows"]

TOP_MODULES: Final = 10
TOP_CATEGORIES: Final = 5
STAGE_ORDER: Final = ("diffusion", "text_encoder", "vae", "other")


@frozen(kw_only=True)
class SummaryRow:
    """One comparable row: a module, or one part of a repeated block summed over its repetitions."""

    module_id: str
    name: str
    stage: str
    count: int
    flops: int
    io_bytes: int
    activation_bytes: int


def _row(module_id: str, name: str, stage: str, parts: list[ModuleFigures]) -> SummaryRow:
    return SummaryRow(
        module_id=module_id,
        name=name,
        stage=stage,
        count=len(parts),
        flops=sum(p.metrics["flops"] for p in parts),
        io_bytes=sum(p.metrics["bytes_read"] + p.metrics["bytes_written"] for p in parts),
        activation_bytes=sum(p.metrics["activation_bytes"] for p in parts),
    )


def summary_rows(analysis: Analysis) -> list[SummaryRow]:
    """Every comparable row of the report, in tree order (see the module docstring)."""
    nodes = {node.module_id: node for node in analysis.model.modules}
    figures = analysis.figures
    root = analysis.model.modules[0]
    rows = []
    for stage_id in root.children:
        stage_node = nodes[stage_id]
        if not stage_node.children:
            rows.append(_row(stage_id, stage_node.name, stage_node.stage, [figures[stage_id]]))
            continue
        for child_id in stage_node.children:
            child = nodes[child_id]
            if child.repetition != "for":
                rows.append(_row(child_id, child.name, child.stage, [figures[child_id]]))
                continue
            blocks = [nodes[block_id] for block_id in child.children]
            for part_id in blocks[0].children:
                part = part_id.rsplit(".", 1)[1]
                parts = [figures[f"{block.module_id}.{part}"] for block in blocks]
                name = f"{part} (×{len(blocks)} {child.name})"
                rows.append(_row(f"{child_id}.*.{part}", name, child.stage, parts))
    own_id = f"{root.module_id}.{OWN_OPS_NAME}"
    if own_id in figures:
        rows.append(_row(own_id, OWN_OPS_NAME, root.stage, [figures[own_id]]))
    return rows


def stage_flops(analysis: Analysis) -> dict[str, int]:
    """FLOPs of the whole run per stage (the stages of the pipeline's children and own ops)."""
    totals = dict.fromkeys(STAGE_ORDER, 0)
    nodes = {node.module_id: node for node in analysis.model.modules}
    root = analysis.model.modules[0]
    for child_id in root.children:
        totals[nodes[child_id].stage] += analysis.figures[child_id].metrics["flops"]
    return totals


def top_categories(figures: ModuleFigures, count: int = TOP_CATEGORIES) -> list[tuple[str, int, int, int]]:
    """(category id, op calls, FLOPs, bytes) of the biggest categories, by FLOPs then bytes."""
    ranked = sorted(figures.categories.items(), key=lambda item: (-item[1][1], -item[1][2], item[0]))
    return [(key, n, flops, io) for key, (n, flops, io) in ranked[:count]]


def summarize(analysis: Analysis) -> Wan2_1AnalyticReportSummary:
    """The contract's summary: top modules by FLOPs share, the predicted time and the notes."""
    predicted_total_time_ms = analysis.seconds * 1e3
    model = analysis.model
    total = analysis.figures[model.modules[0].module_id].metrics["flops"]
    ranked = sorted(summary_rows(analysis), key=lambda row: (-row.flops, row.module_id))[:TOP_MODULES]
    top = [
        AnalyticModuleSummary(
            module_id=row.module_id,
            name=row.name,
            stage=row.stage,  # type: ignore[arg-type]
            share_of_model_flops=row.flops / total if total else 0.0,
            total_flops_tflops=row.flops / TERA,
            memory_activations_gb=row.activation_bytes / 1e9,
        )
        for row in ranked
    ]
    notes = list(analysis.notes)
    return Wan2_1AnalyticReportSummary(
        report_id=model.report_id,
        model_variant=model.model.model_variant,
        workload_profile_id=model.workload.profile_id,
        predicted_total_time_ms=predicted_total_time_ms,
        top_modules=top,
        notes=" ".join(notes),
    )


def format_si(value: float, unit: str) -> str:
    """``value`` with an SI prefix: ``format_si(6.5e15, "FLOP")`` is ``6.50 PFLOP``."""
    for scale, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:,.2f} {prefix}{unit}"
    return f"{value:,.0f} {unit}"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def summary_markdown(analysis: Analysis, summary: Wan2_1AnalyticReportSummary) -> str:
    """The human summary (``summary.md``): totals, stages, top modules, top categories, notes."""
    model = analysis.model
    root = analysis.figures[model.modules[0].module_id].metrics
    work = model.workload
    lines = [
        f"# {model.model.model_id} — {work.profile_id}",
        "",
        f"Report `{model.report_id}`: {work.batch_size} × {work.num_frames} frames at "
        f"{work.height}×{work.width}, {work.num_inference_steps} steps, {work.text_len} text tokens; "
        f"implementation `{analysis.implementation.name}`.",
        "",
        "## Totals (whole run)",
        "",
        *_table(
            ("FLOPs", "element-wise FLOPs", "bytes read", "bytes written", "weights", "parameters", "time"),
            [
                (
                    f"{root['flops']:,}",
                    f"{root['vector_flops']:,}",
                    format_si(root["bytes_read"], "B"),
                    format_si(root["bytes_written"], "B"),
                    format_si(root["weight_bytes"], "B"),
                    f"{root['params']:,}",
                    f"{summary.predicted_total_time_ms:,.1f} ms",
                )
            ],
        ),
        "",
        "## Stages",
        "",
    ]
    stages = stage_flops(analysis)
    total = root["flops"]
    lines += _table(
        ("stage", "FLOPs", "share"),
        [
            (stage, format_si(flops, "FLOP"), f"{flops / total:.2%}" if total else "0%")
            for stage, flops in stages.items()
        ],
    )
    lines += ["", f"## Top {TOP_MODULES} modules by FLOPs", ""]
    lines += _table(
        ("module", "stage", "FLOPs", "share", "activations"),
        [
            (
                f"`{row.module_id}`",
                row.stage,
                format_si((row.total_flops_tflops or 0.0) * TERA, "FLOP"),
                f"{row.share_of_model_flops:.2%}",
                format_si((row.memory_activations_gb or 0.0) * 1e9, "B"),
            )
            for row in summary.top_modules
        ],
    )
    lines += ["", f"## Top {TOP_CATEGORIES} operator categories", ""]
    lines += _table(
        ("category", "op calls", "FLOPs", "share", "bytes"),
        [
            (
                CATEGORIES[key].display_name,
                f"{n:,}",
                format_si(flops, "FLOP"),
                f"{flops / total:.2%}" if total else "0%",
                format_si(io, "B"),
            )
            for key, n, flops, io in top_categories(analysis.figures[model.modules[0].module_id])
        ],
    )
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in analysis.notes]
    return "\n".join(lines) + "\n"
