"""Atomic writes and strict reads: no half-written file, no stray temporary, one error per failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llm_perf_opt.contracts import from_json
from llm_perf_opt.contracts.models import Wan2_1AnalyticRequest
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.files import (
    atomic_output,
    atomic_write_text,
    check_output_file,
    ensure_output_dir,
    parse_json,
    read_json,
    read_text,
)


def _entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    """A complete write replaces the old content; only the target remains in the directory."""
    target = tmp_path / "out.csv"
    target.write_text("old", encoding="utf-8")
    atomic_write_text(target, "new,å\n")
    assert target.read_text(encoding="utf-8") == "new,å\n"
    assert _entries(tmp_path) == ["out.csv"]


def test_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    """An exception inside the block leaves the old content and no temporary file."""
    target = tmp_path / "out.csv"
    target.write_text("precious data\n", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_output(target) as stream:
        stream.write("half")
        raise RuntimeError("boom")
    assert target.read_text(encoding="utf-8") == "precious data\n"
    assert _entries(tmp_path) == ["out.csv"]


def test_file_mode_follows_the_umask(tmp_path: Path) -> None:
    """The renamed file has the permissions a plain open() would give, not mkstemp's 0600."""
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_a_directory_in_the_target_place_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    """Writing over a directory fails with one error naming the path; no temporary remains."""
    (tmp_path / "report.json").mkdir()
    with pytest.raises(LlmPerfOptError, match=r"report: cannot write .*report\.json"):
        atomic_write_text(tmp_path / "report.json", "{}", field="report")
    assert _entries(tmp_path) == ["report.json"]


def test_special_files_are_written_in_place() -> None:
    """/dev/null cannot be replaced, so it is written directly and stays a device."""
    atomic_write_text("/dev/null", "discarded")
    assert not Path("/dev/null").is_file()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "sub", "is a directory"),
        (lambda d: d / "missing" / "out.csv", "does not exist"),
        (lambda d: d / "file.txt" / "out.csv", "is not a directory"),
        (lambda d: d / ("x" * 300), "accepts at most"),
    ],
)
def test_output_file_problems_are_found_before_any_work(tmp_path: Path, make: object, message: str) -> None:
    """A directory, a missing parent, a file as parent and a 300-character name are each one error."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    with pytest.raises(LlmPerfOptError, match=rf"^out: .*{message}"):
        check_output_file(make(tmp_path))  # type: ignore[operator]
    assert _entries(tmp_path) == ["file.txt", "sub"]


def test_output_dir_problems(tmp_path: Path) -> None:
    """A file where a directory is expected, or below a file, is one error naming the option."""
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(LlmPerfOptError, match=r"^out_dir: .* exists and is not a directory"):
        ensure_output_dir(tmp_path / "file")
    with pytest.raises(LlmPerfOptError, match=r"^out_dir: a parent of .* is a file"):
        ensure_output_dir(tmp_path / "file" / "deeper")
    with pytest.raises(LlmPerfOptError, match=r"^out_dir: cannot create directory"):
        ensure_output_dir(tmp_path / ("y" * 300))
    assert ensure_output_dir(tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe{}", "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"a": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"a": NaN}', "NaN is not a valid JSON number"),
        (b'{"a": ', "not valid JSON"),
    ],
)
def test_bad_json_files_are_one_error_naming_the_path(tmp_path: Path, content: bytes, message: str) -> None:
    """Non-UTF-8, 100000-deep, 5000-digit, NaN and truncated documents each give one error."""
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(LlmPerfOptError, match=rf"^record: cannot read .*bad\.json.*{message}"):
        read_json(path, field="record")


def test_unreadable_paths_are_one_error(tmp_path: Path) -> None:
    """A missing file and a directory given as a file are each one error naming the path."""
    with pytest.raises(LlmPerfOptError, match=r"^path: cannot read .*nope\.json.*No such file"):
        read_json(tmp_path / "nope.json")
    with pytest.raises(LlmPerfOptError, match=r"^path: cannot read .*Is a directory"):
        read_text(tmp_path)


def test_read_json_returns_the_document(tmp_path: Path) -> None:
    """A valid document is returned as plain data."""
    (tmp_path / "ok.json").write_text('{"a": [1, 2.5, "é"]}', encoding="utf-8")
    assert read_json(tmp_path / "ok.json") == {"a": [1, 2.5, "é"]}
    assert parse_json("[1]") == [1]


def test_the_contract_reader_rejects_deep_and_huge_documents() -> None:
    """from_json turns RecursionError and the integer-digit limit into the library's error."""
    with pytest.raises(LlmPerfOptError, match=r"<document>: not valid JSON .nested too deeply"):
        from_json("[" * 100_000 + "]" * 100_000, Wan2_1AnalyticRequest)
    with pytest.raises(LlmPerfOptError, match=r"<document>: not valid JSON"):
        from_json('{"overrides": {"num_frames": ' + "9" * 5000 + "}}", Wan2_1AnalyticRequest)
    with pytest.raises(LlmPerfOptError, match=r"<document>: Infinity is not a valid JSON number"):
        from_json('{"x": Infinity}', Wan2_1AnalyticRequest)


def test_a_symbolic_link_is_written_through(tmp_path: Path) -> None:
    """Writing a link replaces its target's content and keeps the link."""
    (tmp_path / "real.csv").write_text("old", encoding="utf-8")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    atomic_write_text(tmp_path / "link.csv", "new")
    assert (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "real.csv").read_text(encoding="utf-8") == "new"
