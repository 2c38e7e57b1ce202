"""The reference harness on diffusers' AutoencoderKLWan: published totals, golden files, ids, drawn sizes."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference.__main__ import main
from llm_perf_opt.reference.counting import Measurement, OpCost, exclusive_costs
from llm_perf_opt.reference.golden import (
    dumps_record,
    vae_golden_cases,
    vae_golden_file_name,
    vae_record,
)
from llm_perf_opt.reference.official_ids import VAE_DIFFUSERS_TO_OFFICIAL, official_vae_id
from llm_perf_opt.reference.vae import (
    VaeUse,
    VaeWorkload,
    build_diffusers_vae,
    measure_vae,
    official_vae_costs,
)
from llm_perf_opt.wan2_1.check import compare_vae_with_record

pytestmark = pytest.mark.reference

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "vae"


@functools.cache
def measured(workload: VaeWorkload, fused_sdpa: bool = True) -> Measurement:
    """One measurement per case for the whole session (a VAE pass on meta takes 1–2 s at 720p)."""
    w = workload
    return measure_vae(
        w.use, batch=w.batch, frames=w.frames, height=w.height, width=w.width, fused_sdpa=fused_sdpa
    )


def _workload(use: str, frames: int, height: int, width: int, batch: int = 1) -> VaeWorkload:
    return VaeWorkload(use=cast(VaeUse, use), batch=batch, frames=frames, height=height, width=width)


@pytest.mark.parametrize(
    ("use", "height", "width", "flops"),
    [
        ("encode", 480, 832, 163_749_702_205_440),
        ("encode", 720, 1280, 381_674_137_190_400),
        ("decode", 480, 832, 275_352_205_639_680),
        ("decode", 720, 1280, 639_218_375_884_800),
    ],
)
def test_total_flops_equal_the_published_figures(use: str, height: int, width: int, flops: int) -> None:
    """One encode or decode of 81 frames counts the published FLOPs to the last digit."""
    assert measured(_workload(use, 81, height, width)).total.flops == flops


def test_parameter_count_equals_the_published_figure() -> None:
    """The Wan2.1 VAE has 126,892,531 parameters: encoder 53.60 M, decoder 73.30 M, quant convs 1,328."""
    model = build_diffusers_vae()
    assert sum(p.numel() for p in model.parameters()) == 126_892_531
    parts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    assert parts == {
        "encoder": 53_595_872,
        "quant_conv": 1_056,
        "post_quant_conv": 272,
        "decoder": 73_295_331,
    }


@pytest.mark.parametrize(
    "workload",
    vae_golden_cases(),
    ids=[vae_golden_file_name(w).removesuffix(".json") for w in vae_golden_cases()],
)
def test_fresh_measurement_equals_golden_file(workload: VaeWorkload) -> None:
    """A fresh measurement gives the stored golden record, id by id (FLOPs, parameters, bytes)."""
    stored = json.loads((GOLDEN_DIR / vae_golden_file_name(workload)).read_text(encoding="utf-8"))
    fresh = vae_record(workload, measured(workload))
    versions = {key: stored["reference"][key] for key in ("torch", "diffusers")}
    for key in ("use", "workload", "inputs", "totals", "ops"):
        assert fresh[key] == stored[key], f"{key} differs (golden made with {versions})"
    assert fresh["modules"] == stored["modules"], f"modules differ (golden made with {versions})"


def test_golden_files_are_exactly_the_cases() -> None:
    """Every golden case has a file, no stale file is left, and each file is the serializer's output."""
    expected = sorted(vae_golden_file_name(w) for w in vae_golden_cases())
    assert sorted(p.name for p in GOLDEN_DIR.glob("*.json")) == expected
    workload = vae_golden_cases()[-1]
    path = GOLDEN_DIR / vae_golden_file_name(workload)
    assert path.read_text(encoding="utf-8") == dumps_record(vae_record(workload, measured(workload)))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    use=st.sampled_from(["encode", "decode"]),
    batch=st.integers(1, 2),
    frames=st.one_of(st.integers(0, 6).map(lambda k: 4 * k + 1), st.integers(1, 25)),
    height=st.integers(1, 6).map(lambda k: 16 * k),
    width=st.integers(1, 6).map(lambda k: 16 * k),
)
def test_exact_agreement_at_drawn_workloads(
    use: str, batch: int, frames: int, height: int, width: int
) -> None:
    """Frame counts 4k+1 and not, non-square sizes, batches > 1: every compared figure is equal."""
    workload = _workload(use, frames, height, width, batch)
    rows = compare_vae_with_record(vae_record(workload, measured(workload)))
    mismatches = [row for row in rows if not row.matches]
    assert not mismatches, mismatches[:5]


def test_official_ids_roll_up_and_hold_everything() -> None:
    """Own ops of all modules add up to the forward; each id is its children's sum but for its own ops."""
    m = measured(_workload("decode", 9, 32, 48))
    total = OpCost()
    for ops in exclusive_costs(m.by_module).values():
        for cost in ops.values():
            total = total + cost
    assert total == m.total
    official = official_vae_costs(m)
    assert official.cost("vae") == m.total
    assert official.parameters["vae"] == 126_892_531
    ids = set(official.by_id) | set(official.parameters)
    for parent in {i.rpartition(".")[0] for i in ids if "." in i}:
        children = [i for i in ids if i.rpartition(".")[0] == parent]
        assert official.parameters.get(parent, 0) == sum(official.parameters.get(c, 0) for c in children)
        own_flops = official.cost(parent).flops - sum(official.cost(c).flops for c in children)
        attention = "_scaled_dot_product_flash_attention_for_cpu"
        own_attention = official.op_cost(parent, f"aten.{attention}").flops - sum(
            official.op_cost(c, f"aten.{attention}").flops for c in children
        )
        assert own_flops == own_attention, parent


@pytest.mark.parametrize(
    ("diffusers_name", "official"),
    [
        ("", "vae"),
        ("quant_conv", "vae.conv1"),
        ("post_quant_conv", "vae.conv2"),
        ("encoder.conv_in", "vae.encoder.conv1"),
        ("encoder.down_blocks.0.norm1", "vae.encoder.downsamples.0.residual.0"),
        ("encoder.down_blocks.0.conv1", "vae.encoder.downsamples.0.residual.2"),
        ("encoder.down_blocks.0.dropout", "vae.encoder.downsamples.0.residual.5"),
        ("encoder.down_blocks.3.conv2", "vae.encoder.downsamples.3.residual.6"),
        ("encoder.down_blocks.3.conv_shortcut", "vae.encoder.downsamples.3.shortcut"),
        ("encoder.down_blocks.5.resample.0", "vae.encoder.downsamples.5.resample.0"),
        ("encoder.down_blocks.8.time_conv", "vae.encoder.downsamples.8.time_conv"),
        ("encoder.mid_block", "vae.encoder.middle"),
        ("encoder.mid_block.resnets.1.norm2", "vae.encoder.middle.2.residual.3"),
        ("encoder.mid_block.attentions.0.to_qkv", "vae.encoder.middle.1.to_qkv"),
        ("encoder.norm_out", "vae.encoder.head.0"),
        ("encoder.nonlinearity", "vae.encoder.head.1"),
        ("encoder.conv_out", "vae.encoder.head.2"),
        ("decoder.conv_in", "vae.decoder.conv1"),
        ("decoder.mid_block.attentions.0.proj", "vae.decoder.middle.1.proj"),
        ("decoder.up_blocks", "vae.decoder.upsamples"),
        ("decoder.up_blocks.0.resnets.2.conv1", "vae.decoder.upsamples.2.residual.2"),
        ("decoder.up_blocks.0.upsamplers.0.time_conv", "vae.decoder.upsamples.3.time_conv"),
        ("decoder.up_blocks.1.resnets.0.conv_shortcut", "vae.decoder.upsamples.4.shortcut"),
        ("decoder.up_blocks.1.upsamplers.0.resample.1", "vae.decoder.upsamples.7.resample.1"),
        ("decoder.up_blocks.2.upsamplers.0.resample.0", "vae.decoder.upsamples.11.resample.0"),
        ("decoder.up_blocks.3.resnets.2.conv2", "vae.decoder.upsamples.14.residual.6"),
        ("decoder.conv_out", "vae.decoder.head.2"),
        ("encoder.down_blocks.0.nonlinearity", None),  # one SiLU for residual.1 and residual.4
        ("encoder.mid_block.resnets", None),
        ("decoder.up_blocks.2", None),
        ("decoder.up_blocks.2.upsamplers", None),
    ],
)
def test_mapping_table_rows(diffusers_name: str, official: str | None) -> None:
    """The tables map diffusers names onto the official ids of wan/modules/vae.py."""
    assert official_vae_id(diffusers_name) == official


def test_mapping_covers_every_diffusers_name() -> None:
    """Every module and parameter owner has a row, and distinct modules get distinct ids."""
    model = build_diffusers_vae()
    mapped = [official_vae_id(name) for name, _ in model.named_modules()]
    ids = [i for i in mapped if i is not None]
    assert len(ids) == len(set(ids))
    for name, _ in model.named_parameters():
        official_vae_id(name.rpartition(".")[0])
    assert len({row[0] for row in VAE_DIFFUSERS_TO_OFFICIAL}) == len(VAE_DIFFUSERS_TO_OFFICIAL)
    with pytest.raises(LlmPerfOptError, match="VAE_DIFFUSERS_TO_OFFICIAL"):
        official_vae_id("encoder.down_blocks.0.avg_shortcut")


def test_math_and_fused_attention_give_the_same_flops() -> None:
    """The math SDPA decomposition and the fused op count the same FLOPs on every id."""
    workload = _workload("decode", 5, 32, 32)
    fused, math = measured(workload, True), measured(workload, False)
    assert official_vae_costs(fused).flops == official_vae_costs(math).flops


def test_meta_device_counts_equal_real_tensors() -> None:
    """On real CPU tensors (a small VAE of the same structure, which dispatch the fused attention op
    natively) every module counts the same FLOPs and bytes as on meta."""
    import torch
    from diffusers import AutoencoderKLWan

    def small() -> torch.nn.Module:
        model: torch.nn.Module = AutoencoderKLWan(base_dim=8)  # type: ignore[no-untyped-call]
        return model.eval()

    uses: tuple[VaeUse, ...] = ("encode", "decode")
    for use in uses:
        meta = measure_vae(use, model=small().to("meta"), batch=1, frames=5, height=16, width=16)
        real = measure_vae(
            use, model=small(), device="cpu", fused_sdpa=False, batch=1, frames=5, height=16, width=16
        )
        assert real.by_module == meta.by_module
        assert real.total.flops > 0


def test_commands_measure_compare_and_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``vae`` prints and saves the record, ``vae-compare`` exits 0 on it and 1 on a tampered copy."""
    out = tmp_path / "decode.json"
    argv = ["--use", "decode", "--frames", "9", "--height", "32", "--width", "48"]
    assert main(["vae", *argv, "--json", str(out), "--depth", "3"]) == 0
    printed = capsys.readouterr().out
    assert "vae.decoder.upsamples" in printed
    record = json.loads(out.read_text(encoding="utf-8"))
    assert f"{record['totals']['flops']:,} FLOPs" in printed
    assert main(["vae-compare", *argv, "--record", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(" figures compared, 0 mismatches")
    record["modules"]["vae.decoder.conv1"]["flops"] += 2
    out.write_text(json.dumps(record), encoding="utf-8")
    assert main(["vae-compare", *argv, "--record", str(out), "--depth", "1"]) == 1
    assert capsys.readouterr().out.splitlines()[-1].endswith(" figures compared, 1 mismatches")


def test_command_rejects_bad_input_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid size exits with status 2 and the field-naming message, without a traceback."""
    argv = ["vae", "--use", "encode", "--frames", "81", "--height", "470", "--width", "832"]
    assert main(argv) == 2
    assert "error: height: must be a multiple of 16, got 470; nearest: 464 or 480" in capsys.readouterr().err
