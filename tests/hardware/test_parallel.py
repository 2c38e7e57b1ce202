"""Multi-GPU inference: degrees, padding, collective sizes, per-rank work, and scaling with GPUs."""

from __future__ import annotations

import pytest
import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import get_accelerator
from llm_perf_opt.hardware.parallel import (
    Overlap,
    Parallelism,
    check_parallelism,
    dit_parallel_time,
    dit_sequence_shard,
    fsdp_all_gather_bytes,
    link_for,
    padded_tokens,
    ring_pass_bytes,
    tokens_per_rank,
    ulysses_all_to_all_bytes,
)
from llm_perf_opt.hardware.roofline import time_model
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.evaluate import dit_tree
from llm_perf_opt.wan2_1.geometry import video_tokens
from llm_perf_opt.wan2_1.implementation import OFFICIAL
from llm_perf_opt.wan2_1.variants import get_variant

P720 = Workload(batch=1, frames=81, height=720, width=1280, steps=1, text_len=512)
P480 = Workload(batch=1, frames=81, height=480, width=832, steps=1, text_len=512)


def _at(expr: sympy.Expr, workload: Workload) -> sympy.Expr:
    return sympy.sympify(expr).subs(workload.subs())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ulysses": 0}, r"ulysses: must be an integer ≥ 1, got 0"),
        ({"ring": -2}, r"ring: must be an integer ≥ 1, got -2"),
        ({"ulysses": "2"}, r"ulysses: must be an integer ≥ 1, got '2'"),
        ({"fsdp": 1, "ulysses": 2}, r"fsdp: must be true or false, got 1"),
        ({"fsdp": True}, r"fsdp: FSDP needs more than one GPU"),
    ],
)
def test_bad_degrees_are_rejected(kwargs: dict[str, object], message: str) -> None:
    """Degrees below 1, non-integers and FSDP on one GPU are errors naming the field."""
    with pytest.raises(LlmPerfOptError, match=message):
        Parallelism(**kwargs)  # type: ignore[arg-type]


def test_heads_must_divide_by_the_ulysses_degree() -> None:
    """T2V-1.3B's 12 heads cannot be split 8 ways: the error lists the accepted Ulysses degrees."""
    with pytest.raises(
        LlmPerfOptError,
        match=r"ulysses: 12 attention heads cannot be split 8 ways; "
        r"accepted Ulysses degrees: 1, 2, 3, 4, 6, 12",
    ):
        check_parallelism(Parallelism(ulysses=8), num_heads=12)
    with pytest.raises(LlmPerfOptError, match=r"cannot be split 8 ways"):
        dit_parallel_time(get_variant("t2v-1.3b"), OFFICIAL, get_accelerator("4090"), Parallelism(8, 1, True))
    check_parallelism(Parallelism(ring=8), num_heads=12)


def test_padding() -> None:
    """The sequence is padded to a multiple of U·R; each rank holds ⌈L/P⌉ tokens."""
    # 5 frames at 480×832: 2 latent frames × 30 × 52 = 3120 tokens; P = 7 → ⌈3120/7⌉ = 446 → 3122
    short = Workload(batch=1, frames=5, height=480, width=832, steps=1, text_len=512)
    assert _at(padded_tokens(video_tokens(), Parallelism(7, 1)), short) == 3122
    assert _at(tokens_per_rank(video_tokens(), Parallelism(7, 1)), short) == 446
    # 75600 tokens at 720p divide by 8: no padding
    assert _at(padded_tokens(video_tokens(), Parallelism(2, 4)), P720) == 75600


def test_collective_sizes_by_hand() -> None:
    """All-to-all, ring and FSDP bytes of T2V-14B at 720p on 8 GPUs."""
    tokens, dim = video_tokens(), 5120
    # per-rank tensor [1, 75600/8, 5120] bf16 = 2·9450·5120 = 96,768,000 bytes (the reference's 96.8 MB)
    # four all-to-alls, 7/8 of each leaves the rank: 4·7/8·96,768,000 = 338,688,000
    assert _at(ulysses_all_to_all_bytes(tokens, dim, Parallelism(8, 1)), P720) == 338_688_000
    # ring of 8: 7 rounds of a K and a V block of 96,768,000 bytes = 1,354,752,000
    assert _at(ring_pass_bytes(tokens, dim, Parallelism(1, 8)), P720) == 1_354_752_000
    assert _at(ulysses_all_to_all_bytes(tokens, dim, Parallelism(1, 8)), P720) == 0
    # FSDP: 7/8 of a unit's bf16 parameters arrive at each rank
    assert fsdp_all_gather_bytes(1_000_000, Parallelism(8, 1, True)) == 1_750_000
    assert fsdp_all_gather_bytes(1_000_000, Parallelism(8, 1, False)) == 0


def test_links() -> None:
    """NVLink inside its group, the host link otherwise (no link, or more GPUs than a bridge joins)."""
    h100 = link_for(get_accelerator("h100"), Parallelism(8, 1))
    assert h100.kind == "NVLink4"
    # 450 GB/s per direction · 0.83 (376-380 of 450 measured)
    assert h100.bandwidth == pytest.approx(450e9 * 0.83)
    assert link_for(get_accelerator("h100-pcie"), Parallelism(2, 1)).kind.startswith("NVLink bridge")
    assert link_for(get_accelerator("h100-pcie"), Parallelism(4, 1)).kind == "PCIe Gen5 x16"
    # GeForce cards have no peer-to-peer: PCIe Gen4 x16 through host memory at the fitted 0.2
    assert link_for(get_accelerator("4090"), Parallelism(2, 1)).bandwidth == pytest.approx(32e9 * 0.2)


def test_per_rank_work_divides_token_work_and_keeps_replicated_work() -> None:
    """Per rank: projections and attention FLOPs are 1/P of the whole; the patch embedding is whole."""
    tree = dit_tree(get_variant("t2v-14b"), OFFICIAL)
    shard = dit_sequence_shard(tree, Parallelism(4, 2))
    subs = P720.subs()
    checked = 0
    for module_id in (
        "diffusion.blocks.3.self_attn",
        "diffusion.blocks.3.self_attn.q",
        "diffusion.blocks.3.ffn.0",
    ):
        node = tree[module_id]
        for kind, cost in node.own_breakdown.items():
            if kind[0] in ("addmm", "_scaled_dot_product_flash_attention"):
                whole = int(cost.flops.subs(subs))
                assert shard(node, kind, cost).flops.subs(subs) == sympy.Rational(whole, 8), (module_id, kind)
                checked += 1
    assert checked == 3
    patch = tree["diffusion.patch_embedding"]
    for kind, cost in patch.own_breakdown.items():
        assert shard(patch, kind, cost) is cost
    # the text keys and values of the cross-attention do not depend on the video: unchanged
    text_k = tree["diffusion.blocks.3.cross_attn.k"]
    for kind, cost in text_k.own_breakdown.items():
        assert shard(text_k, kind, cost).flops.subs(subs) == cost.flops.subs(subs)


def test_one_gpu_equals_the_single_device_model() -> None:
    """With P = 1 the parallel model is the plain roofline: no communication."""
    variant = get_variant("t2v-1.3b")
    single = time_model(dit_tree(variant, OFFICIAL), get_accelerator("h100")).evaluate_point(P480)[
        "diffusion"
    ]
    parallel = dit_parallel_time(variant, OFFICIAL, get_accelerator("h100"), Parallelism()).evaluate_point(
        P480
    )
    assert parallel["forward"] == pytest.approx(single, rel=1e-12)
    assert parallel["ulysses_all_to_all"] == parallel["ring_kv"] == parallel["fsdp_all_gather"] == 0


@pytest.mark.parametrize(
    ("variant", "device", "workload", "layouts"),
    [
        ("t2v-14b", "h100", P720, [(1, 1, False), (2, 1, True), (4, 1, True), (8, 1, True)]),
        ("t2v-14b", "h800", P720, [(1, 1, False), (1, 2, True), (2, 2, True), (4, 2, True)]),
        ("t2v-1.3b", "4090", P480, [(1, 1, False), (2, 1, True), (4, 1, True), (1, 8, True)]),
    ],
)
def test_time_per_forward_falls_with_more_gpus(
    variant: str, device: str, workload: Workload, layouts: list[tuple[int, int, bool]]
) -> None:
    """More GPUs: per-rank compute falls about 1/P and the forward, with communication, falls too."""
    times = []
    computes = []
    for ulysses, ring, fsdp in layouts:
        timing = dit_parallel_time(
            get_variant(variant), OFFICIAL, get_accelerator(device), Parallelism(ulysses, ring, fsdp)
        ).evaluate_point(workload)
        times.append(timing["forward"])
        computes.append(timing["compute"])
        assert timing["forward"] >= timing["compute"]
    assert times == sorted(times, reverse=True) and len(set(times)) == len(times)
    world = [u * r for u, r, _ in layouts]
    for compute, gpus in zip(computes, world, strict=True):
        # replicated work (patch embedding, text and time embeddings) keeps it slightly above 1/P
        assert computes[0] / gpus <= compute <= 1.05 * computes[0] / gpus


def test_without_overlap_communication_adds_up() -> None:
    """Turning overlap off never makes a forward faster, and adds the whole ring and FSDP time."""
    args = (get_variant("t2v-1.3b"), OFFICIAL, get_accelerator("4090"), Parallelism(1, 8, True))
    hidden = dit_parallel_time(*args).evaluate_point(P480)
    exposed = dit_parallel_time(*args, overlap=Overlap(False, False)).evaluate_point(P480)
    assert exposed["forward"] >= hidden["forward"]
    assert exposed["forward"] == pytest.approx(
        exposed["compute"] + exposed["ring_kv"] + exposed["fsdp_all_gather"] + exposed["head_all_gather"],
        rel=1e-9,
    )
