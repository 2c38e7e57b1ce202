"""VACE on devices under Wan2.1's run rules: the VACE tree is timed and sized, its reference frames
count, its blocks carry the sequence-parallel collectives, and FSDP is a clear error."""

from __future__ import annotations

import pytest

from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.value import Parallelism
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import build_deployment, family_of
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.run import WAN2_1
from llm_perf_opt.wan2_1.vace_run import VACE

VACE_480P = Workload(batch=1, frames=81, height=480, width=832, steps=50, text_len=512)


def test_vace_runs_under_wan2_1_rules_on_its_own_tree() -> None:
    """VACE-1.3B's deployment times the VACE tree (its control-video encodes are a stage) with
    Wan2.1's offload copies, and its stages add up to the run."""
    assert family_of("vace-1.3b") is VACE
    deployment = build_deployment("vace-1.3b", accelerator="rtx4090")
    tree = deployment.family.pipeline_tree(deployment)
    assert tree["diffusion"].class_name == "VaceWanModel"
    values = run_model(deployment).evaluate_point(VACE_480P)
    stages = [values[f"stage.{name}"] for name in VACE.stages]
    assert sum(stages) == pytest.approx(values["total"], rel=1e-12)
    assert values["stage.vae_encode"] > 0
    assert values["load.diffusion.to_cpu"] > 0
    assert "2 reference images" in deployment.flags


def test_reference_images_lengthen_the_run() -> None:
    """Each reference image puts one more latent frame in front: more transformer time."""
    times = [
        run_model(build_deployment("vace-1.3b", accelerator="h100-sxm", reference_images=r)).evaluate_point(
            VACE_480P
        )["stage.diffusion"]
        for r in (0, 2)
    ]
    assert times[1] > times[0]


def test_every_vace_self_attention_carries_the_ulysses_all_to_alls() -> None:
    """Under Ulysses the all-to-alls are on every self-attention, the VACE blocks' included (30 main
    + 15 VACE blocks for 1.3B), each the same bytes."""
    deployment = build_deployment(
        "vace-1.3b", accelerator="h100-sxm", gpus=4, parallelism=Parallelism(ulysses=4)
    )
    tree = deployment.family.pipeline_tree(deployment)
    schedule = deployment.family.schedule(tree, deployment)
    carrying = [
        module_id
        for module_id, rule in schedule.rules.items()
        if any(load.name == "diffusion.ulysses_all_to_all" for load in rule.added)
    ]
    assert len(carrying) == 30 + 15
    assert any(module_id.startswith("diffusion.vace_blocks.") for module_id in carrying)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gpus": 8}, "fsdp: the VACE transformer's blocks differ"),
        ({"reference_images": -1}, r"reference_images: must be an integer ≥ 0, got -1"),
        ({"gpus": 5, "parallelism": Parallelism(ulysses=5)}, "ulysses: 12 attention heads cannot be split 5"),
    ],
)
def test_bad_vace_setups_are_one_clear_error(options: dict[str, object], message: str) -> None:
    """FSDP, a negative image count and a head split that does not divide are errors naming the field."""
    with pytest.raises(LlmPerfOptError, match=message):
        build_deployment("vace-1.3b", **options)


def test_wan2_1_is_unchanged_by_the_vace_rules() -> None:
    """A Wan2.1 variant still resolves to the Wan2.1 family."""
    assert family_of("t2v-1.3b") is WAN2_1
