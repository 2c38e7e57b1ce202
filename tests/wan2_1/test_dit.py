"""The Wan2.1 diffusion transformer: golden totals, golden formulas, scaling and byte conventions."""

from __future__ import annotations

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.formula import formula
from llm_perf_opt.symbolic.symbols import B, F, H, L, W
from llm_perf_opt.wan2_1.evaluate import dit_tree, evaluate_dit, evaluate_dit_grid
from llm_perf_opt.wan2_1.geometry import video_tokens
from llm_perf_opt.wan2_1.implementation import DIFFUSERS, OFFICIAL
from llm_perf_opt.wan2_1.variants import VARIANTS, get_variant

# Totals derived from the official module definitions (and
# matched by FlopCounterMode on the real implementation).
GOLDEN_TOTALS = [
    # (variant, frames, height, width, FLOPs of one forward, parameters)
    ("t2v-1.3b", 81, 480, 832, 283_001_787_777_024, 1_418_996_800),
    ("t2v-1.3b", 81, 720, 1280, 1_249_837_785_022_464, 1_418_996_800),
    ("t2v-14b", 81, 480, 832, 1_678_370_283_192_320, 14_288_491_584),
    ("t2v-14b", 81, 720, 1280, 6_523_436_592_005_120, 14_288_491_584),
    ("i2v-14b-480p", 81, 480, 832, 1_686_376_373_944_320, 16_394_878_784),
    ("flf2v-14b", 81, 720, 1280, None, 16_395_536_704),
]


@pytest.mark.parametrize(("name", "frames", "height", "width", "flops", "params"), GOLDEN_TOTALS)
def test_golden_totals(
    name: str, frames: int, height: int, width: int, flops: int | None, params: int
) -> None:
    """One forward's FLOPs and the parameter count equal the published derivations to the integer."""
    result = evaluate_dit(name, frames=frames, height=height, width=width)
    if flops is not None:
        assert result.metrics["diffusion"]["flops"] == flops
    assert result.metrics["diffusion"]["params"] == params


@pytest.mark.parametrize("name", list(VARIANTS))
def test_block_flops_formula(name: str) -> None:
    """A block's FLOPs: 12·L·D² + 4·Lt·D² + 4·L·D·Fd + 4·L²·D + 4·L·Lt·D (+ image terms) per sample."""
    variant = get_variant(name)
    d, fd, li = variant.dim, variant.ffn_dim, variant.image_tokens
    tokens = video_tokens()
    # q, k, v, o and the cross-attention q, o: 6 Linear(D→D) over the video tokens, 2·L·D² each
    expected = (
        12 * tokens * d**2 + 4 * L * d**2 + 4 * tokens * d * fd + 4 * tokens**2 * d + 4 * tokens * L * d
    )
    expected += 4 * li * d**2 + 4 * tokens * li * d
    tree = dit_tree(variant, OFFICIAL)
    assert sympy.expand(formula(tree, "diffusion.blocks.7", "flops") - B * expected) == 0


def test_module_formulas_read_like_the_hand_derivation() -> None:
    """Golden per-module formulas of T2V-1.3B: projections, attention core, FFN, patch embedding, head."""
    tree = dit_tree(get_variant("t2v-1.3b"), OFFICIAL)
    tokens = (sympy.floor((F - 1) / 4) + 1) * H * W / 256
    d = 1536
    cases = {
        # x:[B·Lv, D] @ Wᵀ:[D, D], 2 FLOPs per multiply-add
        "diffusion.blocks.3.self_attn.q": 2 * B * tokens * d * d,
        # four projections + QKᵀ and PV over 12 heads of 128: 4·B·Lv²·D
        "diffusion.blocks.3.self_attn": 8 * B * tokens * d * d + 4 * B * tokens**2 * d,
        "diffusion.blocks.3.cross_attn.k": 2 * B * L * d * d,
        "diffusion.blocks.3.ffn": 4 * B * tokens * d * 8960,
        "diffusion.blocks.3.norm1": 0,
        # Conv3d 16→D with a 1×2×2 kernel at every one of the Lv output positions
        "diffusion.patch_embedding": 2 * B * tokens * 16 * 4 * d,
        "diffusion.head.head": 2 * B * tokens * d * 64,
        "diffusion.text_embedding": 2 * B * L * (4096 * d + d * d),
        "diffusion.time_embedding": 2 * B * (256 * d + d * d),
        "diffusion.time_projection": 2 * B * 6 * d * d,
    }
    for module_id, expected in cases.items():
        assert sympy.expand(formula(tree, module_id, "flops") - expected) == 0, module_id


def test_linear_and_attention_bytes_follow_the_implementation() -> None:
    """A bf16 Linear reads x + W + b, writes y (diffusers); the official one adds autocast's casts."""
    d, tokens = 5120, 32_760
    diffusers = evaluate_dit("t2v-14b", frames=81, height=480, width=832, implementation="diffusers").metrics
    q = diffusers["diffusion.blocks.0.self_attn.q"]
    # bf16: x:[32760, 5120] + W:[5120, 5120] + b:[5120] read; y:[32760, 5120] written
    assert q["bytes_read"] == 2 * (tokens * d + d * d + d) == 387_901_440
    assert q["bytes_written"] == 2 * tokens * d == 335_462_400
    official = evaluate_dit("t2v-14b", frames=81, height=480, width=832).metrics
    q = official["diffusion.blocks.0.self_attn.q"]
    # fp32 x cast to bf16 (4 read, 2 written), fp32 W and b re-cast (4 read, 2 written), then the bf16 addmm
    assert q["bytes_read"] == 4 * tokens * d + 4 * (d * d + d) + 2 * (tokens * d + d * d + d)
    assert q["bytes_written"] == 2 * tokens * d + 2 * (d * d + d) + 2 * tokens * d
    assert q["weight_bytes"] == 4 * (d * d + d)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_weight_bytes_from_parameters_and_dtype(name: str) -> None:
    """Official weights are all fp32; diffusers holds bf16 except its fp32-kept modules."""
    variant = get_variant(name)
    official = evaluate_dit(name, frames=17, height=256, width=256).metrics
    diffusers = evaluate_dit(name, frames=17, height=256, width=256, implementation=DIFFUSERS).metrics
    params = official["diffusion"]["params"]
    assert official["diffusion"]["weight_bytes"] == 4 * params
    d = variant.dim
    # fp32 in diffusers: time embedder, block and head modulation, affine norm3 (and img_emb norms)
    fp32_params = (variant.freq_dim * d + d) + (d * d + d) + variant.num_layers * (6 * d + 2 * d) + 2 * d
    if variant.image_tokens:
        fp32_params += 2 * variant.image_dim + 2 * d  # type: ignore[operator]
    assert diffusers["diffusion"]["weight_bytes"] == 2 * params + 2 * fp32_params


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(list(VARIANTS)),
    frames=st.integers(1, 121),
    height=st.integers(1, 60).map(lambda k: 16 * k),
    width=st.integers(1, 60).map(lambda k: 16 * k),
    batch=st.integers(2, 4),
)
def test_batch_scaling(name: str, frames: int, height: int, width: int, batch: int) -> None:
    """FLOPs scale exactly with the batch; bytes are affine in it (weights are read once per call)."""
    one = evaluate_dit(name, frames=frames, height=height, width=width).metrics
    many = evaluate_dit(name, batch=batch, frames=frames, height=height, width=width).metrics
    more = evaluate_dit(name, batch=batch + 1, frames=frames, height=height, width=width).metrics
    for module_id, metrics in one.items():
        for metric in ("flops", "vector_flops"):
            assert many[module_id][metric] == batch * metrics[metric], (module_id, metric)
        for metric in ("bytes_read", "bytes_written", "activation_bytes"):
            step = more[module_id][metric] - many[module_id][metric]
            assert many[module_id][metric] - metrics[metric] == (batch - 1) * step, (module_id, metric)
        assert many[module_id]["params"] == metrics["params"]


def test_self_attention_core_is_quadratic_in_tokens() -> None:
    """Doubling the latent frames doubles the projections and quadruples the attention core."""

    def core(frames: int) -> int:
        m = evaluate_dit("t2v-14b", frames=frames, height=480, width=832).metrics
        attn = m["diffusion.blocks.0.self_attn"]["flops"]
        return attn - sum(m[f"diffusion.blocks.0.self_attn.{p}"]["flops"] for p in "qkvo")

    # 21 latent frames at 81 output frames, 42 at 165
    assert core(165) == 4 * core(81)


@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(list(VARIANTS)),
    frames=st.integers(1, 200),
    height=st.integers(1, 80).map(lambda k: 16 * k),
    width=st.integers(1, 80).map(lambda k: 16 * k),
)
def test_monotone_in_frames_height_width(name: str, frames: int, height: int, width: int) -> None:
    """More frames (by 4), height or width (by 16) never lowers FLOPs or bytes, and strictly raises FLOPs."""
    base = evaluate_dit(name, frames=frames, height=height, width=width).metrics["diffusion"]
    for grown in ({"frames": frames + 4}, {"height": height + 16}, {"width": width + 16}):
        workload = {"frames": frames, "height": height, "width": width, **grown}
        bigger = evaluate_dit(name, **workload).metrics["diffusion"]
        assert bigger["flops"] > base["flops"]
        assert bigger["bytes_read"] > base["bytes_read"]


def test_grid_agrees_with_exact() -> None:
    """The numpy grid over frames × sizes equals the exact values to rounding."""
    import numpy as np

    frames = np.array([1, 17, 81, 121])[:, None]
    sizes = np.array([256, 480, 720])[None, :]
    grid = evaluate_dit_grid("i2v-14b-720p", frames=frames, height=sizes, width=2 * sizes)
    for i, f in enumerate(frames[:, 0]):
        for j, s in enumerate(sizes[0]):
            exact = evaluate_dit("i2v-14b-720p", frames=int(f), height=int(s), width=int(2 * s)).metrics
            for module_id in ("diffusion", "diffusion.blocks.5.cross_attn", "diffusion.img_emb"):
                for metric in ("flops", "bytes_read", "activation_bytes"):
                    value = grid[module_id, metric][i, j]
                    assert value == pytest.approx(exact[module_id][metric], rel=1e-12)


BAD_WORKLOADS = [
    (
        {"height": 500},
        "height: must be a multiple of 16 (VAE stride 8 × patch 2), got 500; nearest valid: 496 or 512",
    ),
    (
        {"width": 8},
        "width: must be a multiple of 16 (VAE stride 8 × patch 2), got 8; nearest valid: 16",
    ),
    (
        {"frames": 0},
        "num_frames: must be an integer in 1…4093 (at most 1024 latent frames), got 0",
    ),
    ({"batch": 0}, "batch_size: must be an integer in 1…1024 (16× the largest published run), got 0"),
    ({"text_len": 600}, "text_len: must be an integer in 0…512 (the tokenizer's limit), got 600"),
    ({"text_len": -1}, "text_len: must be an integer in 0…512 (the tokenizer's limit), got -1"),
]


@pytest.mark.parametrize(("change", "message"), BAD_WORKLOADS)
def test_bad_workloads_are_clear_errors(change: dict[str, int], message: str) -> None:
    """Sizes the pipeline rejects and out-of-range counts raise one error naming the field."""
    workload = {"frames": 81, "height": 480, "width": 832, **change}
    with pytest.raises(LlmPerfOptError) as caught:
        evaluate_dit("t2v-14b", **workload)
    assert str(caught.value) == message


def test_frame_flooring_and_text_padding_are_disclosed() -> None:
    """A frame count that is not 4k+1 and a short prompt are accepted, and the notes say what ran."""
    result = evaluate_dit("t2v-1.3b", frames=83, height=480, width=832, text_len=77)
    assert result.workload.text_len == 512
    assert result.metrics == evaluate_dit("t2v-1.3b", frames=81, height=480, width=832).metrics
    assert any("video has 81 frames" in note for note in result.notes)
    assert any("padded to 512" in note for note in result.notes)
    trimmed = evaluate_dit("t2v-1.3b", frames=81, height=480, width=832, text_len=77, pad_text=False)
    assert trimmed.metrics["diffusion.blocks.0.cross_attn.k"]["flops"] == 2 * 77 * 1536 * 1536
    with pytest.raises(LlmPerfOptError, match="text_len: i2v-14b-480p splits its context at 512"):
        evaluate_dit("i2v-14b-480p", frames=81, height=480, width=832, text_len=77, pad_text=False)


def test_module_ids_follow_the_official_names() -> None:
    """Ids are the official attribute paths under the ``diffusion.`` prefix, blocks expanded per index."""
    tree = dit_tree(get_variant("flf2v-14b"), OFFICIAL)
    for module_id, class_name in {
        "diffusion": "WanModel",
        "diffusion.patch_embedding": "Conv3d",
        "diffusion.text_embedding.0": "Linear",
        "diffusion.time_embedding.0": "Linear",
        "diffusion.time_projection.1": "Linear",
        "diffusion.blocks": "ModuleList",
        "diffusion.blocks.39.self_attn.q": "Linear",
        "diffusion.blocks.12.self_attn.norm_q": "WanRMSNorm",
        "diffusion.blocks.12.cross_attn": "WanI2VCrossAttention",
        "diffusion.blocks.12.cross_attn.k_img": "Linear",
        "diffusion.blocks.12.ffn.0": "Linear",
        "diffusion.blocks.12.norm3": "WanLayerNorm",
        "diffusion.head.head": "Linear",
        "diffusion.img_emb.proj.4": "WanLayerNorm",
    }.items():
        assert tree[module_id].class_name == class_name
    assert tree["diffusion.blocks"].repetition_count == 40
    assert "diffusion.blocks.40" not in tree.nodes
