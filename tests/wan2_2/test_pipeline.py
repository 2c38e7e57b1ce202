"""Wan2.2 variants, size rules, workloads and pipeline trees: figures that catch a wrong structure."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.compiler import compile_tree
from llm_perf_opt.symbolic.symbols import S, Workload, attention_density, guided_fraction, reused_steps
from llm_perf_opt.symbolic.whatif import WHATIFS_OFF
from llm_perf_opt.wan2_1.implementation import OFFICIAL
from llm_perf_opt.wan2_2 import (
    VARIANTS,
    default_profile,
    dit_calls,
    evaluate_dit,
    evaluate_dit_grid,
    get_variant,
    pipeline_tree,
    resolve_workload,
    undeclared_stages,
)


def _pipeline_metrics(name: str, guidance: bool = True) -> dict[str, dict[str, int]]:
    variant = get_variant(name)
    profile = default_profile(variant)
    workload, _ = resolve_workload(variant)
    assert (workload.frames, workload.height, workload.width) == (
        profile.frames,
        profile.height,
        profile.width,
    )
    return compile_tree(pipeline_tree(variant, OFFICIAL, guidance)).evaluate_exact(workload)


def test_official_configs() -> None:
    """TI2V-5B: dim 3072, 30 layers, 24 heads, FFN 14336, 48 channels, VAE 4×16×16; A14B: 14B experts."""
    ti2v = get_variant("ti2v-5b").transformer
    assert (ti2v.dim, ti2v.num_layers, ti2v.num_heads, ti2v.ffn_dim) == (3072, 30, 24, 14336)
    assert (ti2v.in_dim, ti2v.out_dim, ti2v.z_dim, ti2v.vae_stride) == (48, 48, 48, (4, 16, 16))
    t2v, i2v = get_variant("wan2.2-t2v-a14b"), get_variant("i2v-a14b")
    assert (t2v.boundary, t2v.sample_shift, t2v.sample_guide_scale) == (0.875, 12.0, (3.0, 4.0))
    assert (i2v.boundary, i2v.sample_shift, i2v.sample_guide_scale) == (0.9, 5.0, (3.5, 3.5))
    assert (t2v.transformer.in_dim, i2v.transformer.in_dim) == (16, 36)
    assert default_profile("ti2v-5b").fps == 24 and default_profile("t2v-a14b").fps == 16
    assert [v.model_variant for v in VARIANTS.values()] == ["ti2v-5b", "t2v-a14b", "i2v-a14b"]


def test_ti2v_tokens_at_its_default_run() -> None:
    """1280×704 at 121 frames: 31 latent frames × 22 × 40 = 27 280 tokens (H/32, W/32)."""
    _, notes = resolve_workload(get_variant("ti2v-5b"))
    assert "27280 video tokens" in notes[-1]


@pytest.mark.parametrize(
    ("height", "width", "message"),
    [
        (720, 1280, r"height: must be a multiple of 32 for ti2v-5b .*got 720; nearest valid: 704 or 736"),
        (704, 1270, r"width: must be a multiple of 32 .*nearest valid: 1248 or 1280"),
        (16, 1280, r"height: .*nearest valid: 32$"),
    ],
)
def test_ti2v_sizes_off_the_32_pixel_grid_name_the_nearest(height: int, width: int, message: str) -> None:
    """TI2V-5B accepts multiples of 32 only and names the nearest valid sizes."""
    with pytest.raises(LlmPerfOptError, match=message):
        resolve_workload(get_variant("ti2v-5b"), height=height, width=width)


def test_a14b_accepts_the_16_pixel_grid() -> None:
    """A14B (Wan2.1 VAE) accepts 720×1280 and rejects 721 naming 720 or 736."""
    resolve_workload(get_variant("t2v-a14b"), height=720, width=1280)
    with pytest.raises(LlmPerfOptError, match="nearest valid: 720 or 736"):
        resolve_workload(get_variant("t2v-a14b"), height=721, width=1280)


def test_expert_calls_are_closed_forms_in_steps() -> None:
    """With guidance the experts make 2·high(S) and 2·low(S) forwards, summing to 2·S."""
    calls = {
        name: c.subs(WHATIFS_OFF) for name, c in dit_calls(get_variant("t2v-a14b"), guidance=True).items()
    }
    assert set(calls) == {"high_noise_model", "low_noise_model"}
    assert [int(c.subs(S, 40)) for c in calls.values()] == [52, 28]
    for steps in (1, 7, 40, 100):
        assert sum(int(c.subs(S, steps)) for c in calls.values()) == 2 * steps
    assert dit_calls(get_variant("ti2v-5b"), guidance=False)["diffusion"].subs(WHATIFS_OFF) == S


def test_a14b_pipeline_counts_both_experts() -> None:
    """Parameters: text encoder + VAE + two experts; FLOPs split 26:14 over the 40 default steps."""
    metrics = _pipeline_metrics("t2v-a14b")
    high, low = metrics["high_noise_model"], metrics["low_noise_model"]
    assert high["params"] == low["params"] == 14_288_491_584
    assert metrics["pipeline"]["params"] == (
        metrics["text_encoder"]["params"] + metrics["vae"]["params"] + 2 * high["params"]
    )
    assert high["flops"] * 14 == low["flops"] * 26
    one_forward = evaluate_dit("t2v-a14b").metrics["diffusion"]["flops"]
    assert high["flops"] == 2 * 26 * one_forward


def test_i2v_a14b_encodes_the_condition_once() -> None:
    """I2V-A14B runs the VAE encoder once and has no image encoder; T2V-A14B never encodes."""
    i2v, t2v = _pipeline_metrics("i2v-a14b"), _pipeline_metrics("t2v-a14b")
    assert "image_encoder" not in i2v
    assert i2v["vae.encoder"]["flops"] > 0 and t2v["vae.encoder"]["flops"] == 0


def test_ti2v_pipeline_decodes_with_the_wan2_2_vae() -> None:
    """TI2V-5B decodes once with the Wan2.2 VAE (48 channels) and does not encode in its text-to-video run."""
    variant = get_variant("ti2v-5b")
    assert undeclared_stages(variant) == ()
    metrics = _pipeline_metrics("ti2v-5b")
    assert metrics["diffusion"]["params"] == 4_999_787_712
    assert metrics["vae"]["params"] == 704_688_668
    assert metrics["vae.encoder"]["flops"] == 0 and metrics["vae.decoder"]["flops"] > 0


def test_ti2v_image_mode_encodes_one_frame() -> None:
    """With an input image TI2V-5B encodes one frame: the encoder's FLOPs equal an encode at F = 1."""
    variant = get_variant("ti2v-5b")
    workload, _ = resolve_workload(variant)
    with_image = compile_tree(pipeline_tree(variant, OFFICIAL, True, True)).evaluate_exact(workload)
    one_frame, _ = resolve_workload(variant, frames=1)
    encode = compile_tree(pipeline_tree(variant, OFFICIAL, True, True)).evaluate_exact(one_frame)
    assert with_image["vae.encoder"]["flops"] == encode["vae.encoder"]["flops"] > 0
    assert with_image["vae.decoder"]["flops"] == _pipeline_metrics("ti2v-5b")["vae.decoder"]["flops"]
    with pytest.raises(LlmPerfOptError, match="image: only ti2v-5b takes an optional input image"):
        pipeline_tree(get_variant("t2v-a14b"), OFFICIAL, True, True)


def test_per_token_timesteps_cost_more_time_embedding_in_the_official_profile() -> None:
    """Officially Wan2.2 embeds the timestep of every token; diffusers runs A14B with one per sample."""
    official = evaluate_dit("t2v-a14b", frames=5, height=256, width=256, implementation="official")
    diffusers = evaluate_dit("t2v-a14b", frames=5, height=256, width=256, implementation="diffusers")
    tokens = 2 * 16 * 16
    linear = 2 * 256 * 5120
    assert official.metrics["diffusion.time_embedding.0"]["flops"] == tokens * linear
    assert diffusers.metrics["diffusion.time_embedding.0"]["flops"] == linear


def test_grid_equals_exact_points() -> None:
    """The float grid over frames equals the exact evaluation at each point."""
    grid = evaluate_dit_grid("ti2v-5b", frames=np.array([5, 17, 121]))
    for index, frames in enumerate((5, 17, 121)):
        exact = evaluate_dit("ti2v-5b", frames=frames).metrics["diffusion"]["flops"]
        assert grid["diffusion", "flops"][index] == pytest.approx(exact, rel=1e-12)


def test_bad_workload_fields_are_errors() -> None:
    """Non-positive counts (checked against the workload limits) and unknown grid fields name the field."""
    with pytest.raises(LlmPerfOptError, match="num_inference_steps: must be an integer in 1…"):
        resolve_workload(get_variant("t2v-a14b"), steps=0)
    with pytest.raises(LlmPerfOptError, match="batch_size"):
        resolve_workload(get_variant("t2v-a14b"), batch=0)
    with pytest.raises(LlmPerfOptError, match="steps: unknown workload field"):
        evaluate_dit_grid("t2v-a14b", steps=3)
    with pytest.raises(LlmPerfOptError, match="unknown variant 'ti2v-14b'"):
        get_variant("ti2v-14b")


def test_workload_notes_give_the_expert_split() -> None:
    """A14B notes say how many steps each expert runs."""
    _, notes = resolve_workload(get_variant("i2v-a14b"), steps=40)
    assert "high_noise_model runs 15, low_noise_model 25" in notes[-1]
    assert isinstance(resolve_workload(get_variant("i2v-a14b"))[0], Workload)


def test_expert_forwards_split_the_whatif_run_at_the_boundary() -> None:
    """T2V-A14B, 40 steps (26 high, 14 low): guidance on the first 20 gives 46 + 14 forwards; reusing
    the last 10 as well leaves the high-noise expert's 46 and 4 of the low-noise one's."""
    calls = dit_calls(get_variant("t2v-a14b"), guidance=True)
    truncated = {S: 40, attention_density: 1, reused_steps: 0, guided_fraction: sympy.Rational(1, 2)}
    assert [int(c.subs(truncated)) for c in calls.values()] == [46, 14]
    cached = {**truncated, reused_steps: 10}
    assert [int(c.subs(cached)) for c in calls.values()] == [46, 4]
