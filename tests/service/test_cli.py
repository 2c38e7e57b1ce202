"""The ``serve`` command: its sub-parser, its defaults, and one error per bad option."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.service import cli


class _Parser(argparse.ArgumentParser):
    """A command line whose usage errors raise, as the main one's do."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise LlmPerfOptError(message)


def _parse(*arguments: str) -> argparse.Namespace:
    parser = _Parser(prog="llm-perf-opt")
    cli.register(parser.add_subparsers(dest="command", parser_class=_Parser))
    return parser.parse_args(["serve", *arguments])


def test_serve_defaults_to_loopback_and_a_local_store() -> None:
    """``serve`` binds 127.0.0.1:8000, stores in ./service, one worker, and dispatches to the handler."""
    args = _parse()
    assert (args.host, args.port, args.store, args.workers, args.workers_only) == (
        "127.0.0.1",
        8000,
        "service",
        1,
        False,
    )
    assert args.func is cli.handler


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--port", "70000"), "argument --port: must be an integer from 0 to 65535, got 70000"),
        (("--workers", "x"), "argument --workers: must be an integer from 0 to 64, got 'x'"),
        (("--host", "example.com"), "--host: must be an IP address or localhost, got 'example.com'"),
        (("--cors-origin", "ftp://x"), "--cors-origin: must be an http:// or https:// origin, got 'ftp://x'"),
        (("--store", "mysql://db"), "store: unknown store URL 'mysql://db'"),
        (("--workers-only", "--workers", "0"), "--workers: --workers-only needs at least 1 worker, got 0"),
    ],
)
def test_a_bad_option_is_one_error_naming_it(
    arguments: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    """Each bad option fails before the server binds, with the option, the value and what is accepted."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("litestar")
    with pytest.raises(LlmPerfOptError, match=message.replace(".", r"\.").replace("/", "/")):
        args = (
            _parse("--store", str(tmp_path), *arguments) if "--store" not in arguments else _parse(*arguments)
        )
        cli.handler(args)


def test_the_reports_folder_follows_the_store() -> None:
    """Reports go beside an SQLite store, into a store folder, or to ./reports for PostgreSQL."""
    assert cli._reports_dir("sqlite:////data/jobs.sqlite3", None) == Path("/data")
    assert cli._reports_dir("shared", None) == Path("shared")
    assert cli._reports_dir("postgresql://db/jobs", None) == Path("reports")
    assert cli._reports_dir("postgresql://db/jobs", Path("/mnt/reports")) == Path("/mnt/reports")
