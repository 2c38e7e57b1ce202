"""The analytic transformer against a live measurement of the real implementation, any valid workload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from llm_perf_opt.reference import DitWorkload, dit_record, measure_dit
from llm_perf_opt.reference.__main__ import main
from llm_perf_opt.wan2_1.check import compare_with_record
from llm_perf_opt.wan2_1.variants import VARIANTS, get_variant

pytestmark = pytest.mark.reference

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "dit"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(list(VARIANTS)),
    batch=st.integers(1, 3),
    frames=st.integers(1, 40),
    height=st.integers(1, 24).map(lambda k: 16 * k),
    width=st.integers(1, 24).map(lambda k: 16 * k),
    text_len=st.integers(1, 512),
)
def test_exact_agreement_at_drawn_workloads(
    name: str, batch: int, frames: int, height: int, width: int, text_len: int
) -> None:
    """Odd frame counts, non-square sizes, batches > 1 and short prompts: every figure equal.

    That includes every module's eager bytes read and written, image variants at batches > 1 (whose
    context projections run as ``bmm`` plus a bias add) among them.
    """
    variant = get_variant(name)
    if variant.num_images:
        text_len = variant.text_len  # the image context is split at 512 text tokens
    workload = DitWorkload(batch=batch, frames=frames, height=height, width=width, text_len=text_len)
    measurement = measure_dit(
        variant, batch=batch, frames=frames, height=height, width=width, text_len=text_len
    )
    rows = compare_with_record(dit_record(variant, workload, measurement))
    mismatches = [row for row in rows if not row.matches]
    assert not mismatches, mismatches[:5]
    assert {"module_bytes_read", "module_bytes_written"} <= {row.metric for row in rows}


def test_compare_command_exits_zero_on_agreement(capsys: pytest.CaptureFixture[str]) -> None:
    """The side-by-side command measures, prints the table and a zero-mismatch summary, exit 0."""
    status = main(
        [
            "compare",
            "--variant",
            "t2v-1.3b",
            "--frames",
            "9",
            "--height",
            "64",
            "--width",
            "96",
            "--depth",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[0].split() == ["module", "metric", "analytic", "reference", "difference"]
    assert "diffusion.blocks" in out
    assert out.splitlines()[-1].endswith(" figures compared, 0 mismatches")


def test_compare_command_exits_one_on_a_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A saved record with one wrong figure makes the command print it and exit 1."""
    record = json.loads((GOLDEN_DIR / "t2v-1.3b__b1_f4_256x256_l64.json").read_text(encoding="utf-8"))
    record["modules"]["diffusion.blocks.0.ffn.2"]["flops"] += 2
    saved = tmp_path / "record.json"
    saved.write_text(json.dumps(record), encoding="utf-8")
    args = ["compare", "--variant", "t2v-1.3b", "--frames", "4", "--height", "256", "--width", "256"]
    status = main([*args, "--record", str(saved), "--depth", "1"])
    out = capsys.readouterr().out
    assert status == 1
    assert [line.split()[:2] for line in out.splitlines() if "ffn.2" in line] == [
        ["diffusion.blocks.0.ffn.2", "flops"]
    ]
    assert out.splitlines()[-1].endswith(" figures compared, 1 mismatches")
