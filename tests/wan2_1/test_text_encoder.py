"""The umT5-XXL text encoder: golden totals and formulas, scaling, bytes, validation, golden records."""

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
from llm_perf_opt.symbolic.cost import simplify_expr
from llm_perf_opt.symbolic.formula import formula
from llm_perf_opt.symbolic.symbols import B, L
from llm_perf_opt.wan2_1.check import compare_text_encoder_with_record
from llm_perf_opt.wan2_1.evaluate import (
    evaluate_text_encoder,
    evaluate_text_encoder_grid,
    text_encoder_tree,
)
from llm_perf_opt.wan2_1.implementation import DIFFUSERS, OFFICIAL
from llm_perf_opt.wan2_1.text_encoder import UMT5_XXL

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "text_encoder"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))

D, FFN, HEADS, HEAD_DIM, LAYERS, VOCAB = 4096, 10_240, 64, 64, 24, 256_384


@pytest.mark.parametrize("profile", [OFFICIAL, DIFFUSERS], ids=["official", "diffusers"])
def test_golden_totals(profile: Any) -> None:
    """One 512-token forward is 4,844,723,109,888 FLOPs and the encoder holds 5,680,910,336 parameters."""
    root = evaluate_text_encoder(implementation=profile).metrics["text_encoder"]
    # per block: q k v o 8·512·4096² + gate fc1 fc2 6·512·4096·10240 + QKᵀ and PV 4·512²·4096
    per_block = 8 * 512 * D**2 + 6 * 512 * D * FFN + 4 * 512**2 * D
    assert root["flops"] == LAYERS * per_block == 4_844_723_109_888
    # per block: 4·4096² + 3·4096·10240 + 2 norms · 4096 + 32 buckets · 64 heads; + vocab · dim + final norm
    per_block_params = 4 * D**2 + 3 * D * FFN + 2 * D + 32 * HEADS
    assert per_block_params == 192_948_224
    assert root["params"] == LAYERS * per_block_params + VOCAB * D + D == 5_680_910_336
    # bf16 weights in both profiles: 11.36 GB
    assert root["weight_bytes"] == 2 * root["params"]


def test_module_formulas_read_like_the_hand_derivation() -> None:
    """Golden per-module FLOP formulas in B and L, as derived by hand from the official code."""
    tree = text_encoder_tree(OFFICIAL)
    cases = {
        # x:[B·L, 4096] @ Wᵀ:[4096, 4096], 2 FLOPs per multiply-add
        "text_encoder.blocks.3.attn.q": 2 * B * L * D * D,
        "text_encoder.blocks.3.attn.o": 2 * B * L * D * D,
        # four projections + QKᵀ and PV over 64 heads of 64, no scaling: 2·2·B·64·L²·64
        "text_encoder.blocks.3.attn": 8 * B * L * D * D + 4 * B * L**2 * HEADS * HEAD_DIM,
        # x:[B·L, 4096] @ Wᵀ:[4096, 10240]
        "text_encoder.blocks.3.ffn.gate.0": 2 * B * L * D * FFN,
        "text_encoder.blocks.3.ffn.gate": 2 * B * L * D * FFN,
        # gate, fc1: 4096 → 10240; fc2: 10240 → 4096
        "text_encoder.blocks.3.ffn": 6 * B * L * D * FFN,
        "text_encoder.blocks.3.ffn.gate.1": 0,
        "text_encoder.blocks.3.norm1": 0,
        "text_encoder.blocks.3.pos_embedding": 0,
        "text_encoder.token_embedding": 0,
        "text_encoder.norm": 0,
    }
    for module_id, expected in cases.items():
        assert sympy.expand(formula(tree, module_id, "flops") - expected) == 0, module_id


def test_simplified_formulas_equal_the_raw_sums() -> None:
    """Every simplified metric of the block and the root equals its unsimplified sum of primitives."""
    tree = text_encoder_tree(DIFFUSERS)
    for module_id in ("text_encoder", "text_encoder.blocks.0", "text_encoder.blocks.0.attn"):
        for metric, raw in tree[module_id].aggregate:
            assert sympy.expand(simplify_expr(raw) - raw) == 0, (module_id, metric)


def test_linear_bytes_and_attention_core_bytes() -> None:
    """A bf16 Linear reads x and W and writes y; the core materialises bias, scores and fp32 softmax."""
    m = evaluate_text_encoder(text_len=512).metrics
    rows = 512
    q = m["text_encoder.blocks.0.attn.q"]
    # x:[512, 4096] + W:[4096, 4096] read, y:[512, 4096] written, bf16
    assert (q["bytes_read"], q["bytes_written"]) == (2 * (rows * D + D * D), 2 * rows * D)
    assert (q["bytes_read"], q["bytes_written"]) == (37_748_736, 4_194_304)
    fc2 = m["text_encoder.blocks.0.ffn.fc2"]
    assert fc2["bytes_read"] == 2 * (rows * FFN + FFN * D) == 94_371_840
    attn = m["text_encoder.blocks.0.attn"]
    own_written = attn["bytes_written"] - sum(
        m[f"text_encoder.blocks.0.attn.{p}"]["bytes_written"] for p in "qkvo"
    )
    scores, projected = HEADS * rows**2, rows * D
    bf16, fp32 = 2, 4
    assert own_written == (
        bf16 * scores  # bias = zeros + position bias:[1, 64, 512, 512]
        + bf16 * scores  # padding-mask fill, in place
        + bf16 * scores  # QKᵀ
        + bf16 * scores  # scores + bias
        + fp32 * scores  # .float()
        + fp32 * scores  # softmax
        + bf16 * scores  # .type_as(scores)
        + 4 * bf16 * projected  # q, k, v and output laid out for the einsums
        + bf16 * projected  # PV
    )


@settings(max_examples=25, deadline=None)
@given(text_len=st.integers(1, 512), batch=st.integers(2, 5))
def test_linear_in_batch(text_len: int, batch: int) -> None:
    """FLOPs scale exactly with the batch; bytes are affine in it; parameters do not change."""
    kwargs: dict[str, Any] = {"text_len": text_len, "pad_text": False}
    one = evaluate_text_encoder(**kwargs).metrics
    many = evaluate_text_encoder(batch=batch, **kwargs).metrics
    more = evaluate_text_encoder(batch=batch + 1, **kwargs).metrics
    for module_id, metrics in one.items():
        for metric in ("flops", "vector_flops"):
            assert many[module_id][metric] == batch * metrics[metric], (module_id, metric)
        for metric in ("bytes_read", "bytes_written", "activation_bytes"):
            step = more[module_id][metric] - many[module_id][metric]
            assert many[module_id][metric] - metrics[metric] == (batch - 1) * step, (module_id, metric)
        assert many[module_id]["params"] == metrics["params"]


@settings(max_examples=25, deadline=None)
@given(text_len=st.integers(1, 256))
def test_attention_core_is_quadratic_in_text_len(text_len: int) -> None:
    """Doubling L doubles every projection and quadruples the attention core (QKᵀ and PV)."""

    def flops(length: int) -> tuple[int, int]:
        m = evaluate_text_encoder(text_len=length, pad_text=False).metrics
        attn = m["text_encoder.blocks.5.attn"]["flops"]
        projections = sum(m[f"text_encoder.blocks.5.attn.{p}"]["flops"] for p in "qkvo")
        return projections, attn - projections

    projections, core = flops(text_len)
    assert flops(2 * text_len) == (2 * projections, 4 * core)
    # q:[64, L, 64] @ kᵀ:[64, 64, L] and p:[64, L, L] @ v:[64, L, 64], 2 FLOPs per multiply-add
    assert core == 2 * 2 * HEADS * text_len**2 * HEAD_DIM


def test_position_bias_does_not_depend_on_the_batch() -> None:
    """The relative position bias is computed once per block for all prompts: [1, n, L, L]."""
    one = evaluate_text_encoder(batch=1).metrics["text_encoder.blocks.0.pos_embedding"]
    four = evaluate_text_encoder(batch=4).metrics["text_encoder.blocks.0.pos_embedding"]
    assert one == four
    # lookup: 512² int64 buckets and 512²·64 bf16 rows read; [512, 512, 64] written, then re-laid out
    assert one["bytes_written"] == 2 * (2 * 512**2 * HEADS)


def test_grid_agrees_with_exact() -> None:
    """The numpy grid over batch × text length equals the exact values to rounding."""
    batch = np.array([1, 2, 3])[:, None]
    text_len = np.array([1, 77, 512])[None, :]
    grid = evaluate_text_encoder_grid(batch=batch, text_len=text_len, implementation="diffusers")
    for i, b in enumerate(batch[:, 0]):
        for j, length in enumerate(text_len[0]):
            exact = evaluate_text_encoder(
                batch=int(b), text_len=int(length), pad_text=False, implementation="diffusers"
            ).metrics
            for module_id in ("text_encoder", "text_encoder.blocks.7.attn", "text_encoder.token_embedding"):
                for metric in ("flops", "bytes_read", "params"):
                    value = grid[module_id, metric][i, j]
                    assert value == pytest.approx(exact[module_id][metric], rel=1e-12)


def test_padding_is_the_default_and_is_disclosed() -> None:
    """A short prompt runs at 512 tokens unless told not to pad; the notes say which."""
    padded = evaluate_text_encoder(text_len=77)
    assert padded.workload.text_len == 512
    assert padded.metrics == evaluate_text_encoder().metrics
    assert any("padded to 512" in note for note in padded.notes)
    short = evaluate_text_encoder(text_len=77, pad_text=False)
    assert short.workload.text_len == 77
    assert short.metrics["text_encoder.blocks.0.attn.k"]["flops"] == 2 * 77 * D * D
    assert any("unpadded" in note for note in short.notes)


BAD_WORKLOADS = [
    ({"text_len": 600}, "text_len: must be an integer in 0…512 (the tokenizer's limit), got 600"),
    ({"text_len": -1}, "text_len: must be an integer in 0…512 (the tokenizer's limit), got -1"),
    ({"batch": 0}, "batch_size: must be an integer in 1…1024 (16× the largest published run), got 0"),
    ({"batch": True}, "batch_size: must be an integer in 1…1024, got True"),
]


@pytest.mark.parametrize(("change", "message"), BAD_WORKLOADS)
def test_bad_workloads_are_clear_errors(change: dict[str, Any], message: str) -> None:
    """Out-of-range counts raise one error naming the field, the value and what is accepted."""
    with pytest.raises(LlmPerfOptError) as caught:
        evaluate_text_encoder(**change)
    assert str(caught.value) == message


def test_grid_rejects_unknown_fields() -> None:
    """A grid field the text encoder does not depend on is named in the error."""
    with pytest.raises(LlmPerfOptError, match="frames: unknown workload field; accepted: batch, text_len"):
        evaluate_text_encoder_grid(frames=np.array([81]))


def test_module_ids_follow_the_official_names() -> None:
    """Ids are the official attribute paths of T5Encoder under ``text_encoder.``, blocks per index."""
    tree = text_encoder_tree(OFFICIAL)
    for module_id, class_name in {
        "text_encoder": "T5Encoder",
        "text_encoder.token_embedding": "Embedding",
        "text_encoder.blocks": "ModuleList",
        "text_encoder.blocks.23": "T5SelfAttention",
        "text_encoder.blocks.0.norm1": "T5LayerNorm",
        "text_encoder.blocks.0.attn": "T5Attention",
        "text_encoder.blocks.0.attn.o": "Linear",
        "text_encoder.blocks.0.norm2": "T5LayerNorm",
        "text_encoder.blocks.0.ffn": "T5FeedForward",
        "text_encoder.blocks.0.ffn.gate": "Sequential",
        "text_encoder.blocks.0.ffn.gate.0": "Linear",
        "text_encoder.blocks.0.ffn.gate.1": "GELU",
        "text_encoder.blocks.0.ffn.fc1": "Linear",
        "text_encoder.blocks.0.ffn.fc2": "Linear",
        "text_encoder.blocks.0.pos_embedding": "T5RelativeEmbedding",
        "text_encoder.blocks.0.pos_embedding.embedding": "Embedding",
        "text_encoder.norm": "T5LayerNorm",
    }.items():
        assert tree[module_id].class_name == class_name, module_id
        assert tree[module_id].stage == "text_encoder"
    assert tree["text_encoder.blocks"].repetition_count == UMT5_XXL.num_layers
    assert "text_encoder.blocks.24" not in tree.nodes


def test_every_golden_workload_has_a_file() -> None:
    """512 padded tokens, 77 unpadded, and a batch of two 33-token prompts."""
    assert [p.name for p in GOLDEN_FILES] == [
        "umt5-xxl__b1_l512.json",
        "umt5-xxl__b1_l77.json",
        "umt5-xxl__b2_l33.json",
    ]


def _record(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_exact_agreement_with_golden_record(path: Path) -> None:
    """FLOPs, parameters and whole eager bytes of every id, Linear and fused-attention bytes on their own."""
    rows = compare_text_encoder_with_record(_record(path))
    mismatches = [row for row in rows if not row.matches]
    assert not mismatches, mismatches[:5]
    assert {row.metric for row in rows} == {
        "flops",
        "params",
        "bytes_read",
        "bytes_written",
        "module_bytes_read",
        "module_bytes_written",
        "sdpa_bytes_read",
        "sdpa_bytes_written",
    }
    # every id, the attention and the blocks included, has its whole eager traffic compared
    norms = [row for row in rows if row.metric == "module_bytes_read" and row.module_id.endswith("norm1")]
    assert len(norms) == 24
    assert len({row.module_id for row in rows}) == len(text_encoder_tree(DIFFUSERS))
    compared = {row.module_id for row in rows if row.metric == "module_bytes_read"}
    assert compared == {row.module_id for row in rows}


def test_transformers_attention_is_the_masked_memory_efficient_kernel() -> None:
    """At L = 77 the bias is bucketed, made contiguous, padded to rows of 80 and read by the kernel."""
    length, bf16, i64, f32, boolean = 77, 2, 8, 4, 1
    m = evaluate_text_encoder(text_len=length, pad_text=False, implementation=DIFFUSERS).metrics
    attn = m["text_encoder.blocks.0.attn"]
    own_read = attn["bytes_read"] - sum(m[f"text_encoder.blocks.0.attn.{p}"]["bytes_read"] for p in "qkvo")
    pairs, bias, projected = length**2, HEADS * length**2, length * D
    buckets_read = (
        i64 * length  # + past_seen_tokens
        + 2 * i64 * length  # memory − context
        + i64 * pairs * 7  # > 0, · num_buckets, 0 +, abs, < max_exact, .float(), max_exact +
        + boolean * pairs  # .to(long) of the comparison
        + f32 * pairs * 5  # / max_exact, log, / log(…), · (num_buckets − max_exact), .to(long)
        + 2 * i64 * pairs  # minimum
        + boolean * pairs
        + 2 * i64 * pairs  # where
        + 2 * i64 * pairs  # relative_buckets += …
    )
    assert own_read == buckets_read + bf16 * bias + bf16 * bias + bf16 * (3 * projected + bias)
    assert m["text_encoder.blocks.0.pos_embedding"]["bytes_written"] == bf16 * bias


def test_golden_record_at_512_tokens_has_the_published_total() -> None:
    """The stored reference measured 4,844,723,109,888 FLOPs and 5,680,910,336 parameters."""
    totals = _record(GOLDEN_DIR / "umt5-xxl__b1_l512.json")["totals"]
    assert (totals["flops"], totals["params"]) == (4_844_723_109_888, 5_680_910_336)


def test_a_wrong_figure_is_caught() -> None:
    """One FLOP more on one module and one byte more on one Linear show up as exactly those mismatches."""
    record = copy.deepcopy(_record(GOLDEN_FILES[0]))
    record["modules"]["text_encoder.blocks.4.ffn.gate.0"]["flops"] += 1
    record["modules"]["text_encoder.blocks.9.attn.v"]["bytes"][1] += 1
    rows = compare_text_encoder_with_record(record)
    assert [(row.module_id, row.metric) for row in rows if not row.matches] == [
        ("text_encoder.blocks.4.ffn.gate.0", "flops"),
        ("text_encoder.blocks.9.attn.v", "bytes_written"),
    ]


def test_a_module_missing_from_the_record_is_an_error() -> None:
    """Every analytic module must exist in the reference record."""
    record = copy.deepcopy(_record(GOLDEN_FILES[0]))
    del record["modules"]["text_encoder.blocks.2.pos_embedding"]
    with pytest.raises(
        LlmPerfOptError, match=r"text_encoder\.blocks\.2\.pos_embedding: analytic module missing"
    ):
        compare_text_encoder_with_record(record)
