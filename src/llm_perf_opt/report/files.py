"""Report folders on disk: ``<out>/<report_id>/report.json``, ``summary.json`` and ``summary.md``.

A report id is a function of the request and the run options (:func:`report_id_for`), so running
the same request twice finds the first report and reuses it, unless the request says
``force_rebuild``. Every file is written to a temporary name and renamed, so a folder never holds a
half-written report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, TypeVar

from attrs import frozen

from llm_perf_opt.contracts import from_json, to_json
from llm_perf_opt.contracts.models import (
    Wan2_1AnalyticAccepted,
    Wan2_1AnalyticModel,
    Wan2_1AnalyticReportSummary,
    Wan2_1AnalyticRequest,
)
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.report.analysis import RunOptions, analyze, report_id_for
from llm_perf_opt.report.summary import summarize, summary_markdown

__all__ = ["REPORT_FILE", "SUMMARY_FILE", "SUMMARY_MARKDOWN", "RunResult", "read_report", "run"]

REPORT_FILE: Final = "report.json"
SUMMARY_FILE: Final = "summary.json"
SUMMARY_MARKDOWN: Final = "summary.md"

T = TypeVar("T")


@frozen(kw_only=True)
class RunResult:
    """What :func:`run` did.

    Attributes:
        accepted: the contract's answer to the run request.
        folder: absolute path of the report's folder.
        reused: an identical report was already there and was not rebuilt.
        model: the report.
        summary: its summary.
    """

    accepted: Wan2_1AnalyticAccepted
    folder: Path
    reused: bool
    model: Wan2_1AnalyticModel
    summary: Wan2_1AnalyticReportSummary


def _write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def _read(path: Path, cls: type[T]) -> T:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise LlmPerfOptError(f"report: cannot read {path}: {error.strerror}") from None
    try:
        return from_json(text, cls)
    except LlmPerfOptError as error:
        raise LlmPerfOptError(f"{path}: {error}") from None


def read_report(folder: Path) -> tuple[Wan2_1AnalyticModel, Wan2_1AnalyticReportSummary]:
    """Read a report folder back; a missing or invalid file is an error naming it."""
    folder = Path(folder)
    return _read(folder / REPORT_FILE, Wan2_1AnalyticModel), _read(
        folder / SUMMARY_FILE, Wan2_1AnalyticReportSummary
    )


def run(request: Wan2_1AnalyticRequest, out_dir: Path, options: RunOptions | None = None) -> RunResult:
    """Build the report of ``request`` under ``out_dir`` (or reuse an identical one) and return it.

    The library runs synchronously: by the time this returns, the files are written.
    """
    options = options or RunOptions()
    report_id = report_id_for(request, options)
    folder = (Path(out_dir) / report_id).resolve()
    accepted = Wan2_1AnalyticAccepted(report_id=report_id, status="queued")
    if not request.force_rebuild and (folder / REPORT_FILE).is_file():
        model, summary = read_report(folder)
        return RunResult(accepted=accepted, folder=folder, reused=True, model=model, summary=summary)
    analysis = analyze(request, options)
    summary = summarize(analysis)
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / REPORT_FILE, to_json(analysis.model))
    _write(folder / SUMMARY_FILE, to_json(summary))
    _write(folder / SUMMARY_MARKDOWN, summary_markdown(analysis, summary))
    return RunResult(accepted=accepted, folder=folder, reused=False, model=analysis.model, summary=summary)
