"""The command line: the memory table, one run, sizing queries, and errors as messages."""

from __future__ import annotations

import pytest

from llm_perf_opt.hardware.__main__ import main


def test_memory_table(capsys: pytest.CaptureFixture[str]) -> None:
    """``memory`` prints every C1–C3 column with the published and the predicted peak."""
    assert main(["memory"]) == 0
    out = capsys.readouterr().out
    assert "69.10" in out and "12.20" in out and "vae_decode" in out


def test_run_prints_the_stages(capsys: pytest.CaptureFixture[str]) -> None:
    """``run`` prints the total, the peak memory and each stage."""
    assert main(["run", "t2v-1.3b", "rtx4090", "--height", "480", "--width", "832", "--t5-cpu"]) == 0
    out = capsys.readouterr().out
    assert "--offload_model True --t5_cpu" in out and "text_encoder" in out and "vae_decode" in out


def test_size_queries(capsys: pytest.CaptureFixture[str]) -> None:
    """``size frames`` and ``size devices`` print the answer and the figures around it."""
    assert (
        main(
            [
                "size",
                "frames",
                "t2v-1.3b",
                "h100",
                "--height",
                "480",
                "--width",
                "832",
                "--time-budget",
                "120",
            ]
        )
        == 0
    )
    assert "largest frame count" in capsys.readouterr().out
    assert main(["size", "devices", "t2v-14b", "h100", "--time-budget", "600"]) == 0
    out = capsys.readouterr().out
    assert "fewest devices" in out and ": 4" in out


def test_bad_input_is_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad setup exits with status 2 and the library's message, not a traceback."""
    assert main(["run", "t2v-1.3b", "h100", "--gpus", "8", "--ulysses", "8"]) == 2
    assert "cannot be split 8 ways" in capsys.readouterr().err
    assert main(["size", "resolution", "t2v-1.3b", "h100", "--aspect", "wide"]) == 2
    assert "aspect: expected WIDTH:HEIGHT" in capsys.readouterr().err
