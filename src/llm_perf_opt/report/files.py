"""Report folders on disk: ``<out>/<report_id>/report.json``, ``summary.json`` and ``summary.md``.

A report id is a function of the request and the run options (:func:`report_id_for`), so running
the same request twice finds the first report and reuses it, unless the request says
``force_rebuild``. A folder that misses one of the three files is rebuilt and repaired.

Every file is written through :func:`llm_perf_opt.files.atomic_output`: to a unique temporary name in
the folder, then renamed, so a folder never holds a half-written report and no temporary file is
left behind. A report's files are a function of its id, so concurrent runs of the same request write
identical files and all of them succeed, whichever rename comes last; a file already holding the
same text is not rewritten.
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
from llm_perf_opt.files import atomic_write_text, ensure_output_dir, read_text
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


def _write_once(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically unless the file already holds exactly that text."""
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic_write_text(path, text, field="report")


def _read(path: Path, cls: type[T]) -> T:
    text = read_text(path, field="report")
    try:
        return from_json(text, cls)
    except LlmPerfOptError as error:
        raise LlmPerfOptError(f"report: {str(path)!r}: {error}") from None


def read_report(folder: Path) -> tuple[Wan2_1AnalyticModel, Wan2_1AnalyticReportSummary]:
    """Read a report folder back; a missing or invalid file is an error naming it."""
    folder = Path(folder)
    return _read(folder / REPORT_FILE, Wan2_1AnalyticModel), _read(
        folder / SUMMARY_FILE, Wan2_1AnalyticReportSummary
    )


def run(request: Wan2_1AnalyticRequest, out_dir: Path, options: RunOptions | None = None) -> RunResult:
    """Build the report of ``request`` under ``out_dir`` (or reuse an identical one) and return it.

    The library runs synchronously: by the time this returns, the files are written. The request is
    analysed before anything is written, so a request that fails leaves no folder and no file;
    ``out_dir`` is created if needed, and a file in its place is an error naming it.
    """
    options = options or RunOptions()
    report_id = report_id_for(request, options)
    folder = (Path(out_dir) / report_id).resolve()
    accepted = Wan2_1AnalyticAccepted(report_id=report_id, status="queued")
    complete = all((folder / name).is_file() for name in (REPORT_FILE, SUMMARY_FILE, SUMMARY_MARKDOWN))
    if not request.force_rebuild and complete:
        model, summary = read_report(folder)
        return RunResult(accepted=accepted, folder=folder, reused=True, model=model, summary=summary)
    analysis = analyze(request, options)
    summary = summarize(analysis)
    ensure_output_dir(folder)
    # compact: the C encoder writes a 2 MB report in milliseconds (indented JSON goes through the
    # pure-Python encoder, most of a warm report's time); summary.json stays indented for reading
    _write_once(folder / REPORT_FILE, to_json(analysis.model, indent=None))
    _write_once(folder / SUMMARY_FILE, to_json(summary))
    _write_once(folder / SUMMARY_MARKDOWN, summary_markdown(analysis, summary))
    return RunResult(accepted=accepted, folder=folder, reused=False, model=analysis.model, summary=summary)
