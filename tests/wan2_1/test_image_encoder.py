"""The CLIP ViT-H/14 image encoder: golden totals and formulas, profiles, scaling, bytes, golden records."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.formula import formula
from llm_perf_opt.symbolic.symbols import B
from llm_perf_opt.wan2_1.check import compare_image_encoder_with_record
from llm_perf_opt.wan2_1.evaluate import (
    evaluate_image_encoder,
    evaluate_image_encoder_grid,
    image_encoder_tree,
)
from llm_perf_opt.wan2_1.image_encoder import CLIP_VIT_H_14
from llm_perf_opt.wan2_1.implementation import DIFFUSERS, OFFICIAL
from llm_perf_opt.wan2_1.variants import VARIANTS, get_variant

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "image_encoder"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))

D, MLP, TOKENS, PATCHES = 1280, 5120, 257, 256
# per image and block: to_qkv 2·257·1280·3840 + proj 2·257·1280² + mlp 4·257·1280·5120 + QKᵀ, PV 4·257²·1280
BLOCK_FLOPS = 2 * TOKENS * D * 3 * D + 2 * TOKENS * D * D + 4 * TOKENS * D * MLP + 4 * TOKENS**2 * D
# patch conv: 256 positions × 2·(3·14·14)·1280
PATCH_FLOPS = 2 * PATCHES * 588 * D
# per block: norm1, norm2 2·2·1280; to_qkv 1280·3840 + 3840; proj 1280² + 1280;
# mlp 1280·5120 + 5120 and 5120·1280 + 1280
BLOCK_PARAMS = 4 * D + (D * 3 * D + 3 * D) + (D * D + D) + (D * MLP + MLP) + (MLP * D + D)
# patch conv 752,640 + class token 1280 + positions 257·1280 + pre_norm 2·1280
EMBEDDING_PARAMS = 3 * 14 * 14 * D + D + TOKENS * D + 2 * D
HEAD_PARAMS = D * 1024
"""The official ``head`` parameter [1280, 1024]: held, never run by Wan2.1."""


def test_golden_totals_per_profile() -> None:
    """Diffusers runs 32 blocks (334.6 GFLOP per image), the official code 31 (324.1 GFLOP)."""
    assert BLOCK_PARAMS == 19_677_440
    diffusers = evaluate_image_encoder(1, implementation="diffusers").metrics["image_encoder"]
    assert diffusers["flops"] == 32 * BLOCK_FLOPS + PATCH_FLOPS == 334_587_658_240
    # post_layernorm on the class token: 2·1280 more parameters
    assert diffusers["params"] == 32 * BLOCK_PARAMS + EMBEDDING_PARAMS + 2 * D == 630_766_080
    # the published count of the visual tower: 32 blocks, post norm and head
    assert diffusers["params"] + HEAD_PARAMS == 632_076_800
    assert diffusers["weight_bytes"] == 4 * diffusers["params"]
    official = evaluate_image_encoder(1).metrics["image_encoder"]
    assert official["flops"] == 31 * BLOCK_FLOPS + PATCH_FLOPS == 324_143_836_160
    assert official["params"] == 31 * BLOCK_PARAMS + EMBEDDING_PARAMS == 611_086_080
    # held but not run: block 31, post_norm and head
    assert official["params"] + BLOCK_PARAMS + 2 * D + HEAD_PARAMS == 632_076_800
    assert official["weight_bytes"] == 2 * official["params"]


def test_module_formulas_read_like_the_hand_derivation() -> None:
    """Golden per-module FLOP formulas in B for one image per sample."""
    tree = image_encoder_tree(1, OFFICIAL)
    cases = {
        # x:[B·257, 1280] @ Wᵀ:[1280, 3840], 2 FLOPs per multiply-add
        "image_encoder.transformer.4.attn.to_qkv": 2 * B * TOKENS * D * 3 * D,
        "image_encoder.transformer.4.attn.proj": 2 * B * TOKENS * D * D,
        # q, k, v, proj + QKᵀ and PV over 16 heads of 80
        "image_encoder.transformer.4.attn": 8 * B * TOKENS * D * D + 4 * B * TOKENS**2 * 16 * 80,
        "image_encoder.transformer.4.mlp.0": 2 * B * TOKENS * D * MLP,
        "image_encoder.transformer.4.mlp": 4 * B * TOKENS * D * MLP,
        "image_encoder.transformer.4": B * BLOCK_FLOPS,
        # Conv2d 3→1280 with a 14×14 kernel at each of the 16×16 positions
        "image_encoder.patch_embedding": 2 * B * PATCHES * 3 * 14 * 14 * D,
        "image_encoder.pre_norm": 0,
        "image_encoder.transformer.4.mlp.1": 0,
    }
    for module_id, expected in cases.items():
        assert sympy.expand(formula(tree, module_id, "flops") - expected) == 0, module_id


def test_blocks_run_per_profile() -> None:
    """The official tree stops at block 30 without post_norm; diffusers has 32 blocks and post_norm."""
    official, diffusers = image_encoder_tree(1, OFFICIAL), image_encoder_tree(1, DIFFUSERS)
    assert official["image_encoder.transformer"].repetition_count == 31
    assert "image_encoder.transformer.31" not in official.nodes
    assert "image_encoder.post_norm" not in official.nodes
    assert diffusers["image_encoder.transformer"].repetition_count == 32
    assert diffusers["image_encoder.post_norm"].class_name == "LayerNorm"
    for module_id, class_name in {
        "image_encoder": "VisionTransformer",
        "image_encoder.patch_embedding": "Conv2d",
        "image_encoder.pre_norm": "LayerNorm",
        "image_encoder.transformer": "ModuleList",
        "image_encoder.transformer.30": "AttentionBlock",
        "image_encoder.transformer.30.norm1": "LayerNorm",
        "image_encoder.transformer.30.attn": "SelfAttention",
        "image_encoder.transformer.30.attn.to_qkv": "Linear",
        "image_encoder.transformer.30.attn.proj": "Linear",
        "image_encoder.transformer.30.mlp": "Sequential",
        "image_encoder.transformer.30.mlp.1": "GELU",
    }.items():
        assert official[module_id].class_name == class_name, module_id
        assert official[module_id].stage == "other"


def test_fused_and_separate_qkv_agree_but_for_the_input_reads() -> None:
    """to_qkv: same FLOPs and parameters either way; three projections read the input three times."""
    rows = TOKENS
    fp32 = 4
    official = evaluate_image_encoder(1, implementation=OFFICIAL).metrics
    diffusers = evaluate_image_encoder(1, implementation=DIFFUSERS).metrics
    key = "image_encoder.transformer.0.attn.to_qkv"
    assert official[key]["flops"] == diffusers[key]["flops"]
    assert official[key]["params"] == diffusers[key]["params"] == 3 * (D * D + D)
    # diffusers fp32: 3 × (x:[257, 1280] + W:[1280, 1280] + b:[1280]) read, 3 × y:[257, 1280] written
    assert diffusers[key]["bytes_read"] == 3 * fp32 * (rows * D + D * D + D) == 23_623_680
    assert diffusers[key]["bytes_written"] == 3 * fp32 * rows * D
    # official fp16: x + W:[1280, 3840] + b:[3840] read once, y:[257, 3840] written
    assert official[key]["bytes_read"] == 2 * (rows * D + D * 3 * D + 3 * D)
    assert official[key]["bytes_written"] == 2 * rows * 3 * D


def test_official_layer_norm_upcasts_under_autocast() -> None:
    """Official fp16: x cast to fp32, weight and bias re-cast, fp32 layer norm, cast back to fp16."""
    rows = TOKENS
    norm = evaluate_image_encoder(1).metrics["image_encoder.transformer.0.norm1"]
    # x fp16→fp32; w, b fp16→fp32; layer norm reads fp32 x, w, b; y fp32→fp16
    assert norm["bytes_read"] == 2 * rows * D + 2 * 2 * D + 4 * (rows * D + 2 * D) + 4 * rows * D
    # fp32 x; fp32 w, b; fp32 y with mean and rstd per row; fp16 y
    assert norm["bytes_written"] == 4 * rows * D + 4 * 2 * D + 4 * (rows * D + 2 * rows) + 2 * rows * D


@settings(max_examples=20, deadline=None)
@given(batch=st.integers(2, 6), images=st.integers(1, 3), profile=st.sampled_from([OFFICIAL, DIFFUSERS]))
def test_linear_in_batch_and_images(batch: int, images: int, profile: Any) -> None:
    """FLOPs scale exactly with batch·images; bytes are affine in the batch; parameters do not change."""
    one = evaluate_image_encoder(1, implementation=profile).metrics
    many = evaluate_image_encoder(images, batch=batch, implementation=profile).metrics
    more = evaluate_image_encoder(images, batch=batch + 1, implementation=profile).metrics
    single = evaluate_image_encoder(images, implementation=profile).metrics
    for module_id, metrics in one.items():
        for metric in ("flops", "vector_flops"):
            assert many[module_id][metric] == batch * images * metrics[metric], (module_id, metric)
        for metric in ("bytes_read", "bytes_written", "activation_bytes"):
            step = more[module_id][metric] - many[module_id][metric]
            assert many[module_id][metric] - single[module_id][metric] == (batch - 1) * step
        assert many[module_id]["params"] == metrics["params"]


def test_variants_give_their_image_counts() -> None:
    """I2V encodes one image per video, FLF2V two; the CLIP record agrees with the variants' context."""
    i2v = evaluate_image_encoder("i2v-14b-720p")
    flf2v = evaluate_image_encoder(get_variant("flf2v-14b"))
    assert (i2v.num_images, flf2v.num_images) == (1, 2)
    assert flf2v.metrics["image_encoder"]["flops"] == 2 * i2v.metrics["image_encoder"]["flops"]
    assert any("31 of 32 blocks run (official)" in note for note in i2v.notes)
    for variant in VARIANTS.values():
        if variant.num_images:
            assert variant.image_tokens_per_image == CLIP_VIT_H_14.tokens == TOKENS
            assert variant.image_dim == CLIP_VIT_H_14.dim


@pytest.mark.parametrize(
    ("images", "batch", "message"),
    [
        (
            "t2v-14b",
            1,
            "images: t2v-14b conditions on no image, so no image encoder runs; accepted: an "
            "image-conditioned variant (i2v, flf2v) or a number of images ≥ 1",
        ),
        (0, 1, "num_images: must be an integer ≥ 1, got 0"),
        (1, 0, "batch_size: must be an integer in 1…1024 (16× the largest published run), got 0"),
        ("t2v-99b", 1, "unknown"),
    ],
)
def test_bad_inputs_are_clear_errors(images: Any, batch: int, message: str) -> None:
    """A text-only variant, a non-positive count or an unknown variant raise an error naming the field."""
    with pytest.raises(LlmPerfOptError) as caught:
        evaluate_image_encoder(images, batch=batch)
    assert message in str(caught.value)


def test_grid_agrees_with_exact() -> None:
    """The numpy grid over batches equals the exact values to rounding."""
    batch = np.array([1, 2, 7])
    grid = evaluate_image_encoder_grid("flf2v-14b", batch=batch, implementation="diffusers")
    for i, b in enumerate(batch):
        exact = evaluate_image_encoder(2, batch=int(b), implementation="diffusers").metrics
        for module_id in ("image_encoder", "image_encoder.transformer.31.attn", "image_encoder.post_norm"):
            for metric in ("flops", "bytes_read", "params"):
                assert grid[module_id, metric][i] == pytest.approx(exact[module_id][metric], rel=1e-12)
    with pytest.raises(LlmPerfOptError, match="text_len: unknown workload field; accepted: batch"):
        evaluate_image_encoder_grid(1, text_len=np.array([512]))


def test_every_golden_workload_has_a_file() -> None:
    """One image (I2V), two (FLF2V), and three single-image samples."""
    assert [p.name for p in GOLDEN_FILES] == [
        "clip-vit-h-14__b1_i1.json",
        "clip-vit-h-14__b1_i2.json",
        "clip-vit-h-14__b3_i1.json",
    ]


def _record(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_exact_agreement_with_golden_record(path: Path) -> None:
    """FLOPs, parameters, every module's eager bytes and fused-attention bytes equal the reference."""
    record = _record(path)
    rows = compare_image_encoder_with_record(record)
    mismatches = [row for row in rows if not row.matches]
    assert not mismatches, mismatches[:5]
    assert {row.metric for row in rows} == {
        "flops",
        "params",
        "bytes_read",
        "bytes_written",
        "sdpa_bytes_read",
        "sdpa_bytes_written",
        "module_bytes_read",
        "module_bytes_written",
    }
    # the whole forward's traffic agrees as well (every op of CLIP has a primitive of its own)
    images = record["workload"]["num_images"]
    evaluated = evaluate_image_encoder(images, batch=record["workload"]["batch"], implementation="diffusers")
    root = evaluated.metrics["image_encoder"]
    assert [root["bytes_read"], root["bytes_written"]] == record["totals"]["bytes"]


def test_a_wrong_figure_is_caught() -> None:
    """A changed to_qkv byte count and attention byte count show up as exactly those mismatches."""
    record = copy.deepcopy(_record(GOLDEN_FILES[0]))
    record["modules"]["image_encoder.transformer.7.attn.to_qkv"]["bytes"][0] += 4
    record["modules"]["image_encoder.transformer.8.attn"]["sdpa_bytes"][1] -= 4
    rows = compare_image_encoder_with_record(record)
    assert [(row.module_id, row.metric) for row in rows if not row.matches] == [
        ("image_encoder.transformer.7.attn.to_qkv", "bytes_read"),
        ("image_encoder.transformer.8.attn", "sdpa_bytes_written"),
    ]
