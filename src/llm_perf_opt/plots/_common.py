"""What every figure shares: the workload a figure is drawn for, its words, and saving a figure.

Figures are built with matplotlib's object-oriented API (``matplotlib.figure.Figure``), never
through ``pyplot``: no GUI backend is involved and the caller's backend is left alone; PNG files
are rendered by Agg, SVG files by matplotlib's SVG writer.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import matplotlib as mpl

mpl.use("Agg")

from attrs import frozen
from matplotlib.figure import Figure

from llm_perf_opt.contracts.models import Wan2_1AnalyticRequest, Wan2_1WorkloadProfile
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.plots.defaults import FORMATS
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.evaluate import resolve_workload
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant
from llm_perf_opt.wan2_1.workloads import resolve_profile

__all__ = ["FORMATS", "FigureRun", "ModelFigure", "figure_run", "save_figure"]


DPI: Final = 150
"""Resolution of the PNG files, in dots per inch."""

FILE_MODE: Final = 0o644
"""Permissions of a written figure (a temporary file starts private)."""

SVG_HASH_SALT: Final = "llm-perf-opt"
"""Fixed salt of the SVG element ids, so the same figure writes the same SVG."""


NOTEBOOK_DPI: Final = 100
"""Resolution of a figure shown in a notebook, in dots per inch."""


class ModelFigure(Figure):
    """A matplotlib Figure that shows itself in a notebook (IPython's ``_repr_png_``), without
    pyplot or a notebook backend."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=NOTEBOOK_DPI, bbox_inches="tight")
        return buffer.getvalue()


@frozen(kw_only=True)
class FigureRun:
    """The run a figure is drawn for.

    Attributes:
        variant: the Wan2.1 variant.
        request: the report request of the run (variant and workload profile with overrides).
        profile: the workload profile as resolved for the variant.
        workload: the workload as run (frames and text as the pipeline takes them).
        notes: what was decided about the workload.
    """

    variant: WanVariant
    request: Wan2_1AnalyticRequest
    profile: Wan2_1WorkloadProfile
    workload: Workload
    notes: tuple[str, ...]

    @property
    def words(self) -> str:
        """The workload in words for a title: model, frames, size and steps."""
        p = self.profile
        batch = f"{p.batch_size} × " if p.batch_size > 1 else ""
        return (
            f"{self.variant.model_id}: {batch}{p.num_frames} frames at {p.width}×{p.height}, "
            f"{p.num_inference_steps} steps"
        )


def figure_run(variant: str, profile: str, overrides: Mapping[str, int] | None = None) -> FigureRun:
    """The run of ``variant`` under the workload profile ``profile`` (with ``overrides`` of its
    fields: ``num_frames``, ``height``, ``width``, ``num_inference_steps``, …), validated."""
    record = get_variant(variant)
    request = Wan2_1AnalyticRequest(
        model_id=record.model_id,
        model_variant=record.model_variant,
        workload_profile_id=profile,
        overrides=dict(overrides) if overrides else None,
    )
    resolved, profile_notes = resolve_profile(profile, record, request.overrides)
    workload, workload_notes = resolve_workload(
        record,
        batch=resolved.batch_size,
        frames=resolved.num_frames,
        height=resolved.height,
        width=resolved.width,
        steps=resolved.num_inference_steps,
        text_len=resolved.text_len,
    )
    return FigureRun(
        variant=record,
        request=request,
        profile=resolved,
        workload=workload,
        notes=(*profile_notes, *workload_notes),
    )


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` to ``path`` as PNG or SVG (by the suffix), atomically: a failed or
    concurrent write never leaves a partial file behind."""
    target = Path(path)
    suffix = target.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise LlmPerfOptError(
            f"output: the file {str(target)!r} has suffix {target.suffix!r}; accepted: "
            + ", ".join(f".{f}" for f in FORMATS)
        )
    if not target.parent.is_dir():
        raise LlmPerfOptError(f"output: the folder {str(target.parent)!r} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".{suffix}", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream, mpl.rc_context({"svg.hashsalt": SVG_HASH_SALT}):
            figure.savefig(stream, format=suffix, dpi=DPI, bbox_inches="tight", metadata=_metadata(suffix))
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _metadata(suffix: str) -> dict[str, str | None]:
    """File metadata without a creation date, so the same figure writes the same bytes."""
    return {"Date": None} if suffix == "svg" else {"Software": "matplotlib"}
