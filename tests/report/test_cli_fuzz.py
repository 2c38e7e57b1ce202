"""Fuzzed command lines, run in-process through ``main(argv)``: every outcome is exit 0, or exit 2
with one line on stderr and no traceback, and nothing is written outside the output folder."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_perf_opt.cli import main

VALUES = {
    # option: (valid values, invalid values)
    "--variant": (("t2v-1.3b",), ("wan3", "")),
    "--profile": (("wan2-1-ci-tiny",), ("nope",)),
    "--set": (
        ("num_frames=9", "height=512"),
        ("num_frames=0", "height=17", "text_len=5000", "batch_size=1_000", "x"),
    ),
    "--device": (("h100", "rtx4090"), ("tpu-v5",)),
    "--gpus": (("1", "2"), ("0", "-1", "+9", "٣", "x")),
    "--ulysses": (("1",), ("0", "5")),
    "--attention-kernel": (("fa2", "sdpa"), ("flash9",)),
    "--offload": (("none", "model"), ("disk",)),
    "--precision": (("bf16",), ("fp64", "int3")),
    "--frames": (("17", "81"), ("0", "1e3")),
    "--height": (("480",), ("17", "-480")),
    "--width": (("832",), ("abc",)),
    "--module": (("pipeline", "diffusion.blocks.0"), ("nowhere",)),
    "--metric": (("flops", "bytes_read"), ("speed",)),
    "--time-budget": (("600",), ("-1", "nan")),
    "--memory-budget": (("16",), ("0", "inf")),
    "--implementation": (("official", "diffusers"), ("other",)),
}
DEPLOYMENT = ("--device", "--gpus", "--ulysses", "--attention-kernel", "--offload", "--precision")
COMMANDS = {
    # command: (required options, other options, flags)
    "report": (
        ("--variant", "--profile"),
        ("--set", "--implementation", *DEPLOYMENT),
        ("--no-guidance", "--force-rebuild"),
    ),
    "estimate": (
        ("--variant", "--profile", "--device"),
        ("--set", *DEPLOYMENT[1:]),
        ("--t5-cpu", "--no-pad-text"),
    ),
    "size": (
        ("--variant", "--device"),
        ("--frames", "--height", "--width", "--time-budget", "--memory-budget", "--gpus"),
        (),
    ),
    "grid": (
        ("--variant",),
        ("--frames", "--height", "--width", "--module", "--metric", "--implementation"),
        (),
    ),
    "dit": (("--variant",), ("--frames", "--height", "--width", "--implementation"), ("--no-pad-text",)),
    "formula": (("--variant", "--module"), ("--metric",), ("--latex",)),
    "variants": ((), (), ()),
    "devices": ((), (), ()),
}
SIZE_QUESTIONS = (("frames", "resolution"), ("weight",))
ESTIMATE = ("estimate", "--variant", "t2v-1.3b", "--profile", "wan2-1-ci-tiny", "--device", "h100")


def _value(draw: st.DrawFn, name: str) -> str:
    valid, invalid = VALUES[name]
    return draw(st.sampled_from(invalid)) if draw(st.integers(0, 9)) == 0 else draw(st.sampled_from(valid))


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command with its required options (one now and then left out), some others, values mostly
    valid and now and then not."""
    command = draw(st.sampled_from(sorted(COMMANDS)))
    required, others, flags = COMMANDS[command]
    argv = [command]
    if command == "size":
        valid, invalid = SIZE_QUESTIONS
        argv.append(draw(st.sampled_from(invalid if draw(st.integers(0, 9)) == 0 else valid)))
    names = [name for name in required if draw(st.integers(0, 19)) > 0]
    names += draw(st.lists(st.sampled_from(others), max_size=3, unique=True)) if others else []
    for name in names:
        argv += [name, _value(draw, name)]
    argv += draw(st.lists(st.sampled_from(flags), max_size=1, unique=True)) if flags else []
    return argv


def _run(argv: list[str], out: Path) -> tuple[int, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = main([*argv, "--out", str(out)] if argv[0] in ("report", "grid") else argv)
        except SystemExit as exit_:  # argparse's --help
            status = int(exit_.code or 0)
    return status, stderr.getvalue()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=command_lines())
def test_every_command_line_exits_0_or_2_with_one_line(argv: list[str], sandbox: Path) -> None:
    """Valid command lines exit 0; invalid ones exit 2 with one error line naming what is wrong."""
    out = sandbox / "out" / ("grid.csv" if argv[0] == "grid" else "reports")
    before = {p for p in sandbox.rglob("*") if "out" not in p.relative_to(sandbox).parts}
    cwd = os.getcwd()
    os.chdir(sandbox)
    try:
        status, errors = _run(argv, out)
    finally:
        os.chdir(cwd)
    assert status in (0, 2), (argv, status, errors)
    assert "Traceback" not in errors
    if status == 2:
        lines = errors.strip().splitlines()
        assert len(lines) == 1, (argv, errors)
        assert lines[0].startswith("llm-perf-opt: error: "), (argv, errors)
    after = {p for p in sandbox.rglob("*") if "out" not in p.relative_to(sandbox).parts}
    assert after == before, f"{argv} wrote outside the output folder: {sorted(after - before)}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["report", "--variant", "t2v-1.3b", "--profile", "wan2-1-ci-tiny", "--gpus", "8"],
            "--gpus: needs --device",
        ),
        (
            [
                "estimate",
                "--variant",
                "t2v-1.3b",
                "--profile",
                "wan2-1-ci-tiny",
                "--device",
                "h100",
                "--ulysses",
                "0",
            ],
            "ulysses: must be ≥ 1, got 0",
        ),
        (
            [*ESTIMATE[:-1], "a100", "--attention-kernel", "fa3"],
            "attention_kernel: 'fa3' has no efficiency on a100",
        ),
        (
            [
                "estimate",
                "--variant",
                "t2v-1.3b",
                "--profile",
                "wan2-1-ci-tiny",
                "--device",
                "h100",
                "--gpus",
                "1_000",
            ],
            "must be an integer written in ASCII digits",
        ),
    ],
)
def test_named_errors(argv: list[str], message: str, tmp_path: Path) -> None:
    """The errors the fuzzer finds, pinned: each names the option and what is accepted."""
    status, errors = _run(argv, tmp_path / "reports")
    assert status == 2
    assert message in errors
