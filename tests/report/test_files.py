"""Report folders on disk: concurrent writers, repair of a missing file, no stray temporaries."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from llm_perf_opt.contracts.models import Wan2_1AnalyticRequest
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.report.files import REPORT_FILE, SUMMARY_FILE, SUMMARY_MARKDOWN, read_report, run

FILES = sorted((REPORT_FILE, SUMMARY_FILE, SUMMARY_MARKDOWN))


def _request(force: bool = False) -> Wan2_1AnalyticRequest:
    return Wan2_1AnalyticRequest(
        model_id="wan2.1-t2v-1.3b",
        model_variant="t2v-1.3b",
        workload_profile_id="wan2-1-ci-tiny",
        force_rebuild=force,
    )


def _write_report(out_dir: str) -> str:
    """One process's run of the same forced report; returns the folder."""
    return str(run(_request(force=True), Path(out_dir)).folder)


def test_concurrent_writers_of_one_report_all_succeed(tmp_path: Path) -> None:
    """Six processes rebuilding one report at once all succeed and leave three valid, identical files."""
    reference = run(_request(), tmp_path / "reference").folder
    context = multiprocessing.get_context("fork")
    with context.Pool(6) as pool:
        folders = pool.map(_write_report, [str(tmp_path / "shared")] * 6)
    assert len(set(folders)) == 1
    folder = Path(folders[0])
    assert sorted(p.name for p in folder.iterdir()) == FILES
    for name in FILES:
        assert (folder / name).read_bytes() == (reference / name).read_bytes()
    read_report(folder)


def test_a_folder_missing_a_file_is_repaired(tmp_path: Path) -> None:
    """A reused folder whose summary.md is gone is rebuilt; the other files are unchanged."""
    first = run(_request(), tmp_path)
    before = (first.folder / REPORT_FILE).read_bytes()
    (first.folder / SUMMARY_MARKDOWN).unlink()
    second = run(_request(), tmp_path)
    assert not second.reused
    assert sorted(p.name for p in second.folder.iterdir()) == FILES
    assert (second.folder / REPORT_FILE).read_bytes() == before
    assert run(_request(), tmp_path).reused


def test_report_json_as_a_directory_is_one_error_and_leaves_no_temporary(tmp_path: Path) -> None:
    """report.json existing as a directory fails with one error naming it; nothing stray is left."""
    folder = run(_request(), tmp_path).folder
    (folder / REPORT_FILE).unlink()
    (folder / REPORT_FILE).mkdir()
    with pytest.raises(LlmPerfOptError, match=r"^report: cannot write .*report\.json"):
        run(_request(), tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == FILES


def test_out_dir_that_is_a_file_is_one_error(tmp_path: Path) -> None:
    """An output directory that is a file is one error; the file keeps its content."""
    (tmp_path / "out").write_text("keep", encoding="utf-8")
    with pytest.raises(LlmPerfOptError, match=r"^out_dir: a parent of .* is a file"):
        run(_request(), tmp_path / "out")
    assert (tmp_path / "out").read_text(encoding="utf-8") == "keep"


def test_a_corrupt_report_file_is_an_error_naming_it(tmp_path: Path) -> None:
    """A non-UTF-8 summary.json in a reused folder is one error naming the file."""
    folder = run(_request(), tmp_path).folder
    (folder / SUMMARY_FILE).write_bytes(b"\xff")
    with pytest.raises(LlmPerfOptError, match=r"^report: cannot read .*summary\.json.*not UTF-8"):
        run(_request(), tmp_path)
