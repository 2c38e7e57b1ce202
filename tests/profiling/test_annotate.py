"""The annotation on a live model, proven on a real CPU trace of a small Wan transformer and VAE decoder."""

from __future__ import annotations

from pathlib import Path

import pytest
import sympy

pytest.importorskip("torch")
pytest.importorskip("diffusers")

import torch

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.profiling.annotate import annotate, module_ids
from llm_perf_opt.profiling.trace import TraceProfile, import_trace
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.evaluate import dit_tree, resolve_vae_workload, resolve_workload, vae_tree
from llm_perf_opt.wan2_1.implementation import get_implementation
from tests.profiling.live import (
    DIT_WORKLOAD,
    FORWARDS,
    SMALL_DIT,
    SMALL_VAE,
    VAE_FRAMES,
    VAE_HEIGHT,
    VAE_WIDTH,
)

pytestmark = pytest.mark.reference

OFFICIAL = get_implementation("official")


@pytest.fixture(scope="module")
def profile(live_trace: Path) -> TraceProfile:
    """The live trace, imported."""
    return import_trace(live_trace)


def _dit() -> tuple[ModuleTree, Workload]:
    workload, _ = resolve_workload(
        SMALL_DIT,
        batch=DIT_WORKLOAD.batch,
        frames=DIT_WORKLOAD.frames,
        height=DIT_WORKLOAD.height,
        width=DIT_WORKLOAD.width,
        text_len=DIT_WORKLOAD.text_len,
        pad_text=False,
    )
    return dit_tree(SMALL_DIT, OFFICIAL), workload


def _vae() -> tuple[ModuleTree, Workload]:
    workload, _ = resolve_vae_workload(batch=1, frames=VAE_FRAMES, height=VAE_HEIGHT, width=VAE_WIDTH)
    return vae_tree(OFFICIAL, encodes=0, decodes=1, config=SMALL_VAE), workload


def _exact(tree: ModuleTree, workload: Workload, module_id: str, what: str) -> int:
    node = tree[module_id]
    value = node.calls if what == "calls" else node.aggregate.flops
    return int(sympy.sympify(value).subs(workload.subs()))


def test_almost_all_op_time_is_attributed(profile: TraceProfile) -> None:
    """At least 99% of the CPU operator time of the run lands inside a module range."""
    assert profile.timeline == "host"
    assert profile.shapes_recorded
    assert profile.work_us > 0
    assert profile.attributed_fraction >= 0.99, profile.unattributed_by_op


def test_transformer_call_counts_equal_its_structure(profile: TraceProfile) -> None:
    """Every module of the transformer's tree runs once per forward: its range count is the forwards."""
    tree, _ = _dit()
    timed = {t.module_id: t.calls for t in profile.modules if t.module_id.startswith("diffusion") and t.calls}
    assert set(timed) <= set(tree.nodes)
    assert len(timed) > 40
    assert set(timed.values()) == {FORWARDS}
    assert timed["diffusion.blocks.1.ffn.0"] == FORWARDS
    assert "diffusion.blocks" not in timed  # a ModuleList never runs


def test_vae_decoder_call_counts_equal_its_chunks(profile: TraceProfile) -> None:
    """The decode runs once, its post-quant convolution once, every decoder module once per latent frame
    (a chunk), and the resample time convolutions in every chunk but the first (its cache is 'Rep')."""
    tree, workload = _vae()
    chunks = (VAE_FRAMES - 1) // 4 + 1
    timed = {t.module_id: t.calls for t in profile.modules if t.module_id.startswith("vae") and t.calls}
    expected = {}
    for module_id in timed:
        if module_id in ("vae", "vae.conv2"):
            expected[module_id] = 1
        elif module_id.endswith(".time_conv"):
            expected[module_id] = chunks - 1
        else:
            expected[module_id] = chunks
    assert timed == expected
    assert sum(1 for m in timed if m.endswith(".time_conv")) == 2
    # ids the declarations leave out are Dropout(0) (residual.5) and identity shortcuts: no FLOPs
    assert {m.rsplit(".", 1)[-1] for m in set(timed) - set(tree.nodes)} <= {"shortcut", "5"}
    assert _exact(tree, workload, "vae.decoder", "calls") == 1  # one chunked pass per video


@pytest.mark.parametrize(("stage", "build", "runs"), [("diffusion", _dit, FORWARDS), ("vae", _vae, 1)])
def test_recorded_shapes_give_the_analytic_flops(
    profile: TraceProfile, stage: str, build: object, runs: int
) -> None:
    """The matmul, attention and convolution shapes of the trace give every module's analytic FLOPs."""
    tree, workload = build()  # type: ignore[operator]
    compared = 0
    for timing in profile.modules:
        if timing.module_id.split(".")[0] == stage and timing.module_id in tree.nodes:
            expected = runs * _exact(tree, workload, timing.module_id, "flops")
            assert timing.total_flops == expected, timing.module_id
            compared += 1
    assert compared > 30
    assert profile.module(stage).total_flops > 0


def test_module_ids_follow_the_official_names() -> None:
    """diffusers names map to official ids; unmapped wrappers (condition_embedder, dropout) get none."""
    from llm_perf_opt.reference.dit import build_diffusers_dit

    ids = module_ids(build_diffusers_dit(SMALL_DIT, torch.float32))
    assert ids[""] == "diffusion"
    assert ids["blocks.1.attn1.to_out.0"] == "diffusion.blocks.1.self_attn.o"
    assert ids["blocks.0.norm2"] == "diffusion.blocks.0.norm3"
    assert ids["condition_embedder.time_proj"] == "diffusion.time_projection.1"
    assert "condition_embedder" not in ids
    assert "blocks.0.ffn.net.1" not in ids


def test_leaving_the_block_restores_every_method() -> None:
    """After the with block no module carries a wrapper and the output is unchanged."""
    linear = torch.nn.Linear(4, 4)
    model = torch.nn.Sequential(linear)
    with pytest.raises(LlmPerfOptError, match="model: cannot name the modules of a Sequential; accepted"):
        annotate(model)

    class WanModel(torch.nn.Module):
        """Stands for the official class: its names already are the official ones."""

        def __init__(self) -> None:
            super().__init__()
            self.head = torch.nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(x)

    official = WanModel()
    with annotate(official, nvtx=False) as annotation:
        assert annotation.ids == {"": "diffusion", "head": "diffusion.head"}
        assert "forward" in vars(official.head)
        with torch.profiler.profile() as prof:
            official(torch.ones(1, 4))
    assert "forward" not in vars(official.head) and "forward" not in vars(official)
    names = {event.name for event in prof.events()}
    assert {"diffusion", "diffusion.head"} <= names


def test_text_and_image_encoders_are_annotated(tmp_path: Path) -> None:
    """Small umT5 and CLIP encoders: all op time lands on ids, CLIP's q/k/v each open ``to_qkv``."""
    from torch.profiler import ProfilerActivity
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    text = UMT5EncoderModel(
        UMT5Config(
            vocab_size=64,
            d_model=16,
            d_kv=4,
            d_ff=32,
            num_layers=2,
            num_heads=4,
            feed_forward_proj="gated-gelu",
        )
    ).eval()
    image = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=28,
            patch_size=14,
        )
    ).eval()
    # the inputs are made, and each model run once, before profiling: only model work is traced
    input_ids, pixel_values = torch.randint(0, 64, (1, 12)), torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        text(input_ids=input_ids)
        image(pixel_values=pixel_values)
    with (
        annotate(text),
        annotate(image),
        torch.profiler.profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof,
        torch.no_grad(),
    ):
        text(input_ids=input_ids)
        image(pixel_values=pixel_values)
    prof.export_chrome_trace(str(tmp_path / "encoders.json"))
    profile = import_trace(tmp_path / "encoders.json")
    assert profile.attributed_fraction >= 0.99, profile.unattributed_by_op
    assert profile.module("text_encoder.blocks.1.ffn.gate.0").calls == 1
    assert profile.module("text_encoder.blocks.0.attn").total_flops > 0
    assert profile.module("image_encoder.transformer.1.attn.to_qkv").calls == 3
    qkv = profile.module("image_encoder.transformer.0.attn.to_qkv").total_flops
    assert qkv == 3 * 2 * 5 * 16 * 16  # q, k and v: [5 tokens, 16] @ [16, 16] each
