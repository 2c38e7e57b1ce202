"""The whole run: stages, offload and CPU effects, multi-GPU, per-module times, and bad setups."""

from __future__ import annotations

import numpy as np
import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import get_accelerator
from llm_perf_opt.hardware.calibration import PIPELINE_RECORDS, record_config, record_run
from llm_perf_opt.hardware.efficiency import EFFICIENCIES
from llm_perf_opt.hardware.host import HostCpu
from llm_perf_opt.hardware.parallel import Parallelism, dit_parallel_time
from llm_perf_opt.hardware.pipeline import (
    STAGES,
    module_times,
    pipeline_time,
    pipeline_tree,
    tree_time,
)
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.implementation import DIFFUSERS, OFFICIAL
from llm_perf_opt.wan2_1.variants import get_variant

P720 = Workload(batch=1, frames=81, height=720, width=1280, steps=50, text_len=512)
P480 = Workload(batch=1, frames=81, height=480, width=832, steps=50, text_len=512)
I2V720 = Workload(batch=1, frames=81, height=720, width=1280, steps=40, text_len=512)


def _record(record_id: str) -> object:
    return next(record for record in PIPELINE_RECORDS if record.id == record_id)


@pytest.mark.parametrize(("record_id", "gpus"), [("C1", 1), ("C2", 1), ("C2", 4), ("C3", 1), ("C3", 8)])
def test_symbolic_and_numeric_runs_agree(record_id: str, gpus: int) -> None:
    """The compiled expressions and the fit's numeric evaluation give the same stages and total."""
    record = next(r for r in PIPELINE_RECORDS if r.id == record_id)
    tree = pipeline_tree(get_variant(record.variant), OFFICIAL, record.guidance)
    run = tree_time(tree, get_accelerator(record.accelerator), record_config(record, gpus))
    workload = Workload(
        batch=1,
        frames=record.frames,
        height=record.height,
        width=record.width,
        steps=record.steps,
        text_len=512,
    )
    symbolic = run.evaluate_point(workload)
    numeric = record_run(record, gpus).seconds(EFFICIENCIES)
    for name, value in numeric.items():
        assert symbolic[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_stages_add_up_to_the_total() -> None:
    """The six stages of an image-to-video run add up to its total."""
    figures = pipeline_time("i2v-14b-720p", "official", "h100").evaluate_point(I2V720)
    assert sum(figures[stage] for stage in STAGES) == pytest.approx(figures["total"], rel=1e-12)
    assert figures["vae_encode"] > 0 and figures["image_encoder"] > 0


@pytest.mark.parametrize(("variant", "device", "gpus"), [("t2v-14b", "h100", 8), ("t2v-1.3b", "rtx4090", 8)])
def test_the_loop_is_two_forwards_per_step_of_the_parallel_transformer(
    variant: str, device: str, gpus: int
) -> None:
    """Without offload, the diffusion stage is 2·S per-rank forwards of :func:`dit_parallel_time`."""
    record = get_variant(variant)
    run = pipeline_time(record, "official", device, gpus=gpus)
    workload = P720 if variant == "t2v-14b" else P480
    forward = dit_parallel_time(
        record, OFFICIAL, get_accelerator(device), run.config.parallelism
    ).evaluate_point(
        Workload(batch=1, frames=81, height=workload.height, width=workload.width, steps=1, text_len=512)
    )
    assert run.evaluate_point(workload)["diffusion"] == pytest.approx(100 * forward["forward"], rel=1e-9)


def test_every_parent_is_its_own_time_plus_its_children() -> None:
    """In an offloaded image-to-video run (CPU scheduler, copies) every module's seconds are its own
    plus its children's, and the root's are the total."""
    variant = get_variant("i2v-14b-720p")
    tree = pipeline_tree(variant, OFFICIAL, True)
    times = module_times(tree, "h100", I2V720, variant=variant, implementation=OFFICIAL)
    for node in tree:
        children = sum(times.seconds[child] for child in node.children)
        assert times.own_seconds[node.id] + children == pytest.approx(
            times.seconds[node.id], rel=1e-9, abs=1e-12
        )
        assert times.seconds[node.id] >= 0
    assert times.total_seconds == pytest.approx(sum(times.stages.values()), rel=1e-12)
    assert times.seconds["diffusion"] / times.total_seconds > 0.9
    assert times.peak_memory_bytes > 70e9


def test_multi_gpu_communication_sits_on_the_modules_that_cause_it() -> None:
    """Ulysses all-to-alls land on each self-attention's own time; the total still adds up."""
    variant = get_variant("t2v-14b")
    tree = pipeline_tree(variant, OFFICIAL, True)
    alone = module_times(tree, "h100", P720, variant=variant, implementation=OFFICIAL, gpus=8)
    for node in tree:
        children = sum(alone.seconds[child] for child in node.children)
        assert alone.own_seconds[node.id] + children == pytest.approx(
            alone.seconds[node.id], rel=1e-9, abs=1e-12
        )
    run = pipeline_time(variant, "official", "h100", gpus=8)
    all_to_all = run.evaluate_point(P720)["diffusion.ulysses_all_to_all"]
    # 40 layers × 100 forwards × 4 all-to-alls × 7/8 of [9450, 5120] bf16 = 1.355 TB at 0.83 × 450 GB/s
    assert all_to_all == pytest.approx(40 * 100 * 4 * 7 / 8 * 9450 * 5120 * 2 / (0.83 * 450e9), rel=1e-6)


def test_offload_copies_cost_time_in_the_expected_places() -> None:
    """With ``--offload_model`` an I2V run copies umT5 out, the transformer in and out, and four
    latents per step, and runs the scheduler on the CPU: it takes longer than without."""
    with_offload = pipeline_time("i2v-14b-720p", "official", "h100", offload=True)
    without = pipeline_time("i2v-14b-720p", "official", "h100", offload=False)
    on, off = with_offload.evaluate_point(I2V720), without.evaluate_point(I2V720)
    assert on["total"] > off["total"]
    assert on["text_encoder"] > off["text_encoder"]
    assert on["scheduler"] > off["scheduler"]
    # the fp32 transformer (16,394,878,784 params × 4 B) moves in before the loop either way
    # (init_on_cpu on one GPU), at 0.2 … 0.8 of 64 GB/s; with offload it also moves back out
    dit_bytes = 16_394_878_784 * 4
    assert on["diffusion.to_gpu"] == pytest.approx(dit_bytes / (64e9 * 0.8), rel=1e-9)
    assert on["diffusion.to_cpu"] == pytest.approx(on["diffusion.to_gpu"], rel=1e-9)
    assert "diffusion.to_cpu" not in off
    assert on["scheduler.latent_copies"] > 0


def test_umt5_on_the_cpu_runs_at_the_assumed_host_rate() -> None:
    """``--t5_cpu`` prices umT5 at the host's rate: two 512-token runs of ~4.84 TFLOP at 1 TFLOP/s
    take ~10 s, far above the GPU (whose 11.4 GB of weights cross PCIe in and out with offload),
    and a faster host takes proportionally less."""
    on_cpu = pipeline_time("t2v-1.3b", "official", "rtx4090", t5_cpu=True).evaluate_point(P480)
    on_gpu = pipeline_time("t2v-1.3b", "official", "rtx4090").evaluate_point(P480)
    assert 9.5 < on_cpu["text_encoder"] < 11.0
    assert on_gpu["text_encoder"] < on_cpu["text_encoder"] / 2
    fast = HostCpu(name="fast", matmul_flops=4e12, vector_flops=0.8e12, memory_bandwidth=400e9)
    quick = pipeline_time("t2v-1.3b", "official", "rtx4090", t5_cpu=True, host=fast).evaluate_point(P480)
    assert quick["text_encoder"] == pytest.approx(on_cpu["text_encoder"] / 4, rel=0.02)


def test_more_gpus_take_less_time() -> None:
    """A 720p T2V-14B run gets faster with each doubling of H100s (README recipe)."""
    totals = [
        pipeline_time("t2v-14b", "official", "h100", gpus=g).evaluate_point(P720)["total"]
        for g in (1, 2, 4, 8)
    ]
    assert totals == sorted(totals, reverse=True)


def test_time_is_affine_in_steps_and_grows_with_the_video() -> None:
    """Every stage is constant or proportional to the steps; longer and larger videos take longer."""
    run = pipeline_time("t2v-1.3b", "official", "h100")
    steps = [
        run.evaluate_point(Workload(batch=1, frames=81, height=480, width=832, steps=s, text_len=512))[
            "total"
        ]
        for s in (1, 2, 3)
    ]
    assert steps[2] - steps[1] == pytest.approx(steps[1] - steps[0], rel=1e-9)
    grid = run.evaluate(
        Workload(
            batch=1,
            frames=np.array([[5], [41], [81]]),
            height=np.array([[480, 720]]),
            width=np.array([[832, 1280]]),
            steps=50,
            text_len=512,
        )
    )["total"]
    assert (grid[1:] > grid[:-1]).all() and (grid[:, 1] > grid[:, 0]).all()


def test_the_diffusers_profile_is_faster_in_bytes() -> None:
    """The bf16 diffusers profile moves fewer bytes than the official one, so its run is shorter."""
    official = pipeline_time("t2v-14b", "official", "h100").evaluate_point(P720)["total"]
    diffusers = pipeline_time("t2v-14b", DIFFUSERS, "h100").evaluate_point(P720)["total"]
    assert diffusers < official


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gpus": 0}, "gpus: must be an integer ≥ 1"),
        ({"gpus": 4, "parallelism": Parallelism(ulysses=2, fsdp=True)}, "must equal gpus = 4"),
        ({"gpus": 8, "parallelism": Parallelism(ulysses=8)}, "cannot be split 8 ways"),
        ({"t5_fsdp": True}, "t5_fsdp: FSDP needs more than one GPU"),
        ({"gpus": 2, "t5_cpu": True, "t5_fsdp": True}, "t5_cpu: the official umT5 on the CPU only works"),
        ({"attention_kernel": "fa4"}, "attention_kernel: unknown kernel 'fa4'"),
        ({"offload": "yes"}, "offload: must be true or false"),
    ],
)
def test_bad_setups_are_rejected(kwargs: dict[str, object], message: str) -> None:
    """Setups the official code rejects raise errors naming the field, the value and what is accepted."""
    with pytest.raises(LlmPerfOptError, match=message):
        pipeline_time("t2v-1.3b", "official", "h100", **kwargs)  # type: ignore[arg-type]


def test_fa3_is_rejected_off_hopper() -> None:
    """FlashAttention-3 has no factor on an RTX 4090; the error lists the kernels it has."""
    with pytest.raises(LlmPerfOptError, match=r"'fa3' has no efficiency on rtx4090.*sdpa, fa2"):
        pipeline_time("t2v-1.3b", "official", "rtx4090", attention_kernel="fa3")


def test_module_times_checks_its_tree_and_workload() -> None:
    """A tree of another variant or implementation, a non-pipeline tree and a bad workload are errors."""
    variant = get_variant("t2v-1.3b")
    tree = pipeline_tree(variant, OFFICIAL, True)
    with pytest.raises(LlmPerfOptError, match=r"variant: the tree is of task 't2v-1\.3B'"):
        module_times(tree, "h100", P480, variant="t2v-14b", implementation=OFFICIAL)
    with pytest.raises(LlmPerfOptError, match="implementation: the tree's transformer weights"):
        module_times(tree, "h100", P480, variant=variant, implementation=DIFFUSERS)
    from llm_perf_opt.wan2_1.evaluate import dit_tree

    with pytest.raises(LlmPerfOptError, match="tree: expected a pipeline tree"):
        module_times(dit_tree(variant, OFFICIAL), "h100", P480, variant=variant, implementation=OFFICIAL)
    bad = Workload(batch=1, frames=81, height=470, width=832, steps=50, text_len=512)
    with pytest.raises(LlmPerfOptError, match="height: must be a multiple of 16"):
        module_times(tree, "h100", bad, variant=variant, implementation=OFFICIAL)
    with pytest.raises(LlmPerfOptError, match=r"workload\.steps: must be an integer ≥ 1"):
        module_times(
            tree,
            "h100",
            Workload(batch=1, frames=81, height=480, width=832, steps=0, text_len=512),
            variant=variant,
            implementation=OFFICIAL,
        )
