"""The Wan-VAE: golden totals and chunks, golden formulas, parameters, scaling, golden records."""

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
from llm_perf_opt.symbolic.symbols import B, F, H, W
from llm_perf_opt.wan2_1.check import compare_vae_with_record
from llm_perf_opt.wan2_1.evaluate import (
    evaluate_vae,
    evaluate_vae_decode,
    evaluate_vae_encode,
    evaluate_vae_grid,
    vae_tree,
)
from llm_perf_opt.wan2_1.implementation import DIFFUSERS, OFFICIAL

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "vae"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))

# T latent frames = chunks; h × w the latent plane
T = sympy.floor((F - 1) / 4) + 1
h, w = H / 8, W / 8


def _record(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


# FLOPs of one encode / one decode of one video at 81 frames, (measured
# there with FlopCounterMode on diffusers' AutoencoderKLWan).
GOLDEN_TOTALS = [
    ("encode", 480, 832, 163_749_702_205_440),
    ("encode", 720, 1280, 381_674_137_190_400),
    ("decode", 480, 832, 275_352_205_639_680),
    ("decode", 720, 1280, 639_218_375_884_800),
]


@pytest.mark.parametrize(("use", "height", "width", "flops"), GOLDEN_TOTALS)
def test_golden_totals(use: str, height: int, width: int, flops: int) -> None:
    """One encode or decode of 81 frames costs the published FLOPs; the VAE has 126,892,531 parameters."""
    evaluate = evaluate_vae_encode if use == "encode" else evaluate_vae_decode
    root = evaluate(frames=81, height=height, width=width).metrics["vae"]
    assert root["flops"] == flops
    assert root["params"] == 126_892_531


def test_chunks_add_up_to_the_published_per_chunk_figures() -> None:
    """Chunk 0 and each later chunk cost what forward hooks measure on the reference (480p)."""
    decode_1 = evaluate_vae_decode(frames=1, height=480, width=832).metrics  # T = 1: chunk 0 alone
    decode_5 = evaluate_vae_decode(frames=5, height=480, width=832).metrics  # T = 2
    decode_81 = evaluate_vae_decode(frames=81, height=480, width=832).metrics  # T = 21
    assert decode_1["vae.decoder"]["flops"] == 4_352_193_331_200
    assert decode_5["vae.decoder"]["flops"] - decode_1["vae.decoder"]["flops"] == 13_549_997_260_800
    # 4,352,193,331,200 + 20 × 13,549,997,260,800
    assert decode_81["vae.decoder"]["flops"] == 275_352_138_547_200
    # post_quant_conv: 2·16·16 per voxel over 21 × 60 × 104 latent voxels
    assert decode_81["vae.conv2"]["flops"] == 2 * 16 * 16 * 21 * 60 * 104 == 67_092_480
    encode_1 = evaluate_vae_encode(frames=1, height=480, width=832).metrics
    encode_5 = evaluate_vae_encode(frames=5, height=480, width=832).metrics
    assert encode_1["vae.encoder"]["flops"] == 2_718_280_581_120
    assert encode_5["vae.encoder"]["flops"] - encode_1["vae.encoder"]["flops"] == 8_051_557_662_720


def test_parameters_split_and_count_once() -> None:
    """Encoder 53,595,872, decoder 73,295,331, quant convs 1,056 + 272; the same whatever runs."""
    metrics = evaluate_vae(frames=17, height=256, width=256).metrics
    assert metrics["vae.encoder"]["params"] == 53_595_872
    assert metrics["vae.decoder"]["params"] == 73_295_331
    assert metrics["vae.conv1"]["params"] == 32 * 32 + 32 == 1_056
    assert metrics["vae.conv2"]["params"] == 16 * 16 + 16 == 272
    # 384 → 384 residual block: two RMS norm γ of 384, two 3×3×3 convs with bias
    assert metrics["vae.decoder.middle.0"]["params"] == 2 * 384 + 2 * (384 * 384 * 27 + 384) == 7_964_160
    # attention: γ 384, to_qkv 384 → 1152 (1×1, bias), proj 384 → 384 (1×1, bias)
    assert metrics["vae.decoder.middle.1"]["params"] == 384 + 384 * 1152 + 1152 + 384 * 384 + 384
    for encodes, decodes in ((0, 1), (1, 0), (2, 1), (0, 0)):
        tree = vae_tree(OFFICIAL, encodes=encodes, decodes=decodes)
        assert formula(tree, "vae", "params") == 126_892_531
        assert formula(tree, "vae", "weight_bytes") == 4 * 126_892_531  # fp32


def test_a_part_that_does_not_run_has_no_work() -> None:
    """Decode only: the encoder and quant conv do nothing; encode + decode is the sum of the two."""
    decode = evaluate_vae_decode(frames=81, height=480, width=832).metrics
    encode = evaluate_vae_encode(frames=81, height=480, width=832).metrics
    both = evaluate_vae(frames=81, height=480, width=832).metrics
    for metric in ("flops", "vector_flops", "bytes_read", "bytes_written", "activation_bytes"):
        assert decode["vae.encoder"][metric] == decode["vae.conv1"][metric] == 0
        assert encode["vae.decoder"][metric] == encode["vae.conv2"][metric] == 0
        assert both["vae"][metric] == encode["vae"][metric] + decode["vae"][metric]
    tree = vae_tree(OFFICIAL, encodes=0, decodes=1)
    assert tree["vae.encoder"].calls == 0
    assert tree["vae.decoder.upsamples.3.time_conv"].calls == B  # official: once per video


def test_module_formulas_read_like_the_hand_derivation() -> None:
    """Golden per-module FLOPs: 2·Cin·Cout·kernel volume per output voxel, summed over every chunk."""
    tree = vae_tree(OFFICIAL, encodes=1, decodes=1)
    # frames per level over all T chunks: encoder F' = 1 + 4(T−1) (full, H/2), 1 + 2(T−1) (H/4), T (H/8);
    # decoder T (h), 1 + 2(T−1) (2h), 1 + 4(T−1) (4h, 8h)
    full = 4 * T - 3
    half = 2 * T - 1
    cases = {
        # Conv3d 3 → 96, 3×3×3, every frame at H × W
        "vae.encoder.conv1": 2 * 3 * 96 * 27 * full * H * W,
        # Conv2d 96 → 96, 3×3, stride 2: output H/2 × W/2 on every frame
        "vae.encoder.downsamples.2.resample.1": 2 * 96 * 96 * 9 * full * (H / 2) * (W / 2),
        # 1×1×1 shortcut 96 → 192 at H/2
        "vae.encoder.downsamples.3.shortcut": 2 * 96 * 192 * full * (H / 2) * (W / 2),
        # time conv 192 → 192, kernel 3, stride 2: skipped in chunk 0; 5 frames in, 2 out per later chunk
        "vae.encoder.downsamples.5.time_conv": 2 * 192 * 192 * 3 * 2 * (T - 1) * (H / 4) * (W / 4),
        # 3 frames in, 1 out per later chunk, at H/8
        "vae.encoder.downsamples.8.time_conv": 2 * 384 * 384 * 3 * (T - 1) * h * w,
        "vae.encoder.head.2": 2 * 384 * 32 * 27 * T * h * w,
        "vae.conv1": 2 * 32 * 32 * T * h * w,
        "vae.conv2": 2 * 16 * 16 * T * h * w,
        "vae.decoder.conv1": 2 * 16 * 384 * 27 * T * h * w,
        # to_qkv 384 → 1152, proj 384 → 384 at every latent position; one 384-wide head over the h·w
        # positions of each of the T frames: 4·T·(h·w)²·384
        "vae.decoder.middle.1": 2 * 384 * 1152 * T * h * w
        + 2 * 384 * 384 * T * h * w
        + 4 * T * (h * w) ** 2 * 384,
        # time conv 384 → 768, (3, 1, 1): skipped in chunk 0, one frame per later chunk
        "vae.decoder.upsamples.3.time_conv": 2 * 384 * 768 * 3 * (T - 1) * h * w,
        # two frames per later chunk at 2h × 2w
        "vae.decoder.upsamples.7.time_conv": 2 * 384 * 768 * 3 * 2 * (T - 1) * (2 * h) * (2 * w),
        "vae.decoder.upsamples.4.shortcut": 2 * 192 * 384 * half * (2 * h) * (2 * w),
        # upsample2d: nearest ×2 to H × W, then Conv2d 192 → 96, 3×3
        "vae.decoder.upsamples.11.resample.1": 2 * 192 * 96 * 9 * full * H * W,
        "vae.decoder.head.2": 2 * 96 * 3 * 27 * full * H * W,
        # element-wise modules count no FLOPs
        "vae.decoder.head.0": 0,
        "vae.decoder.upsamples.3.resample.0": 0,
    }
    for module_id, expected in cases.items():
        assert sympy.expand(formula(tree, module_id, "flops") - B * expected) == 0, module_id


def test_simplified_formulas_equal_the_raw_sums() -> None:
    """The simplified expression the evaluator uses equals the raw sum of ops, for every metric."""
    tree = vae_tree(DIFFUSERS, encodes=1, decodes=1)
    for module_id in ("vae", "vae.encoder.downsamples.5", "vae.decoder.upsamples.7", "vae.decoder.middle.1"):
        for metric in ("flops", "vector_flops", "bytes_read", "bytes_written", "params"):
            raw = getattr(tree[module_id].aggregate, metric)
            assert sympy.simplify(formula(tree, module_id, metric) - raw) == 0, (module_id, metric)


def test_convolution_bytes_follow_the_chunks() -> None:
    """Each chunk's conv cats its cache (1 frame in chunk 1, 2 after), pads what it got (fill of the
    padded tensor, then the copy of its input into it), and convolves."""
    conv = evaluate_vae_decode(frames=81, height=480, width=832, implementation="diffusers").metrics
    conv1 = conv["vae.decoder.conv1"]
    # 21 chunks of one latent frame, 16 channels at 60 × 104, fp32:
    # conv input 16 × (1 + 2) × 62 × 106, weight 384·16·27 + bias 384; output 384 × 60 × 104
    frame = 4 * 16 * 60 * 104
    conv_read = 21 * 4 * (16 * 3 * 62 * 106 + 384 * 16 * 27 + 384)
    conv_written = 21 * 4 * 384 * 60 * 104
    cat = frame * (2 + 19 * 3)  # chunk 1: cache of 1 + 1 frame; chunks 2–20: 2 + 1
    pad_read = frame * (1 + 2 + 19 * 3)  # F.pad reads what it gets: x alone in chunk 0, else the cat
    pad_written = 21 * 4 * 16 * 3 * 62 * 106 + pad_read  # the filled tensor, then its interior again
    assert conv1["bytes_read"] == conv_read + cat + pad_read
    assert conv1["bytes_written"] == conv_written + cat + pad_written


def test_official_runs_videos_one_at_a_time() -> None:
    """Official: B videos cost B times one (weights re-read per video); diffusers reads them once a chunk."""
    kwargs: dict[str, Any] = {"frames": 9, "height": 64, "width": 96}
    for implementation in ("official", "diffusers"):
        one = evaluate_vae(batch=1, implementation=implementation, **kwargs).metrics
        two = evaluate_vae(batch=2, implementation=implementation, **kwargs).metrics
        module = one["vae.decoder.conv1"]
        if implementation == "official":
            assert two["vae"]["bytes_read"] == 2 * one["vae"]["bytes_read"]
            assert vae_tree(OFFICIAL)["vae.decoder"].calls == B
        else:
            assert two["vae.decoder.conv1"]["bytes_read"] < 2 * module["bytes_read"]
        assert two["vae"]["flops"] == 2 * one["vae"]["flops"]


@settings(max_examples=20, deadline=None)
@given(
    frames=st.integers(1, 121),
    height=st.integers(1, 60).map(lambda k: 16 * k),
    width=st.integers(1, 60).map(lambda k: 16 * k),
    batch=st.integers(2, 4),
    implementation=st.sampled_from(["official", "diffusers"]),
)
def test_batch_scaling(frames: int, height: int, width: int, batch: int, implementation: str) -> None:
    """FLOPs scale exactly with the batch; bytes are linear in it for the official loop, affine from two
    videos on for diffusers (one video folds frames into the batch as a view, more copy; with one the
    CUDA upsampling kernel copies the view instead, so a copy moves between ids)."""
    kwargs: dict[str, Any] = {
        "frames": frames,
        "height": height,
        "width": width,
        "implementation": implementation,
    }
    one = evaluate_vae(batch=1, **kwargs).metrics
    two = evaluate_vae(batch=2, **kwargs).metrics
    many = evaluate_vae(batch=batch, **kwargs).metrics
    more = evaluate_vae(batch=batch + 1, **kwargs).metrics
    for module_id, metrics in one.items():
        for metric in ("flops", "vector_flops"):
            assert many[module_id][metric] == batch * metrics[metric], (module_id, metric)
        for metric in ("bytes_read", "bytes_written", "activation_bytes"):
            step = more[module_id][metric] - many[module_id][metric]
            assert many[module_id][metric] - two[module_id][metric] == (batch - 2) * step, (module_id, metric)
            if module_id == "vae":
                assert two[module_id][metric] - metrics[metric] >= step, (module_id, metric)
            if implementation == "official":
                assert many[module_id][metric] == batch * metrics[metric], (module_id, metric)
        assert many[module_id]["params"] == metrics["params"]


@settings(max_examples=25, deadline=None)
@given(
    frames=st.integers(1, 200),
    height=st.integers(1, 80).map(lambda k: 16 * k),
    width=st.integers(1, 80).map(lambda k: 16 * k),
)
def test_monotone_in_frames_height_width(frames: int, height: int, width: int) -> None:
    """More frames (by 4), height or width (by 16) strictly raise FLOPs and bytes of encode and decode."""
    base = evaluate_vae(frames=frames, height=height, width=width).metrics
    for grown in ({"frames": frames + 4}, {"height": height + 16}, {"width": width + 16}):
        bigger = evaluate_vae(**{"frames": frames, "height": height, "width": width, **grown}).metrics
        for module_id in ("vae", "vae.encoder", "vae.decoder"):
            for metric in ("flops", "bytes_read", "bytes_written"):
                assert bigger[module_id][metric] > base[module_id][metric], (grown, module_id, metric)
    # a frame count that is not 4k + 1 costs what the 4k + 1 below it costs
    assert evaluate_vae(frames=4 * ((frames - 1) // 4) + 1, height=height, width=width).metrics == base


def test_grid_agrees_with_exact() -> None:
    """The numpy grid over frames × sizes equals the exact values, for every module and metric."""
    frames = np.array([1, 5, 17, 81, 83])[:, None]
    sizes = np.array([256, 480, 720])[None, :]
    grid = evaluate_vae_grid(frames=frames, height=sizes, width=2 * sizes, batch=2)
    for i, f in enumerate(frames[:, 0]):
        for j, s in enumerate(sizes[0]):
            exact = evaluate_vae(frames=int(f), height=int(s), width=int(2 * s), batch=2).metrics
            for module_id, metrics in exact.items():
                for metric, value in metrics.items():
                    assert grid[module_id, metric][i, j] == pytest.approx(value, rel=1e-12), (
                        module_id,
                        metric,
                    )


def test_module_ids_follow_the_official_names() -> None:
    """Ids are the official attribute paths of ``WanVAE_`` under ``vae.``; identities have no id."""
    tree = vae_tree(OFFICIAL)
    for module_id, class_name in {
        "vae": "WanVAE_",
        "vae.encoder": "Encoder3d",
        "vae.encoder.conv1": "CausalConv3d",
        "vae.encoder.downsamples": "Sequential",
        "vae.encoder.downsamples.0": "ResidualBlock",
        "vae.encoder.downsamples.0.residual.0": "RMS_norm",
        "vae.encoder.downsamples.0.residual.1": "SiLU",
        "vae.encoder.downsamples.0.residual.6": "CausalConv3d",
        "vae.encoder.downsamples.2": "Resample",
        "vae.encoder.downsamples.2.resample.0": "ZeroPad2d",
        "vae.encoder.downsamples.5.time_conv": "CausalConv3d",
        "vae.encoder.downsamples.10": "ResidualBlock",
        "vae.encoder.middle.1": "AttentionBlock",
        "vae.encoder.middle.1.to_qkv": "Conv2d",
        "vae.encoder.head.2": "CausalConv3d",
        "vae.conv1": "CausalConv3d",
        "vae.conv2": "CausalConv3d",
        "vae.decoder": "Decoder3d",
        "vae.decoder.upsamples.3": "Resample",
        "vae.decoder.upsamples.3.resample.0": "Upsample",
        "vae.decoder.upsamples.4.shortcut": "CausalConv3d",
        "vae.decoder.upsamples.14": "ResidualBlock",
        "vae.decoder.head.0": "RMS_norm",
    }.items():
        assert tree[module_id].class_name == class_name, module_id
    for absent in (
        "vae.encoder.downsamples.11",  # 11 entries: 0 … 10
        "vae.decoder.upsamples.15",  # 15 entries: 0 … 14
        "vae.encoder.downsamples.0.shortcut",  # 96 → 96: nn.Identity
        "vae.encoder.downsamples.0.residual.5",  # Dropout(0)
        "vae.encoder.downsamples.2.time_conv",  # downsample2d
        "vae.decoder.upsamples.11.time_conv",  # upsample2d
    ):
        assert absent not in tree.nodes
    assert tree["vae.decoder.upsamples.3"].params == {"dim": 384, "mode": "upsample3d"}
    assert tree["vae.encoder.downsamples.2"].params == {"dim": 96, "mode": "downsample2d"}


BAD_INPUTS = [
    (
        {"height": 500},
        "height: must be a multiple of 16 (VAE stride 8 × patch 2), got 500; nearest valid: 496 or 512",
    ),
    ({"frames": 0}, "num_frames: must be an integer in 1…4093 (at most 1024 latent frames), got 0"),
    ({"batch": 0}, "batch_size: must be an integer in 1…1024 (16× the largest published run), got 0"),
    ({"encodes": -1}, "encodes: must be an integer ≥ 0, got -1"),
    ({"decodes": True}, "decodes: must be an integer ≥ 0, got True"),
]


@pytest.mark.parametrize(("change", "message"), BAD_INPUTS)
def test_bad_inputs_are_clear_errors(change: dict[str, Any], message: str) -> None:
    """Rejected sizes and bad counts raise one error naming the field, the value and what is accepted."""
    with pytest.raises(LlmPerfOptError) as caught:
        evaluate_vae(**{"frames": 81, "height": 480, "width": 832, **change})
    assert str(caught.value) == message


def test_frame_flooring_is_disclosed() -> None:
    """A frame count that is not 4k+1 runs as the 4k+1 below it, and the notes say so."""
    result = evaluate_vae(frames=83, height=480, width=832)
    assert result.metrics == evaluate_vae(frames=81, height=480, width=832).metrics
    assert any("encode reads only the first 81 frames" in note for note in result.notes)
    assert any("21 chunks" in note for note in result.notes)


# ─── golden records of diffusers' AutoencoderKLWan (no torch needed) ───────────────────────────


def test_every_golden_case_has_a_file() -> None:
    """Encode and decode at 81 frames 832×480 and 1280×720, and at 17 frames 256×256."""
    assert [p.name for p in GOLDEN_FILES] == sorted(
        f"{use}__b1_f{f}_{hh}x{ww}.json"
        for use in ("encode", "decode")
        for f, hh, ww in ((81, 480, 832), (81, 720, 1280), (17, 256, 256))
    )


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_exact_agreement_with_golden_record(path: Path) -> None:
    """FLOPs, parameters and whole eager bytes of every keyed id, convolution and attention bytes equal
    the reference."""
    record = _record(path)
    rows = compare_vae_with_record(record)
    mismatches = [row for row in rows if not row.matches]
    assert not mismatches, mismatches[:5]
    assert {row.metric for row in rows} == {
        "flops",
        "params",
        "module_bytes_read",
        "module_bytes_written",
        "conv_bytes_read",
        "conv_bytes_written",
        "sdpa_bytes_read",
        "sdpa_bytes_written",
    }
    assert record["totals"]["params"] == 126_892_531


def test_a_wrong_figure_is_caught() -> None:
    """One FLOP more or one byte more on one module of the record shows up as exactly that mismatch."""
    record = copy.deepcopy(_record(GOLDEN_DIR / "decode__b1_f17_256x256.json"))
    record["modules"]["vae.decoder.upsamples.7.time_conv"]["flops"] += 2
    record["modules"]["vae.decoder.middle.1"]["sdpa_bytes"][1] += 4
    record["modules"]["vae.decoder.conv1"]["conv_bytes"][0] += 4
    record["modules"]["vae.decoder.head.0"]["module_bytes"][1] += 4
    mismatches = {(row.module_id, row.metric) for row in compare_vae_with_record(record) if not row.matches}
    assert mismatches == {
        ("vae.decoder.upsamples.7.time_conv", "flops"),
        ("vae.decoder.middle.1", "sdpa_bytes_written"),
        ("vae.decoder.conv1", "conv_bytes_read"),
        ("vae.decoder.head.0", "module_bytes_written"),
    }


def test_a_module_missing_from_the_record_is_an_error() -> None:
    """Every analytic module the reference can key must exist in the record."""
    record = copy.deepcopy(_record(GOLDEN_DIR / "encode__b1_f17_256x256.json"))
    del record["modules"]["vae.encoder.downsamples.5.time_conv"]
    with pytest.raises(
        LlmPerfOptError, match=r"vae\.encoder\.downsamples\.5\.time_conv: analytic module missing"
    ):
        compare_vae_with_record(record)


def test_only_diffusers_runs_the_posterior() -> None:
    """One video: the profiles differ by diffusers' posterior alone (clamp, ·0.5, two exp on log-variance)."""
    kwargs: dict[str, Any] = {"frames": 81, "height": 480, "width": 832, "encodes": 1, "decodes": 0}
    official = evaluate_vae(implementation="official", **kwargs).metrics["vae"]
    diffusers = evaluate_vae(implementation="diffusers", **kwargs).metrics["vae"]
    log_variance = 4 * 16 * 21 * 60 * 104  # fp32 [1, 16, 21, 60, 104]
    assert diffusers["bytes_read"] - official["bytes_read"] == 4 * log_variance
    assert diffusers["bytes_written"] - official["bytes_written"] == 4 * log_variance
    assert diffusers["flops"] == official["flops"]
