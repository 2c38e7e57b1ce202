"""The Wan2.2 family on devices: the README's single-GPU commands fit where the README says, the
published peak memory and times are reproduced, the expert switch is priced, and bad setups are errors."""

from __future__ import annotations

import pytest

from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.value import Parallelism
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import FAMILIES, build_deployment, family_of
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.implementation import OFFICIAL
from llm_perf_opt.wan2_2.run import CONVERTED, WAN2_2, WAN2_2_A14B

A14B_720P = Workload(batch=1, frames=81, height=720, width=1280, steps=40, text_len=512)
A14B_480P = Workload(batch=1, frames=81, height=480, width=832, steps=40, text_len=512)
TI2V_720P = Workload(batch=1, frames=121, height=704, width=1280, steps=50, text_len=512)
OFFLOAD_CONVERT = {"offload": "model", "convert_model_dtype": True}

# The README's single-GPU commands (Wan-Video/Wan2.2 README.md), the device class the README names,
# what the README says of them, and the predicted peak per GPU in GB (pinned).
README_COMMANDS = [
    # --task t2v-A14B --size 1280*720 --offload_model True --convert_model_dtype: "at least 80GB VRAM"
    ("t2v-a14b", "h100-sxm", OFFLOAD_CONVERT, A14B_720P, True, 58.585),
    # --task i2v-A14B --size 1280*720 --offload_model True --convert_model_dtype: "at least 80GB VRAM"
    ("i2v-a14b", "h100-sxm", OFFLOAD_CONVERT, A14B_720P, True, 58.586),
    # --task ti2v-5B --size 1280*704 --offload_model True --convert_model_dtype --t5_cpu: "at least
    # 24GB VRAM (e.g, RTX 4090 GPU)"
    ("ti2v-5b", "rtx4090", {**OFFLOAD_CONVERT, "t5_cpu": True}, TI2V_720P, True, 21.493),
    # "with at least 80GB VRAM, you can remove the --offload_model True, --convert_model_dtype and
    # --t5_cpu options"
    ("ti2v-5b", "h100-sxm", {"offload": "none"}, TI2V_720P, True, 52.854),
    # ... and, by the same sentence, a 24 GB card needs them
    ("ti2v-5b", "rtx4090", {"offload": "none"}, TI2V_720P, False, 52.854),
]


def _values(variant: str, device: str, options: dict[str, object], workload: Workload) -> dict[str, float]:
    deployment = build_deployment(variant, accelerator=device, **options)
    return run_model(deployment).evaluate_point(workload)


@pytest.mark.parametrize(("variant", "device", "options", "workload", "fits", "peak_gb"), README_COMMANDS)
def test_the_readme_single_gpu_commands_fit_where_the_readme_says(
    variant: str, device: str, options: dict[str, object], workload: Workload, fits: bool, peak_gb: float
) -> None:
    """Each README single-GPU command's predicted peak per GPU is pinned and fits the card the README
    names exactly when the README says it does."""
    deployment = build_deployment(variant, accelerator=device, **options)
    values = run_model(deployment).evaluate_point(workload)
    assert values["peak_memory"] / 1e9 == pytest.approx(peak_gb, abs=0.001)
    assert (values["peak_memory"] <= deployment.accelerator.memory_bytes) is fits


# Wan2.2 README, "Computational Efficiency" table (assets/comp_effic.png): time (s) / peak memory
# (GB) of T2V-A14B; single GPU --offload_model True --convert_model_dtype, 8 GPUs --ulysses_size 8
# --dit_fsdp --t5_fsdp; FlashAttention3 on Hopper.
PUBLISHED = [
    ("h100-sxm", 1, A14B_720P, 1041.5, 59.8),
    ("h100-sxm", 1, A14B_480P, 326.9, 41.3),
    ("h100-sxm", 8, A14B_720P, 155.1, 37.1),
    ("a100", 1, A14B_720P, 2735.7, 59.8),
]


@pytest.mark.parametrize(("device", "gpus", "workload", "seconds", "peak_gb"), PUBLISHED)
def test_published_a14b_runs_are_reproduced(
    device: str, gpus: int, workload: Workload, seconds: float, peak_gb: float
) -> None:
    """T2V-A14B's published times are met within 15 % and its peak memory within 2 GB (never fitted to)."""
    options: dict[str, object] = OFFLOAD_CONVERT if gpus == 1 else {}
    kernel = "fa3" if device.startswith("h100") else "fa2"
    deployment = build_deployment(
        "t2v-a14b", accelerator=device, gpus=gpus, attention_kernel=kernel, **options
    )
    values = run_model(deployment).evaluate_point(workload)
    assert values["total"] == pytest.approx(seconds, rel=0.15)
    assert values["peak_memory"] / 1e9 == pytest.approx(peak_gb, abs=2.0)


def test_the_expert_switch_is_two_expert_copies_over_the_host_link() -> None:
    """With offload the boundary moves one bf16 expert out and the other in (2 × 28.58 GB), the first
    expert moves in before its first step and the last one out after sampling; with one step the
    low-noise expert never runs and there is no switch (its stage is the final copy out alone)."""
    deployment = build_deployment("t2v-a14b", accelerator="h100-sxm", **OFFLOAD_CONVERT)
    model = run_model(deployment)
    expert = 14_288_491_584 * 2  # parameters per expert (docs/pipeline.md) × bf16
    link = deployment.accelerator.host_link_gbps_per_direction * 1e9 * deployment.factors["host_link"]
    values = model.evaluate_point(A14B_720P)
    assert values["load.diffusion.expert_switch"] == pytest.approx(2 * expert / link, rel=1e-9)
    assert values["load.diffusion.to_gpu"] == pytest.approx(expert / link, rel=1e-9)
    assert values["load.diffusion.to_cpu"] == pytest.approx(expert / link, rel=1e-9)
    one_step = model.evaluate_point(
        Workload(batch=1, frames=81, height=720, width=1280, steps=1, text_len=512)
    )
    assert one_step["load.diffusion.expert_switch"] == 0
    assert one_step["stage.low_noise_model"] == pytest.approx(one_step["load.diffusion.to_cpu"], rel=1e-12)


def test_a14b_stages_split_by_expert_and_add_up() -> None:
    """T2V-A14B's 40 default steps run 26 on the high-noise expert and 14 on the low-noise one, so
    their compute is 26 : 14, and the stages add up to the whole run."""
    deployment = build_deployment("t2v-a14b", accelerator="h100-sxm", gpus=8)
    values = run_model(deployment).evaluate_point(A14B_720P)
    stages = {name: values[f"stage.{name}"] for name in deployment.family.stages}
    assert sum(stages.values()) == pytest.approx(values["total"], rel=1e-12)
    assert stages["high_noise_model"] / stages["low_noise_model"] == pytest.approx(26 / 14, rel=1e-9)


def test_both_experts_stay_resident_without_offload() -> None:
    """Without offload on several GPUs both experts' FSDP shards are held (fp32: 14.29e9 × 4 / 8 bytes
    each); on one GPU with offload only the active one is."""
    several = build_deployment("t2v-a14b", accelerator="h100-sxm", gpus=8)
    values = run_model(several).evaluate_point(A14B_720P)
    shard = -(-14_288_491_584 * 4 // 8)
    assert values["memory.high_noise_model_weights"] == values["memory.low_noise_model_weights"] == shard
    one = build_deployment("t2v-a14b", accelerator="h100-sxm", **OFFLOAD_CONVERT)
    single = run_model(one).evaluate_point(A14B_720P)
    assert single["phase.sampling"] - single["memory.diffusion_activations"] == pytest.approx(
        single["memory.vae_weights"] + 14_288_491_584 * 2, rel=1e-12
    )


def test_convert_model_dtype_halves_the_experts_and_keeps_the_flops() -> None:
    """--convert_model_dtype holds the transformer in bf16 (half the fp32 bytes) without changing a FLOP."""
    plain = build_deployment("ti2v-5b", accelerator="h100-sxm")
    converted = build_deployment("ti2v-5b", accelerator="h100-sxm", convert_model_dtype=True)
    assert plain.implementation is OFFICIAL and converted.implementation is CONVERTED
    assert "--convert_model_dtype" in converted.flags
    trees = [d.family.pipeline_tree(d) for d in (plain, converted)]
    assert trees[0]["diffusion"].aggregate.weight_bytes == 2 * trees[1]["diffusion"].aggregate.weight_bytes
    assert trees[0].root.aggregate.flops == trees[1].root.aggregate.flops


def test_families_are_registered() -> None:
    """build_deployment and family_of find the Wan2.2 variants by name or model id."""
    assert WAN2_2 in FAMILIES and WAN2_2_A14B in FAMILIES
    assert family_of("T2V-A14B") is WAN2_2_A14B
    assert family_of("wan2.2-ti2v-5b") is WAN2_2
    assert WAN2_2.size_multiple == 32 and WAN2_2_A14B.size_multiple == 16
    assert build_deployment("I2V-A14B").family is WAN2_2_A14B


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gpus": 4, "parallelism": Parallelism(ring=4)}, "ring: Wan2.2's generate.py has no ring"),
        ({"gpus": 3}, "ulysses: 40 attention heads cannot be split 3 ways"),
        ({"gpus": 8, "convert_model_dtype": True}, "converts only unsharded"),
        ({"implementation": "diffusers", "convert_model_dtype": True}, "accepted: official"),
        ({"convert_model_dtype": "yes"}, "convert_model_dtype: must be true or false"),
        ({"gpus": 2, "offload": "group"}, "offload: group offloading streams one GPU"),
    ],
)
def test_bad_setups_are_one_clear_error(options: dict[str, object], message: str) -> None:
    """Setups the official code rejects (or would silently ignore) are one error naming the field."""
    with pytest.raises(LlmPerfOptError, match=message):
        build_deployment("t2v-a14b", **options)


def test_an_unknown_variant_lists_every_family() -> None:
    """An unknown variant names the known ones of both families."""
    with pytest.raises(LlmPerfOptError, match=r"unknown variant 'x'.*t2v-14b.*t2v-a14b"):
        build_deployment("x")


def test_the_ti2v_image_run_encodes_its_image_and_matches_the_published_run() -> None:
    """TI2V-5B with --image encodes one frame per video (a vae_encode stage and phase) and meets the published
    RTX 4090 image-to-video run (524.8 s, 22.8 GB) within 10 % and 3 GB."""
    deployment = build_deployment(
        "ti2v-5b", accelerator="rtx4090", image=True, t5_cpu=True, **OFFLOAD_CONVERT
    )
    assert "--image" in deployment.flags and deployment.family.image
    tree = deployment.family.pipeline_tree(deployment)
    assert tree["vae.encoder"].calls != 0  # B encodes (one per video)
    values = run_model(deployment).evaluate_point(TI2V_720P)
    assert values["stage.vae_encode"] > 0 and values["phase.vae_encode"] > 0
    assert values["total"] == pytest.approx(524.8, rel=0.10)
    assert values["peak_memory"] / 1e9 == pytest.approx(22.8, abs=3.0)
    with pytest.raises(LlmPerfOptError, match="image: only ti2v-5b takes an optional input image"):
        build_deployment("t2v-a14b", image=True)


def test_an_option_of_another_family_is_one_clear_error() -> None:
    """Wan2.2's --convert_model_dtype asked of a Wan2.1 variant names the option and the family."""
    with pytest.raises(LlmPerfOptError, match=r"convert_model_dtype: not an option of the wan2\.1 family"):
        build_deployment("t2v-14b", convert_model_dtype=True)
    with pytest.raises(LlmPerfOptError, match=r"image: not an option of the wan2\.1-vace family"):
        build_deployment("vace-1.3b", image=True)
