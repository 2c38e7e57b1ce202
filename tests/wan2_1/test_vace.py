"""Wan2.1 VACE: the variants, the control branch's structure, reference frames, and the golden records."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.compiler import compile_tree
from llm_perf_opt.symbolic.module import Module, build_tree
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.dit import declare_dit
from llm_perf_opt.wan2_1.implementation import DIFFUSERS, OFFICIAL
from llm_perf_opt.wan2_1.vace import VACE_VARIANTS, declare_vace_dit, get_vace_variant, with_reference_frames
from llm_perf_opt.wan2_1.vace_check import compare_vace_with_record
from llm_perf_opt.wan2_1.vace_pipeline import default_profile, pipeline_tree, resolve_workload
from llm_perf_opt.wan2_1.vae import declare_vae

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "vace"
GOLDEN_FILES = sorted(GOLDEN_DIR.glob("*.json"))


def _record(path: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return record


def _metrics(root: Any, **load: int) -> dict[str, dict[str, int]]:
    workload = Workload(steps=1, **load)
    return compile_tree(build_tree(root, "diffusion")).evaluate_exact(workload)


def test_official_layers_and_context_width() -> None:
    """1.3B hints every 2nd of 30 blocks (15 VACE blocks), 14B every 5th of 40 (8); context 96 channels."""
    small, large = get_vace_variant("vace-1.3b"), get_vace_variant("wan2.1-vace-14b")
    assert small.vace_layers == tuple(range(0, 30, 2)) and large.vace_layers == tuple(range(0, 40, 5))
    assert small.vace_in_dim == large.vace_in_dim == 96
    assert (small.transformer.dim, large.transformer.dim) == (1536, 5120)
    assert (small.sample_steps, small.sample_shift, small.reference_images) == (50, 16.0, 2)


def test_parameters_are_the_base_plus_the_control_branch() -> None:
    """VACE parameters = base WanModel + one block and after_proj per VACE layer + before_proj + the
    context patch embedding; 1.3B: 2 153 972 032 as diffusers' model holds."""
    variant = VACE_VARIANTS["vace-1.3b"]
    load = {"batch": 1, "frames": 5, "height": 256, "width": 256, "text_len": 64}
    base = _metrics(declare_dit(variant.transformer, OFFICIAL), **load)
    vace = _metrics(declare_vace_dit(variant, OFFICIAL), **load)
    dim = variant.transformer.dim
    block = base["diffusion.blocks.0"]["params"]
    layers = len(variant.vace_layers)
    linear = dim * dim + dim
    patch = variant.vace_in_dim * dim * 4 + dim
    expected = base["diffusion"]["params"] + layers * (block + linear) + linear + patch
    assert vace["diffusion"]["params"] == expected == 2_153_972_032


def test_reference_images_add_latent_frames() -> None:
    """R reference images run the transformer on T + R latent frames: the same as 4R more video frames."""
    variant = VACE_VARIANTS["vace-1.3b"]
    with_refs = _metrics(
        declare_vace_dit(variant, OFFICIAL, 2), batch=1, frames=9, height=256, width=256, text_len=512
    )
    longer = _metrics(
        declare_vace_dit(variant, OFFICIAL, 0), batch=1, frames=17, height=256, width=256, text_len=512
    )
    assert with_refs == longer


def test_bad_reference_image_count_is_an_error() -> None:
    """A negative reference-image count names the field."""
    with pytest.raises(LlmPerfOptError, match="reference_images: must be an integer ≥ 0"):
        with_reference_frames(declare_dit(VACE_VARIANTS["vace-1.3b"].transformer, OFFICIAL), -1)


def test_vace_layer_beyond_the_blocks_is_an_error() -> None:
    """vace_layers must index existing blocks."""
    variant = VACE_VARIANTS["vace-1.3b"]
    with pytest.raises(LlmPerfOptError, match="vace_layers: must be < num_layers"):
        attrs.evolve(variant, vace_layers=(0, 30))


def test_unknown_variant_lists_the_known() -> None:
    """An unknown VACE name lists vace-1.3b and vace-14b."""
    with pytest.raises(LlmPerfOptError, match=r"known variants: vace-1\.3b"):
        get_vace_variant("vace-2b")


def test_every_variant_has_golden_records_with_batch_two_and_reference_images() -> None:
    """Two variants × three workloads, with batch 2 and 0, 1 and 2 reference images."""
    assert len(GOLDEN_FILES) == 6
    workloads = [_record(p)["workload"] for p in GOLDEN_FILES]
    assert {w["reference_images"] for w in workloads} == {0, 1, 2}
    assert {w["batch"] for w in workloads} == {1, 2}


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_exact_agreement_with_golden_record(path: Path) -> None:
    """FLOPs, parameters and whole-module eager bytes of every id equal diffusers' VACE model."""
    rows = compare_vace_with_record(_record(path))
    assert not [row for row in rows if not row.matches]
    assert {"module_bytes_read", "module_bytes_written"} <= {row.metric for row in rows}
    ids = {row.module_id for row in rows}
    assert {"diffusion.vace_patch_embedding", "diffusion.vace_blocks.0.before_proj"} <= ids


def test_a_wrong_hint_projection_is_caught() -> None:
    """One FLOP more on a VACE block's after_proj is exactly that mismatch."""
    record = copy.deepcopy(_record(GOLDEN_FILES[0]))
    record["modules"]["diffusion.vace_blocks.3.after_proj"]["flops"] += 1
    mismatches = [(r.module_id, r.metric) for r in compare_vace_with_record(record) if not r.matches]
    assert mismatches == [("diffusion.vace_blocks.3.after_proj", "flops")]


def test_diffusers_adds_the_hints_in_the_root_forward() -> None:
    """diffusers adds each hint after its block, in the root: a hinted block's bytes equal a plain one's."""
    variant = get_vace_variant("vace-1.3b")
    blocks = next(c for c in declare_vace_dit(variant, DIFFUSERS).children if c.name == "blocks")
    assert isinstance(blocks, Module)
    hinted, plain = blocks.children[variant.vace_layers[0]], blocks.children[1]
    assert hinted.ops == plain.ops
    root_ops = [op.primitive for op in declare_vace_dit(variant, DIFFUSERS).ops]
    assert root_ops[0] == "new_ones"
    assert root_ops.count("mul") - [
        op.primitive for op in declare_dit(variant.transformer, DIFFUSERS).ops
    ].count("mul") == len(variant.vace_layers)


def test_pipeline_runs_the_vace_transformer_with_guidance_and_two_control_encodes() -> None:
    """The README run: 2·50 VACE forwards on T + 2 latent frames, two control-video encodes, one decode."""
    variant = VACE_VARIANTS["vace-1.3b"]
    profile = default_profile(variant)
    assert (profile.frames, profile.height, profile.width, profile.steps) == (81, 480, 832, 50)
    workload, notes = resolve_workload(variant, control_video=False, mask=False, reference_images=2)
    metrics = compile_tree(pipeline_tree(variant, OFFICIAL, True, 2)).evaluate_exact(workload)
    one = _metrics(
        declare_vace_dit(variant, OFFICIAL, 2), batch=1, frames=81, height=480, width=832, text_len=512
    )
    assert metrics["diffusion"]["flops"] == 100 * one["diffusion"]["flops"]
    encode_once = compile_tree(build_tree(declare_vae(OFFICIAL, encodes=1, decodes=0), "vae"))
    assert metrics["vae.encoder"]["flops"] == 2 * encode_once.evaluate_exact(workload)["vae.encoder"]["flops"]
    assert any("not counted" in note for note in notes)


@pytest.mark.parametrize(
    ("control_video", "mask", "refs", "message"),
    [
        (False, False, 0, "src_video: VACE needs a control video or reference images"),
        (False, True, 1, r"src_video: a mask \(src_mask\) needs the control video"),
        (True, True, -1, "reference_images: must be an integer ≥ 0"),
    ],
)
def test_missing_vace_inputs_are_errors(control_video: bool, mask: bool, refs: int, message: str) -> None:
    """A VACE request without any conditioning, or a mask without its video, is refused by name."""
    with pytest.raises(LlmPerfOptError, match=message):
        resolve_workload(
            VACE_VARIANTS["vace-14b"], control_video=control_video, mask=mask, reference_images=refs
        )
