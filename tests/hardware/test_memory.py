"""Memory: exact weights at any dtype, KV cache, activation estimates, and memory per GPU."""

from __future__ import annotations

import pytest
import sympy

from llm_perf_opt.hardware.memory import (
    activation_peak,
    dit_activation_peak,
    dit_memory_per_device,
    kv_cache_bytes,
    weight_bytes,
    weight_bytes_by_stage,
)
from llm_perf_opt.hardware.parallel import Parallelism
from llm_perf_opt.hardware.roofline import compile_seconds
from llm_perf_opt.symbolic.dtypes import BF16, FP4, FP8, FP32
from llm_perf_opt.symbolic.module import Module, build_tree
from llm_perf_opt.symbolic.primitives import add, mm
from llm_perf_opt.symbolic.symbols import B, Workload
from llm_perf_opt.wan2_1.evaluate import dit_tree
from llm_perf_opt.wan2_1.implementation import DIFFUSERS, OFFICIAL
from llm_perf_opt.wan2_1.variants import get_variant

P720 = Workload(batch=1, frames=81, height=720, width=1280, steps=1, text_len=512)

# parameters of T2V-14B and T2V-1.3B (matched by the DiT tests against the reference)
PARAMS_14B = 14_288_491_584
PARAMS_1_3B = 1_418_996_800


def _bytes(expr: sympy.Expr) -> float:
    (value,) = compile_seconds((expr,))(*P720.values())
    return float(value)


def test_weights_are_exact_from_parameters_and_dtype() -> None:
    """Weight bytes are params × bytes per element: fp32 officially, any dtype on request."""
    tree = dit_tree(get_variant("t2v-14b"), OFFICIAL)
    assert weight_bytes(tree) == PARAMS_14B * 4 == 57_153_966_336
    assert weight_bytes(tree, dtype=BF16) == PARAMS_14B * 2
    assert weight_bytes(tree, dtype=FP8) == PARAMS_14B
    assert weight_bytes(tree, dtype=FP4) == PARAMS_14B // 2
    assert weight_bytes_by_stage(tree) == {"diffusion": PARAMS_14B * 4}


def test_diffusers_holds_most_weights_in_bf16() -> None:
    """Diffusers keeps the _keep_in_fp32_modules in fp32, the rest in bf16: a little above params × 2."""
    tree = dit_tree(get_variant("t2v-1.3b"), DIFFUSERS)
    assert PARAMS_1_3B * 2 < weight_bytes(tree) < PARAMS_1_3B * 2.1


def test_no_kv_cache() -> None:
    """The DiT keeps no key/value cache across forwards."""
    assert kv_cache_bytes(dit_tree(get_variant("t2v-14b"), OFFICIAL)) == 0


def test_activation_peak_is_the_largest_working_set() -> None:
    """A toy: the peak is the larger of the two ops' inputs plus outputs."""
    ops = (mm(64 * B, 128, 256, dtype=BF16), add(1000 * B, dtype=FP32))
    tree = build_tree(Module(name="toy", class_name="Toy", stage="other", ops=ops), "toy")
    # mm: reads (64·128 + 128·256)·2 = 81,920, writes 64·256·2 = 32,768 → 114,688
    # add: reads 2·1000·4 = 8,000, writes 4,000 → 12,000
    assert activation_peak(tree)["toy"].subs(B, 1) == 114_688
    declared = Module(name="toy", class_name="Toy", stage="other", ops=ops)
    assert activation_peak(tree, declared)["toy"].subs(B, 1) == 114_688


def test_op_by_op_peak_is_at_most_the_grouped_one() -> None:
    """Counting op by op never exceeds counting whole op-kind groups."""
    from llm_perf_opt.wan2_1.dit import declare_dit

    variant = get_variant("t2v-1.3b")
    tree = dit_tree(variant, OFFICIAL)
    grouped = _bytes(activation_peak(tree)["diffusion"])
    per_op = _bytes(activation_peak(tree, declare_dit(variant, OFFICIAL))["diffusion"])
    assert 0 < per_op <= grouped


def test_official_14b_single_gpu_memory_is_near_the_published_peak() -> None:
    """Weights plus the activation estimate of T2V-14B at 720p on one GPU: near C1's 69.1 GB."""
    memory = dit_memory_per_device(get_variant("t2v-14b"), OFFICIAL).evaluate_point(P720)
    assert memory["weights"] == 57_153_966_336
    # the transformer alone, excluding allocator slack and the other stages
    assert 60e9 < memory["total"] < 75e9


@pytest.mark.parametrize(
    ("variant", "layouts"),
    [
        ("t2v-14b", [(1, 1, False), (2, 1, True), (4, 1, True), (8, 1, True)]),
        ("t2v-1.3b", [(1, 1, False), (2, 1, True), (4, 1, True), (1, 8, True)]),
    ],
)
def test_memory_per_gpu_falls_with_more_gpus(variant: str, layouts: list[tuple[int, int, bool]]) -> None:
    """Sharded weights and split activations: every GPU holds less as GPUs are added."""
    totals = []
    for ulysses, ring, fsdp in layouts:
        parallelism = Parallelism(ulysses, ring, fsdp)
        memory = dit_memory_per_device(get_variant(variant), OFFICIAL, parallelism)
        if fsdp:
            single = weight_bytes(dit_tree(get_variant(variant), OFFICIAL))
            assert memory.weights == -(-single // parallelism.world_size)
            assert memory.gathered > 0
        totals.append(memory.evaluate_point(P720)["total"])
    assert totals == sorted(totals, reverse=True) and len(set(totals)) == len(totals)


def test_activations_per_rank_shrink_with_the_sequence_split() -> None:
    """Per-rank activations at P = 4 are about a quarter of one GPU's."""
    variant = get_variant("t2v-14b")
    one = _bytes(dit_activation_peak(variant, OFFICIAL))
    four = _bytes(dit_activation_peak(variant, OFFICIAL, Parallelism(4, 1)))
    assert one / 4 <= four <= one / 4 * 1.1


# ─── the whole run ──────────────────────────────────────────────────────────────────────────────


def _run_peak(record_id: str, gpus: int) -> dict[str, float]:
    from llm_perf_opt.hardware.calibration import PIPELINE_RECORDS, record_config
    from llm_perf_opt.hardware.memory import run_memory

    record = next(r for r in PIPELINE_RECORDS if r.id == record_id)
    workload = Workload(
        batch=1,
        frames=record.frames,
        height=record.height,
        width=record.width,
        steps=record.steps,
        text_len=512,
    )
    return run_memory(get_variant(record.variant), OFFICIAL, record_config(record, gpus)).evaluate_point(
        workload
    )


def test_run_parts_are_exact_weights() -> None:
    """C1 on one GPU holds the fp32 transformer (14,288,491,584 × 4 B), the bf16 umT5
    (5,680,910,336 × 2 B) and the fp32 VAE (126,892,531 × 4 B) while umT5 runs: its peak phase."""
    figures = _run_peak("C1", 1)
    assert figures["diffusion_weights"] == 57_153_966_336
    assert figures["text_encoder_weights"] == 11_361_820_672
    assert figures["vae_weights"] == 507_570_124
    weights = 57_153_966_336 + 11_361_820_672 + 507_570_124
    assert figures["phase.text_encoder"] == pytest.approx(weights + figures["text_encoder_activations"])
    assert figures["peak"] == figures["phase.text_encoder"]


@pytest.mark.parametrize(
    ("record_id", "published"),
    [("C1", (69.1, 53.9, 37.9, 29.9)), ("C2", (76.7, 59.8, 41.9, 32.9)), ("C3", (8.19, 18.1, 14.1, 12.2))],
)
def test_run_peaks_are_near_the_published_ones(record_id: str, published: tuple[float, ...]) -> None:
    """The predicted peak per GPU of every C1–C3 column is within 12% of the README's figure, and
    falls with more GPUs where the published one does."""
    peaks = [_run_peak(record_id, gpus)["peak"] / 1e9 for gpus in (1, 2, 4, 8)]
    for predicted, measured in zip(peaks, published, strict=True):
        assert predicted == pytest.approx(measured, rel=0.12)
    assert peaks[1:] == sorted(peaks[1:], reverse=True)


def test_offload_and_the_cpu_text_encoder_lower_the_peak() -> None:
    """Offload frees the transformer and umT5 before the decode; umT5 on the CPU frees the GPU of its
    weights."""
    from llm_perf_opt.hardware.accelerators import get_accelerator
    from llm_perf_opt.hardware.memory import run_memory
    from llm_perf_opt.hardware.run import run_config

    variant = get_variant("t2v-1.3b")
    device = get_accelerator("rtx4090")
    workload = Workload(batch=1, frames=81, height=480, width=832, steps=50, text_len=512)

    def figures(**options: bool) -> dict[str, float]:
        config = run_config(variant.num_heads, device, **options)  # type: ignore[arg-type]
        return run_memory(variant, OFFICIAL, config).evaluate_point(workload)

    offloaded, kept = figures(offload=True), figures(offload=False)
    assert offloaded["phase.vae_decode"] < kept["phase.vae_decode"]
    # the fp32 transformer and the bf16 umT5 (5,680,910,336 × 2 B) stay without offload
    assert kept["phase.vae_decode"] - offloaded["phase.vae_decode"] == 4 * PARAMS_1_3B + 11_361_820_672
    on_cpu = figures(offload=True, t5_cpu=True)
    assert on_cpu["text_encoder_weights"] == 0
    assert on_cpu["phase.text_encoder"] < offloaded["phase.text_encoder"] - 11e9
