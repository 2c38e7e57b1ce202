"""The reference harness on transformers' umT5 and CLIP vision encoders: totals, golden files, mapping,
conventions, and the analytic encoders against live measurements."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference.__main__ import main
from llm_perf_opt.reference.counting import CPU_FLASH_SDPA, Measurement, OpCost, exclusive_costs
from llm_perf_opt.reference.encoders import (
    ImageEncoderWorkload,
    TextEncoderWorkload,
    build_clip_vision,
    build_umt5_encoder,
    measure_image_encoder,
    measure_text_encoder,
)
from llm_perf_opt.reference.golden import (
    IMAGE_ENCODER_GOLDEN_WORKLOADS,
    TEXT_ENCODER_GOLDEN_WORKLOADS,
    dumps_record,
    image_encoder_golden_file_name,
    image_encoder_record,
    text_encoder_golden_file_name,
    text_encoder_record,
)
from llm_perf_opt.reference.official_ids import (
    CLIP_VISION_TO_OFFICIAL,
    IMAGE_ENCODER_NAMES,
    TEXT_ENCODER_NAMES,
    UMT5_TO_OFFICIAL,
    OfficialCosts,
)
from llm_perf_opt.wan2_1.check import compare_image_encoder_with_record, compare_text_encoder_with_record
from llm_perf_opt.wan2_1.image_encoder import VisionTransformerConfig
from llm_perf_opt.wan2_1.text_encoder import T5EncoderConfig

pytestmark = pytest.mark.reference

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FP32 = 4


@functools.cache
def measured_text(batch: int, text_len: int) -> Measurement:
    """One umT5-XXL measurement per workload for the whole session (about 0.4 s each on meta)."""
    return measure_text_encoder(batch=batch, text_len=text_len)


@functools.cache
def measured_image(batch: int, num_images: int) -> Measurement:
    """One CLIP ViT-H/14 measurement per workload for the whole session (about 0.3 s each on meta)."""
    return measure_image_encoder(batch=batch, num_images=num_images)


def _text_official(m: Measurement) -> OfficialCosts:
    return TEXT_ENCODER_NAMES.to_official(m.by_module, m.parameters, m.module_classes)


def _image_official(m: Measurement) -> OfficialCosts:
    return IMAGE_ENCODER_NAMES.to_official(m.by_module, m.parameters, m.module_classes)


def test_totals_equal_the_published_figures() -> None:
    """umT5-XXL at 512 tokens and CLIP ViT-H/14 (32 blocks) per image, to the last digit."""
    text = measured_text(1, 512)
    assert text.total.flops == 4_844_723_109_888
    assert sum(text.parameters.values()) == 5_680_910_336
    image = measured_image(1, 1)
    assert image.total.flops == 334_587_658_240
    # the published 632,076,800 includes the official 1280×1024 head, which CLIPVisionModel lacks
    assert sum(image.parameters.values()) == 632_076_800 - 1280 * 1024


@pytest.mark.parametrize(
    "workload",
    TEXT_ENCODER_GOLDEN_WORKLOADS,
    ids=[text_encoder_golden_file_name(w).removesuffix(".json") for w in TEXT_ENCODER_GOLDEN_WORKLOADS],
)
def test_fresh_text_measurement_equals_golden_file(workload: TextEncoderWorkload) -> None:
    """A fresh umT5 measurement gives the stored golden record, id by id."""
    path = GOLDEN / "text_encoder" / text_encoder_golden_file_name(workload)
    stored = json.loads(path.read_text(encoding="utf-8"))
    fresh = text_encoder_record(workload, measured_text(workload.batch, workload.text_len))
    assert fresh == stored, f"golden made with {stored['reference']}"


@pytest.mark.parametrize(
    "workload",
    IMAGE_ENCODER_GOLDEN_WORKLOADS,
    ids=[image_encoder_golden_file_name(w).removesuffix(".json") for w in IMAGE_ENCODER_GOLDEN_WORKLOADS],
)
def test_fresh_image_measurement_equals_golden_file(workload: ImageEncoderWorkload) -> None:
    """A fresh CLIP measurement gives the stored golden record, id by id."""
    path = GOLDEN / "image_encoder" / image_encoder_golden_file_name(workload)
    stored = json.loads(path.read_text(encoding="utf-8"))
    fresh = image_encoder_record(workload, measured_image(workload.batch, workload.num_images))
    assert fresh == stored, f"golden made with {stored['reference']}"


def test_golden_files_are_exactly_the_cases_and_the_serializer_output() -> None:
    """Every golden case has a file, no stale file is left, and the text is what dumps_record writes."""
    text_names = sorted(text_encoder_golden_file_name(w) for w in TEXT_ENCODER_GOLDEN_WORKLOADS)
    image_names = sorted(image_encoder_golden_file_name(w) for w in IMAGE_ENCODER_GOLDEN_WORKLOADS)
    assert sorted(p.name for p in (GOLDEN / "text_encoder").glob("*.json")) == text_names
    assert sorted(p.name for p in (GOLDEN / "image_encoder").glob("*.json")) == image_names
    workload = TEXT_ENCODER_GOLDEN_WORKLOADS[0]
    record = text_encoder_record(workload, measured_text(workload.batch, workload.text_len))
    path = GOLDEN / "text_encoder" / text_encoder_golden_file_name(workload)
    assert path.read_text(encoding="utf-8") == dumps_record(record)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.integers(1, 3), text_len=st.integers(1, 512))
def test_text_encoder_agrees_at_drawn_workloads(batch: int, text_len: int) -> None:
    """Any batch and prompt length: FLOPs and parameters of every id and every Linear's bytes equal."""
    record = text_encoder_record(
        TextEncoderWorkload(batch=batch, text_len=text_len), measured_text(batch, text_len)
    )
    mismatches = [row for row in compare_text_encoder_with_record(record) if not row.matches]
    assert not mismatches, mismatches[:5]


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.integers(1, 4), num_images=st.integers(1, 2))
def test_image_encoder_agrees_at_drawn_workloads(batch: int, num_images: int) -> None:
    """Any batch of one or two images: FLOPs, parameters, Linear/conv and fused-attention bytes equal."""
    record = image_encoder_record(
        ImageEncoderWorkload(batch=batch, num_images=num_images), measured_image(batch, num_images)
    )
    mismatches = [row for row in compare_image_encoder_with_record(record) if not row.matches]
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize(
    ("reference_name", "official"),
    [
        ("", "text_encoder"),
        ("shared", "text_encoder.token_embedding"),
        ("encoder.embed_tokens", "text_encoder.token_embedding"),
        ("encoder", None),
        ("encoder.block.23", "text_encoder.blocks.23"),
        ("encoder.block.0.layer.0", None),
        ("encoder.block.0.layer.0.layer_norm", "text_encoder.blocks.0.norm1"),
        ("encoder.block.5.layer.0.SelfAttention.o", "text_encoder.blocks.5.attn.o"),
        (
            "encoder.block.5.layer.0.SelfAttention.relative_attention_bias",
            "text_encoder.blocks.5.pos_embedding.embedding",
        ),
        ("encoder.block.5.layer.1.layer_norm", "text_encoder.blocks.5.norm2"),
        ("encoder.block.5.layer.1.DenseReluDense", "text_encoder.blocks.5.ffn"),
        ("encoder.block.5.layer.1.DenseReluDense.wi_0", "text_encoder.blocks.5.ffn.gate.0"),
        ("encoder.block.5.layer.1.DenseReluDense.act", "text_encoder.blocks.5.ffn.gate.1"),
        ("encoder.block.5.layer.1.DenseReluDense.wi_1", "text_encoder.blocks.5.ffn.fc1"),
        ("encoder.block.5.layer.1.DenseReluDense.wo", "text_encoder.blocks.5.ffn.fc2"),
        ("encoder.final_layer_norm", "text_encoder.norm"),
    ],
)
def test_text_mapping_rows(reference_name: str, official: str | None) -> None:
    """transformers' UMT5EncoderModel names map to the official T5Encoder ids of wan/modules/t5.py."""
    assert TEXT_ENCODER_NAMES.official_id(reference_name) == official


@pytest.mark.parametrize(
    ("reference_name", "official"),
    [
        ("", "image_encoder"),
        ("embeddings", None),
        ("embeddings.class_embedding", "image_encoder.cls_embedding"),
        ("embeddings.patch_embedding", "image_encoder.patch_embedding"),
        ("embeddings.position_embedding", "image_encoder.pos_embedding"),
        ("pre_layrnorm", "image_encoder.pre_norm"),
        ("encoder.layers.31", "image_encoder.transformer.31"),
        ("encoder.layers.3.layer_norm1", "image_encoder.transformer.3.norm1"),
        ("encoder.layers.3.self_attn", "image_encoder.transformer.3.attn"),
        ("encoder.layers.3.self_attn.q_proj", "image_encoder.transformer.3.attn.to_qkv"),
        ("encoder.layers.3.self_attn.k_proj", "image_encoder.transformer.3.attn.to_qkv"),
        ("encoder.layers.3.self_attn.v_proj", "image_encoder.transformer.3.attn.to_qkv"),
        ("encoder.layers.3.self_attn.out_proj", "image_encoder.transformer.3.attn.proj"),
        ("encoder.layers.3.mlp.fc1", "image_encoder.transformer.3.mlp.0"),
        ("encoder.layers.3.mlp.activation_fn", "image_encoder.transformer.3.mlp.1"),
        ("encoder.layers.3.mlp.fc2", "image_encoder.transformer.3.mlp.2"),
        ("post_layernorm", "image_encoder.post_norm"),
    ],
)
def test_image_mapping_rows(reference_name: str, official: str | None) -> None:
    """transformers' CLIPVisionModel names map to the official VisionTransformer ids (clip.py)."""
    assert IMAGE_ENCODER_NAMES.official_id(reference_name) == official


def test_mapping_covers_every_name() -> None:
    """Every module and parameter of both built models has a row; only the tied embedding and the
    three projections of to_qkv share an official id."""
    shared = {"text_encoder.token_embedding"}
    for model, names in (
        (build_umt5_encoder(), TEXT_ENCODER_NAMES),
        (build_clip_vision(), IMAGE_ENCODER_NAMES),
    ):
        ids = [names.official_id(name) for name, _ in model.named_modules()]
        mapped = [i for i in ids if i is not None]
        repeated = {i for i in mapped if mapped.count(i) > 1}
        assert {i for i in repeated if not i.endswith(".attn.to_qkv")} <= shared
        for name, _ in model.named_parameters():
            names.official_id(name if name == "embeddings.class_embedding" else name.rpartition(".")[0])
    for table in (UMT5_TO_OFFICIAL, CLIP_VISION_TO_OFFICIAL):
        assert len({row[0] for row in table}) == len(table)


def test_unknown_reference_name_is_an_error() -> None:
    """A module the tables do not know fails loudly instead of being mis-keyed."""
    with pytest.raises(LlmPerfOptError, match="not in UMT5_TO_OFFICIAL"):
        TEXT_ENCODER_NAMES.official_id("encoder.block.0.layer.2")
    with pytest.raises(LlmPerfOptError, match="not in CLIP_VISION_TO_OFFICIAL"):
        IMAGE_ENCODER_NAMES.official_id("vision_model.encoder.layers.0")


def test_official_ids_roll_up() -> None:
    """Each id's parameters are its children's sum; so are its FLOPs, but for its own attention core."""
    for official, core_op in (
        (_text_official(measured_text(1, 77)), str(CPU_FLASH_SDPA)),
        (_image_official(measured_image(1, 1)), str(CPU_FLASH_SDPA)),
    ):
        ids = set(official.by_id) | set(official.parameters)
        parents = {i.rpartition(".")[0] for i in ids if "." in i}
        assert parents <= ids
        for parent in parents:
            children = [i for i in ids if i.rpartition(".")[0] == parent]
            assert official.parameters.get(parent, 0) == sum(official.parameters.get(c, 0) for c in children)
            own = official.cost(parent).flops - sum(official.cost(c).flops for c in children)
            own_core = official.op_cost(parent, core_op).flops - sum(
                official.op_cost(c, core_op).flops for c in children
            )
            assert own == own_core, parent
            assert (own > 0) == parent.endswith(".attn"), parent


def test_exclusive_costs_add_up_to_the_total() -> None:
    """Each module's own ops, summed over all modules, are the whole forward; so is the root's total."""
    for m, official in (
        (measured_text(2, 33), _text_official(measured_text(2, 33))),
        (measured_image(1, 2), _image_official(measured_image(1, 2))),
    ):
        total = OpCost()
        for ops in exclusive_costs(m.by_module).values():
            for cost in ops.values():
                total = total + cost
        assert total == m.total
        root = min(official.by_id, key=len)
        assert official.cost(root) == m.total
        assert official.parameters[root] == sum(m.parameters.values())


def test_clip_linear_and_fused_attention_bytes_follow_the_convention() -> None:
    """q, k, v each read x, W, b and write y (fp32); the fused op reads q, k, v, writes out + fp32 lse."""
    official = _image_official(measured_image(1, 2))
    rows, d, heads = 2 * 257, 1280, 16
    qkv = official.cost("image_encoder.transformer.0.attn.to_qkv")
    assert qkv == OpCost(3 * 2 * rows * d * d, 3 * FP32 * (rows * d + d * d + d), 3 * FP32 * rows * d)
    core = official.op_cost("image_encoder.transformer.0.attn", str(CPU_FLASH_SDPA))
    assert core == OpCost(
        4 * 2 * 257 * 257 * d, 3 * FP32 * rows * d, FP32 * rows * d + FP32 * 2 * heads * 257
    )


def test_eager_and_sdpa_attention_give_the_same_flops() -> None:
    """umT5's eager attention and its SDPA path (the default) count the same FLOPs on every id."""
    sdpa = _text_official(measured_text(1, 77))
    eager_measurement = measure_text_encoder(batch=1, text_len=77, attn_implementation="eager")
    eager = _text_official(eager_measurement)
    assert eager.flops == sdpa.flops


TINY_T5 = T5EncoderConfig(
    vocab_size=100,
    dim=32,
    dim_attn=32,
    dim_ffn=48,
    num_heads=4,
    num_layers=2,
    num_buckets=8,
    max_distance=16,
    eps=1e-6,
    dropout=0.1,
)
TINY_VIT = VisionTransformerConfig(
    image_size=28,
    patch_size=14,
    in_channels=3,
    dim=32,
    mlp_ratio=4,
    num_heads=4,
    num_layers=2,
    out_dim=16,
    eps=1e-5,
)


def test_meta_device_counts_equal_real_tensors() -> None:
    """On real CPU tensors (where attention dispatches natively) every module counts the same FLOPs."""
    text: dict[str, Any] = {"batch": 2, "text_len": 9, "config": TINY_T5}
    meta, real = measure_text_encoder(**text), measure_text_encoder(device="cpu", **text)
    assert meta.flops == real.flops
    assert real.total.flops > 0
    image: dict[str, Any] = {"batch": 2, "num_images": 2, "config": TINY_VIT}
    meta, real = (
        measure_image_encoder(**image),
        measure_image_encoder(device="cpu", fused_sdpa=False, **image),
    )
    assert meta.by_module == real.by_module
    assert real.total.flops > 0


@pytest.mark.parametrize(
    ("measure", "kwargs", "message"),
    [
        (measure_text_encoder, {"batch": 1, "text_len": 513}, "text_len: must be ≤ 512"),
        (measure_text_encoder, {"batch": 0, "text_len": 77}, "batch: must be an integer ≥ 1, got 0"),
        (measure_image_encoder, {"batch": 1, "num_images": 0}, "num_images: must be an integer ≥ 1, got 0"),
    ],
)
def test_invalid_workload_names_the_field(measure: Any, kwargs: dict[str, int], message: str) -> None:
    """A workload the pipeline would not run is an LlmPerfOptError naming the field and what is accepted."""
    with pytest.raises(LlmPerfOptError, match=message):
        measure(**kwargs)


def test_commands_measure_compare_and_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Measure with --json, compare (exit 0), compare a wrong saved record (exit 1), bad input (exit 2)."""
    out = tmp_path / "t5.json"
    assert main(["text-encoder", "--text-len", "77", "--json", str(out), "--depth", "2"]) == 0
    printed = capsys.readouterr().out
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record == text_encoder_record(
        TextEncoderWorkload(batch=1, text_len=77), measured_text(1, 77), module_bytes=True
    )
    assert "text_encoder.blocks  " in printed
    assert f"{record['totals']['flops']:,} FLOPs" in printed

    assert main(["image-encoder-compare", "--images", "2", "--depth", "2"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(" figures compared, 0 mismatches")

    record["modules"]["text_encoder.blocks.1.ffn.fc1"]["flops"] += 2
    saved = tmp_path / "wrong.json"
    saved.write_text(json.dumps(record), encoding="utf-8")
    assert main(["text-encoder-compare", "--record", str(saved), "--depth", "1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines if "ffn.fc1" in line] == [
        ["text_encoder.blocks.1.ffn.fc1", "flops"]
    ]
    assert lines[-1].endswith(" figures compared, 1 mismatches")

    assert main(["image-encoder", "--images", "0"]) == 2
    assert "error: num_images: must be an integer ≥ 1, got 0" in capsys.readouterr().err
