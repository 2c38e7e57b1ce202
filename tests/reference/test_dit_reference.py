"""The reference harness on the real diffusers DiT: published totals, golden files, conventions."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import attrs
import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference import (
    DIFFUSERS_TO_OFFICIAL,
    DitWorkload,
    Measurement,
    OpCost,
    build_diffusers_dit,
    dit_record,
    measure_dit,
    official_id,
    to_official,
)
from llm_perf_opt.reference.__main__ import main
from llm_perf_opt.reference.counting import CPU_FLASH_SDPA, exclusive_costs
from llm_perf_opt.reference.golden import dumps_record, golden_cases, golden_file_name
from llm_perf_opt.wan2_1.variants import VARIANTS, WanVariant, get_variant

pytestmark = pytest.mark.reference

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "dit"
BF16 = 2
FP32 = 4

P480 = DitWorkload(batch=1, frames=81, height=480, width=832, text_len=512)
P720 = DitWorkload(batch=1, frames=81, height=720, width=1280, text_len=512)
SMALL = DitWorkload(batch=1, frames=5, height=64, width=96, text_len=512)


@functools.cache
def measured(variant_name: str, workload: DitWorkload, fused_sdpa: bool = True) -> Measurement:
    """One measurement per case for the whole session (a 14B forward on meta takes about a second)."""
    w = workload
    return measure_dit(
        variant_name,
        batch=w.batch,
        frames=w.frames,
        height=w.height,
        width=w.width,
        text_len=w.text_len,
        fused_sdpa=fused_sdpa,
    )


@pytest.mark.parametrize(
    ("variant_name", "workload", "flops"),
    [
        ("t2v-1.3b", P480, 283_001_787_777_024),
        ("t2v-1.3b", P720, 1_249_837_785_022_464),
        ("t2v-14b", P480, 1_678_370_283_192_320),
        ("t2v-14b", P720, 6_523_436_592_005_120),
        ("i2v-14b-480p", P480, 1_686_376_373_944_320),
    ],
)
def test_total_flops_equal_the_published_figures(
    variant_name: str, workload: DitWorkload, flops: int
) -> None:
    """One forward's FLOPs equal the totals derived from the official module definitions, to the digit."""
    assert measured(variant_name, workload).total.flops == flops


@pytest.mark.parametrize(
    ("variant_name", "total", "per_block"),
    [
        ("t2v-1.3b", 1_418_996_800, 46_440_704),
        ("t2v-14b", 14_288_491_584, 351_394_304),
        ("i2v-14b-480p", 16_394_878_784, 403_838_464),
        ("i2v-14b-720p", 16_394_878_784, 403_838_464),
        ("flf2v-14b", 16_395_536_704, 403_838_464),
    ],
)
def test_parameter_counts_equal_the_published_figures(variant_name: str, total: int, per_block: int) -> None:
    """The diffusers model built from a variant record has the published parameter counts."""
    model = build_diffusers_dit(variant_name)
    assert sum(p.numel() for p in model.parameters()) == total
    blocks = model.get_submodule("blocks")
    assert {sum(p.numel() for p in block.parameters()) for block in blocks} == {per_block}


@pytest.mark.parametrize(
    ("variant", "workload"),
    golden_cases(),
    ids=[golden_file_name(v, w).removesuffix(".json") for v, w in golden_cases()],
)
def test_fresh_measurement_equals_golden_file(variant: WanVariant, workload: DitWorkload) -> None:
    """A fresh measurement gives the stored golden record, id by id (FLOPs, parameters, bytes)."""
    stored = json.loads((GOLDEN_DIR / golden_file_name(variant, workload)).read_text(encoding="utf-8"))
    fresh = dit_record(variant, workload, measured(variant.model_variant, workload))
    versions = {key: stored["reference"][key] for key in ("torch", "diffusers")}
    for key in ("variant", "workload", "inputs", "totals", "ops"):
        assert fresh[key] == stored[key], f"{key} differs (golden made with {versions})"
    assert list(fresh["modules"]) == list(stored["modules"])
    differing = [k for k in fresh["modules"] if fresh["modules"][k] != stored["modules"][k]]
    assert not differing, f"{len(differing)} ids differ, first {differing[:3]} (golden made with {versions})"


def test_golden_files_are_exactly_the_cases() -> None:
    """Every golden case has a file and no stale file is left behind."""
    expected = sorted(golden_file_name(v, w) for v, w in golden_cases())
    assert sorted(p.name for p in GOLDEN_DIR.glob("*.json")) == expected
    assert len(expected) == 3 * len(VARIANTS) + 4  # 1280×720 for the four 14B variants


def test_golden_file_text_is_the_serializer_output() -> None:
    """Golden files are written by dumps_record (so regenerating them changes nothing)."""
    variant, workload = golden_cases()[0]
    path = GOLDEN_DIR / golden_file_name(variant, workload)
    record = dit_record(variant, workload, measured(variant.model_variant, workload))
    assert path.read_text(encoding="utf-8") == dumps_record(record)


@pytest.mark.parametrize("variant_name", list(VARIANTS))
def test_exclusive_costs_add_up_to_the_total(variant_name: str) -> None:
    """Each module's own ops, summed over all modules, are the whole forward; so is the root's total."""
    m = measured(variant_name, SMALL)
    own = exclusive_costs(m.by_module)
    total = OpCost()
    for ops in own.values():
        for cost in ops.values():
            total = total + cost
    assert total == m.total
    assert m.module_cost("") == m.total
    official = to_official(m.by_module, m.parameters, m.module_classes)
    assert official.cost("diffusion") == m.total
    assert official.parameters["diffusion"] == sum(m.parameters.values())


@pytest.mark.parametrize("variant_name", list(VARIANTS))
def test_official_ids_roll_up(variant_name: str) -> None:
    """Each id's parameters are its children's sum; so are its FLOPs, but for its own attention cores."""
    m = measured(variant_name, SMALL)
    official = to_official(m.by_module, m.parameters, m.module_classes)
    sdpa = str(CPU_FLASH_SDPA)
    ids = set(official.by_id) | set(official.parameters)
    parents = {i.rpartition(".")[0] for i in ids if "." in i}
    assert parents <= ids
    for parent in parents:
        children = [i for i in ids if i.rpartition(".")[0] == parent]
        assert official.parameters.get(parent, 0) == sum(official.parameters.get(c, 0) for c in children)
        own_flops = official.cost(parent).flops - sum(official.cost(c).flops for c in children)
        own_attention = official.op_cost(parent, sdpa).flops - sum(
            official.op_cost(c, sdpa).flops for c in children
        )
        assert own_flops == own_attention, parent
        if parent.endswith(("self_attn", "cross_attn")):
            assert own_attention > 0, parent


@pytest.mark.parametrize(
    ("diffusers_name", "official"),
    [
        ("", "diffusion"),
        ("patch_embedding", "diffusion.patch_embedding"),
        ("condition_embedder.time_embedder.linear_1", "diffusion.time_embedding.0"),
        ("condition_embedder.time_embedder.linear_2", "diffusion.time_embedding.2"),
        ("condition_embedder.time_proj", "diffusion.time_projection.1"),
        ("condition_embedder.act_fn", "diffusion.time_projection.0"),
        ("condition_embedder.text_embedder.linear_1", "diffusion.text_embedding.0"),
        ("condition_embedder.text_embedder.linear_2", "diffusion.text_embedding.2"),
        ("condition_embedder.image_embedder.norm1", "diffusion.img_emb.proj.0"),
        ("condition_embedder.image_embedder.ff.net.0.proj", "diffusion.img_emb.proj.1"),
        ("condition_embedder.image_embedder.ff.net.2", "diffusion.img_emb.proj.3"),
        ("condition_embedder.image_embedder.norm2", "diffusion.img_emb.proj.4"),
        ("condition_embedder.image_embedder.pos_embed", "diffusion.img_emb.emb_pos"),
        ("blocks.12.attn1.to_q", "diffusion.blocks.12.self_attn.q"),
        ("blocks.12.attn1.to_out.0", "diffusion.blocks.12.self_attn.o"),
        ("blocks.12.attn1.norm_k", "diffusion.blocks.12.self_attn.norm_k"),
        ("blocks.3.attn2.add_k_proj", "diffusion.blocks.3.cross_attn.k_img"),
        ("blocks.3.attn2.add_v_proj", "diffusion.blocks.3.cross_attn.v_img"),
        ("blocks.3.attn2.norm_added_k", "diffusion.blocks.3.cross_attn.norm_k_img"),
        ("blocks.0.norm2", "diffusion.blocks.0.norm3"),
        ("blocks.0.norm3", "diffusion.blocks.0.norm2"),
        ("blocks.0.ffn.net.0.proj", "diffusion.blocks.0.ffn.0"),
        ("blocks.0.ffn.net.0", "diffusion.blocks.0.ffn.1"),
        ("blocks.0.ffn.net.2", "diffusion.blocks.0.ffn.2"),
        ("blocks.39.scale_shift_table", "diffusion.blocks.39.modulation"),
        ("norm_out", "diffusion.head.norm"),
        ("proj_out", "diffusion.head.head"),
        ("scale_shift_table", "diffusion.head.modulation"),
        ("rope", None),
        ("condition_embedder", None),
        ("blocks.0.attn1.to_out.1", None),
    ],
)
def test_mapping_table_rows(diffusers_name: str, official: str | None) -> None:
    """The table maps diffusers names to the official ids of wan/modules/model.py (as the converter does)."""
    assert official_id(diffusers_name) == official


@pytest.mark.parametrize("variant_name", list(VARIANTS))
def test_mapping_covers_every_diffusers_name(variant_name: str) -> None:
    """Every module and parameter of the built model has a row, and distinct modules get distinct ids."""
    model = build_diffusers_dit(variant_name)
    ids = [official_id(name) for name, _ in model.named_modules()]
    mapped = [i for i in ids if i is not None]
    assert len(mapped) == len(set(mapped))
    for name, _ in model.named_parameters():
        official_id(name.rpartition(".")[0])


def test_unknown_diffusers_name_is_an_error() -> None:
    """A module the table does not know fails loudly instead of being mis-keyed."""
    with pytest.raises(LlmPerfOptError, match="DIFFUSERS_TO_OFFICIAL"):
        official_id("blocks.0.attn1.to_gate")
    assert len({row[0] for row in DIFFUSERS_TO_OFFICIAL}) == len(DIFFUSERS_TO_OFFICIAL)


@pytest.mark.parametrize("variant_name", ["t2v-14b", "flf2v-14b"])
def test_linear_and_fused_attention_bytes_follow_the_convention(variant_name: str) -> None:
    """A Linear reads x, W and b and writes y; fused attention reads q, k, v and writes out + fp32 lse."""
    v = get_variant(variant_name)
    m = measured(variant_name, SMALL)
    official = to_official(m.by_module, m.parameters, m.module_classes)
    t, h, w = SMALL.latent_shape(v)
    tokens = t * (h // 2) * (w // 2)
    d, n = v.dim, v.num_heads
    q = official.cost("diffusion.blocks.0.self_attn.q")
    assert (q.bytes_read, q.bytes_written) == (BF16 * (tokens * d + d * d + d), BF16 * tokens * d)
    k_text = official.cost("diffusion.blocks.0.cross_attn.k")
    assert k_text.bytes_read == BF16 * (SMALL.text_len * d + d * d + d)
    sdpa = str(CPU_FLASH_SDPA)
    self_attn = official.op_cost("diffusion.blocks.0.self_attn", sdpa)
    assert self_attn == OpCost(
        4 * tokens * tokens * d, 3 * BF16 * tokens * d, BF16 * tokens * d + FP32 * n * tokens
    )
    keys = SMALL.text_len + v.image_tokens
    cross = official.op_cost("diffusion.blocks.0.cross_attn", sdpa)
    calls = 2 if v.num_images else 1
    assert cross == OpCost(
        4 * tokens * keys * d,
        calls * BF16 * tokens * d + 2 * BF16 * keys * d,
        calls * (BF16 * tokens * d + FP32 * n * tokens),
    )


@pytest.mark.parametrize("variant_name", ["t2v-1.3b", "flf2v-14b"])
def test_math_and_fused_attention_give_the_same_flops(variant_name: str) -> None:
    """The math SDPA decomposition (bmm pair) and the fused op count the same FLOPs on every id."""
    fused, math = measured(variant_name, SMALL, True), measured(variant_name, SMALL, False)
    a = to_official(fused.by_module, fused.parameters, fused.module_classes).flops
    b = to_official(math.by_module, math.parameters, math.module_classes).flops
    assert a == b


@pytest.mark.parametrize("variant_name", ["t2v-1.3b", "flf2v-14b"])
def test_flops_are_linear_in_batch(variant_name: str) -> None:
    """Batch 2 costs exactly twice batch 1, id by id."""
    one = measured(variant_name, SMALL)
    two = measured(variant_name, attrs.evolve(SMALL, batch=2))
    flops_one = to_official(one.by_module, one.parameters, one.module_classes).flops
    flops_two = to_official(two.by_module, two.parameters, two.module_classes).flops
    assert flops_two == {k: 2 * v for k, v in flops_one.items()}


def _tiny(variant_name: str) -> WanVariant:
    """A variant small enough to run on real CPU tensors, with the same structure."""
    images = {"image_dim": 24, "image_tokens_per_image": 5} if get_variant(variant_name).num_images else {}
    return attrs.evolve(
        get_variant(variant_name),
        dim=64,
        num_heads=2,
        ffn_dim=128,
        num_layers=2,
        text_dim=32,
        freq_dim=16,
        **images,
    )


@pytest.mark.parametrize("variant_name", ["t2v-1.3b", "i2v-14b-480p", "flf2v-14b"])
def test_meta_device_counts_equal_real_tensors(variant_name: str) -> None:
    """On real CPU tensors (which dispatch the fused attention op natively) every module counts the same."""
    tiny = _tiny(variant_name)
    kwargs: dict[str, Any] = {"batch": 2, "frames": 5, "height": 32, "width": 48, "text_len": 512}
    meta = measure_dit(tiny, **kwargs)
    real = measure_dit(tiny, device="cpu", fused_sdpa=False, **kwargs)
    assert real.by_module == meta.by_module
    assert real.total.flops > 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"height": 490}, "height: must be a multiple of 16, got 490; nearest: 480 or 496"),
        ({"width": 8}, "width: must be a multiple of 16, got 8; nearest: 16"),
        ({"frames": 0}, "frames: must be an integer ≥ 1, got 0"),
        ({"batch": 0}, "batch: must be an integer ≥ 1, got 0"),
        ({"text_len": 64}, "text_len: must be 512 for i2v-14b-480p, got 64"),
    ],
)
def test_invalid_workload_names_the_field(change: dict[str, int], message: str) -> None:
    """A workload the pipeline would not run is an LlmPerfOptError naming the field and what is accepted."""
    kwargs = {"batch": 1, "frames": 5, "height": 64, "width": 96, "text_len": 512} | change
    with pytest.raises(LlmPerfOptError, match=message.replace("(", r"\(")):
        measure_dit("i2v-14b-480p", **kwargs)


def test_command_prints_the_table_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The dit command prints one row per official id and writes the record with every module's bytes."""
    out = tmp_path / "out.json"
    argv = ["dit", "--variant", "wan2.1-t2v-1.3b", "--frames", "5", "--height", "64", "--width", "96"]
    assert main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record == dit_record(
        get_variant("t2v-1.3b"), SMALL, measured("t2v-1.3b", SMALL), module_bytes=True
    )
    assert "diffusion.blocks.29.ffn.2" in printed
    assert f"{record['totals']['flops']:,} FLOPs" in printed


def test_command_rejects_bad_input_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid size exits with status 2 and the field-naming message, without a traceback."""
    argv = ["dit", "--variant", "t2v-14b", "--frames", "81", "--height", "470", "--width", "832"]
    assert main(argv) == 2
    assert "error: height: must be a multiple of 16, got 470" in capsys.readouterr().err
