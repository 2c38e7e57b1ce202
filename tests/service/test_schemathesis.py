"""schemathesis against the live server's served OpenAPI document: every check, 0 failures."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import LiveServer

pytest.importorskip("schemathesis")

CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.fixture
def api_only_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server without workers: the fuzzer's runs queue up without computing (reads say 409)."""
    live = LiveServer(str(tmp_path), tmp_path, "--workers", "0")
    yield live
    live.stop()


def test_schemathesis_finds_no_failure(api_only_server: LiveServer, tmp_path: Path) -> None:
    """Coverage, fuzzing and stateful phases over all operations, all checks: no failure, no error."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
        f"{api_only_server.url}/openapi.json",
        "--checks", "all", "--max-examples", "10", "--seed", "1", "--workers", "1",
        "--request-timeout", "120", "--max-response-time", "120", "--no-color",
    ]  # fmt: skip
    # In a folder of its own: schemathesis keeps a cache of crashes in its working folder.
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path)
    output = result.stdout + result.stderr
    cases = re.search(r"(\d+) generated", output)
    print(f"schemathesis: {cases.group(1) if cases else '?'} cases")
    assert result.returncode == 0, output[-6000:]
    assert cases is not None and int(cases.group(1)) > 100
    assert "No issues found" in output or re.search(r"\d+ passed", output), output[-3000:]
