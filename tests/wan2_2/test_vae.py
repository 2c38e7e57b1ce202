"""The Wan2.2 VAE: its own structure, and exact agreement with diffusers' records, id by id."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.compiler import compile_tree
from llm_perf_opt.symbolic.module import build_tree
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.implementation import DIFFUSERS, OFFICIAL
from llm_perf_opt.wan2_1.vae import declare_vae as declare_wan2_1_vae
from llm_perf_opt.wan2_2.check import compare_vae_with_record
from llm_perf_opt.wan2_2.evaluate import evaluate_vae
from llm_perf_opt.wan2_2.vae import declare_vae

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "wan2_2_vae"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))


def _record(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def _metrics(root: Any, **load: int) -> dict[str, dict[str, int]]:
    return compile_tree(build_tree(root, "vae")).evaluate_exact(Workload(steps=1, text_len=0, **load))


def test_structure_is_its_own() -> None:
    """12 patchified channels in and out, 160/256 base dims, 48 latent channels, residual shortcuts."""
    metrics = _metrics(declare_vae(OFFICIAL), batch=1, frames=17, height=256, width=256)
    assert metrics["vae"]["params"] == 704_688_668
    # conv1: CausalConv3d(12, 160, 3): 12·160·27 + 160 parameters
    assert metrics["vae.encoder.conv1"]["params"] == 12 * 160 * 27 + 160
    # decoder head: CausalConv3d(256, 12, 3)
    assert metrics["vae.decoder.head.2"]["params"] == 256 * 12 * 27 + 12
    assert "vae.encoder.downsamples.1.avg_shortcut" in metrics
    assert "vae.decoder.upsamples.0.upsamples.3.time_conv" in metrics
    wan2_1 = _metrics(declare_wan2_1_vae(OFFICIAL), batch=1, frames=17, height=256, width=256)
    assert wan2_1["vae"]["params"] != metrics["vae"]["params"]


def test_latent_is_a_sixteenth_of_the_video() -> None:
    """conv2 (1×1×1 on the 48-channel latent) costs 2·48·48 per latent position: T·H/16·W/16."""
    metrics = _metrics(
        declare_vae(DIFFUSERS, encodes=0, decodes=1), batch=1, frames=121, height=704, width=1280
    )
    assert metrics["vae.conv2"]["flops"] == 2 * 48 * 48 * 31 * 44 * 80


def test_every_use_has_golden_records() -> None:
    """Encode and decode at 256×256, a batch of 2 at 384×640, TI2V-5B's default decode and image encode."""
    assert len(GOLDEN_FILES) == 6
    assert {_record(p)["use"] for p in GOLDEN_FILES} == {"encode", "decode"}


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_exact_agreement_with_golden_record(path: Path) -> None:
    """FLOPs, parameters and whole eager bytes of every id, and convolution and attention bytes, equal
    diffusers' model."""
    rows = compare_vae_with_record(_record(path))
    assert len(rows) > 200
    assert not [row for row in rows if not row.matches]
    metrics = {row.metric for row in rows}
    assert {
        "flops",
        "params",
        "module_bytes_read",
        "module_bytes_written",
        "conv_bytes_read",
        "conv_bytes_written",
        "sdpa_bytes_read",
    } <= metrics
    module_bytes = {row.module_id for row in rows if row.metric == "module_bytes_read"}
    assert {"vae", "vae.decoder.upsamples.0.avg_shortcut", "vae.encoder.downsamples.1.avg_shortcut"} & set(
        _record(path)["modules"]
    ) <= module_bytes


def test_a_wrong_figure_is_caught() -> None:
    """One FLOP more on a decoder time convolution, one byte more written by a shortcut: exactly those."""
    record = copy.deepcopy(_record(GOLDEN_DIR / "decode__b1_f17_256x256.json"))
    record["modules"]["vae.decoder.upsamples.0.upsamples.3.time_conv"]["flops"] += 1
    record["modules"]["vae.decoder.upsamples.1.avg_shortcut"]["module_bytes"][1] += 1
    mismatches = {(r.module_id, r.metric) for r in compare_vae_with_record(record) if not r.matches}
    assert mismatches == {
        ("vae.decoder.upsamples.0.upsamples.3.time_conv", "flops"),
        ("vae.decoder.upsamples.1.avg_shortcut", "module_bytes_written"),
    }


def test_a_wan2_1_record_is_refused() -> None:
    """A record of another VAE is an error naming the component."""
    with pytest.raises(LlmPerfOptError, match=r"component: expected a Wan2\.2 VAE record"):
        compare_vae_with_record({"component": "vae", "use": "decode"})


def test_evaluate_vae_validates_and_evaluates() -> None:
    """evaluate_vae gives the tree's exact figures and refuses sizes off the 32-pixel grid."""
    metrics = evaluate_vae(frames=17, height=256, width=256, encodes=0, decodes=1, implementation="diffusers")
    record = _record(GOLDEN_DIR / "decode__b1_f17_256x256.json")
    assert metrics["vae.decoder"]["flops"] == record["modules"]["vae.decoder"]["flops"]
    with pytest.raises(LlmPerfOptError, match="nearest valid: 256 or 288"):
        evaluate_vae(frames=17, height=272, width=256)
