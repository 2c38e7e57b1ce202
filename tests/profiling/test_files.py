"""Writes that are whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_perf_opt.profiling.files import write_atomic


def test_write_replaces_the_file_whole(tmp_path: Path) -> None:
    """A write creates missing folders, replaces an old file and leaves no temporary file behind."""
    path = tmp_path / "a" / "b.json"
    write_atomic(path, "old")
    write_atomic(path, "new")
    assert path.read_text(encoding="utf-8") == "new"
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the rename fails the old file is untouched and the temporary file is removed."""
    path = tmp_path / "b.json"
    write_atomic(path, "old")

    def fail(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("llm_perf_opt.profiling.files.os.replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, "new")
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.json"]
