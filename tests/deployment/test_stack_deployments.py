"""A stack builds a Deployment; what it changes is priced by the engine; misuse is one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sympy

from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.schedule import fused_kernel
from llm_perf_opt.deployment.stacks import STACK_NAMES
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import build_deployment
from llm_perf_opt.symbolic.cost import Cost
from llm_perf_opt.symbolic.primitives import OpCall
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.wan2_1.run import fusion_chains

SMALL = Workload(batch=1, frames=5, height=240, width=416, steps=2, text_len=512)


def _stage(deployment, name="stage.diffusion", factors=None) -> float:  # type: ignore[no-untyped-def]
    return float(run_model(deployment).evaluate(SMALL, factors, names=(name,))[name])


def test_no_stack_is_the_official_code_as_before() -> None:
    """Without a stack: generate.py's defaults, FA2, eager, named after the implementation."""
    deployment = build_deployment("t2v-1.3b")
    assert (deployment.stack, deployment.attention_kernel, deployment.fused_chains) == ("official", "fa2", ())
    assert (deployment.gemm_precision, deployment.weight_storage, deployment.offload) == (
        "bf16",
        "bf16",
        "model",
    )


@pytest.mark.parametrize("name", STACK_NAMES)
def test_every_preset_builds_on_one_and_eight_h100s(name: str) -> None:
    """Every preset is a valid Deployment on one and eight H100s, recorded in its shape and flags."""
    for gpus in (1, 8):
        deployment = build_deployment("i2v-14b-480p", stack=name, gpus=gpus)
        assert deployment.stack == name
        assert name in deployment.shape
        assert deployment.gpus == deployment.parallelism.world_size == gpus


def test_a_stack_takes_its_choices_and_overrides_replace_them_field_by_field() -> None:
    """LightX2V on Hopper: FA3 and its fused chains; on Ada SageAttention; any field can be overridden."""
    hopper = build_deployment("i2v-14b-480p", stack="lightx2v")
    assert hopper.attention_kernel == "fa3"
    assert hopper.fused_chains == ("modulation", "rmsnorm", "rotary")
    assert hopper.implementation.name == "diffusers"
    assert build_deployment("i2v-14b-480p", stack="lightx2v", accelerator="rtx4090").attention_kernel == (
        "sage-int8-fp16"
    )
    changed = build_deployment(
        "i2v-14b-480p", stack="lightx2v", attention_kernel="sage-int8-fp8", gemm_precision="fp8-per-block"
    )
    assert (changed.attention_kernel, changed.gemm_precision, changed.weight_storage) == (
        "sage-int8-fp8",
        "fp8-per-block",
        "fp8",
    )
    assert "fp8-per-block GEMMs" in changed.flags
    sglang = build_deployment("i2v-14b-480p", stack="sglang-diffusion", gpus=8)
    assert (sglang.parallelism.cfg, sglang.parallelism.sequence_size, sglang.parallelism.fsdp) == (2, 4, True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stack": "tensorrt"}, r"^stack: unknown stack 'tensorrt'; known: official, diffusers"),
        (
            {"stack": "flashdreams", "accelerator": "a100"},
            r"^stack: flashdreams has no attention kernel for a100",
        ),
        ({"accelerator": "a100", "attention_kernel": "fa3"}, r"^attention_kernel: fa3 does not run on a100"),
        ({"attention_kernel": "flash9"}, r"^attention_kernel: unknown kernel 'flash9'; accepted: sdpa"),
        (
            {"accelerator": "a100", "gemm_precision": "fp8-per-tensor"},
            r"^gemm_precision: fp8-per-tensor runs at",
        ),
        ({"accelerator": "h100", "gemm_precision": "nvfp4"}, r"^gemm_precision: nvfp4 runs at the fp4 rate"),
        ({"gemm_precision": "fp7"}, r"^gemm_precision: unknown GEMM precision 'fp7'"),
        ({"weight_storage": "fp2"}, r"^weight_storage: must be one of"),
        ({"fused_chains": ("everything",)}, r"^fused_chains: unknown chain 'everything'"),
        ({"cfg_parallel": True, "guidance": False, "gpus": 2}, r"^cfg_parallel: .*needs guidance"),
        ({"cfg_parallel": True, "gpus": 3}, r"^cfg_parallel: .*got gpus=3"),
        ({"offload": "sequential", "gpus": 2}, r"^offload: sequential offloading streams one GPU's weights"),
        (
            {"fusion": "fused-kernels"},
            r"^fusion: 'fused-kernels' fuses a stack's own chains and needs a stack",
        ),
    ],
)
def test_misuse_is_one_error_naming_the_field(options: dict[str, object], message: str) -> None:
    """Unknown stack, kernel off its family, a precision the device lacks, CFG-parallel misuse."""
    with pytest.raises(LlmPerfOptError, match=message):
        build_deployment("t2v-1.3b", **options)  # type: ignore[arg-type]


def test_a_fused_chain_reads_what_enters_and_writes_what_leaves() -> None:
    """Three ops each reading the one before: intermediates are written and read once, both removed."""
    ops = [
        OpCall("mul", Cost(vector_flops=10, bytes_read=100 + 4, bytes_written=200), "fp32"),
        OpCall("add", Cost(vector_flops=10, bytes_read=200 + 4, bytes_written=200), "fp32"),
        OpCall("_to_copy", Cost(bytes_read=200, bytes_written=100), "bf16"),
    ]
    kernel = fused_kernel(ops)
    assert (kernel.bytes_read, kernel.bytes_written, kernel.vector_flops) == (108, 100, 20)


def test_fusion_finds_the_chains_in_the_declared_ops() -> None:
    """T2V-1.3B (30 blocks): 2 rotated tensors, 2 modulations and 2 gated residuals a block under
    diffusers, whose RMS norms already run as one fused kernel each on CUDA (nothing to fuse); the
    official profile's 4 RMS norms a block (casts around the norm) and its fp64 rope casts."""
    deployment = build_deployment("t2v-1.3b", implementation="diffusers")
    tree = deployment.family.pipeline_tree(deployment)
    counts = {
        chain: len(fusion_chains(tree, (chain,)))
        for chain in ("rmsnorm", "rotary", "modulation", "norm-modulation", "gate-residual")
    }
    rotation = [op.primitive for op in next(n for n in tree if n.class_name == "WanSelfAttention").ops[:8]]
    assert rotation == ["mul", "mul", "sub", "copy_", "mul", "mul", "add", "copy_"]
    assert counts == {
        "rmsnorm": 0,
        "rotary": 60,
        "modulation": 60,
        "norm-modulation": 60,
        "gate-residual": 60,
    }
    official = build_deployment("t2v-1.3b")
    official_tree = official.family.pipeline_tree(official)
    assert len(fusion_chains(official_tree, ("rotary",))) == 60  # the fp64 casts around each rope
    assert len(fusion_chains(official_tree, ("rmsnorm",))) == 120


def test_fusion_only_removes_element_wise_bytes() -> None:
    """Fused chains leave the FLOPs and shorten the transformer's time; none fused is the eager time."""
    eager = build_deployment("t2v-1.3b", implementation="diffusers", offload="none")
    fused = build_deployment(
        "t2v-1.3b", implementation="diffusers", offload="none", fused_chains=("rotary", "norm-modulation")
    )
    assert _stage(fused) < _stage(eager)
    assert _stage(
        build_deployment("t2v-1.3b", implementation="diffusers", offload="none", fused_chains=())
    ) == (_stage(eager))


def test_cfg_parallel_halves_a_ranks_forwards_and_adds_the_exchange() -> None:
    """Two GPUs, CFG parallel: each rank runs half the forwards, plus one latent all-gather per step."""
    one = build_deployment("t2v-1.3b", offload="none")
    two = build_deployment("t2v-1.3b", gpus=2, cfg_parallel=True)
    assert (two.parallelism.cfg, two.parallelism.sequence_size) == (2, 1)
    exchange = _stage(two, "load.diffusion.cfg_all_gather")
    assert _stage(two) == pytest.approx(_stage(one) / 2 + exchange, rel=1e-12)


def test_sequential_offload_copies_the_weights_every_forward() -> None:
    """Sequential CPU offload adds every forward's weight copy and holds no transformer weights."""
    resident = build_deployment("t2v-1.3b", offload="none")
    sequential = build_deployment("t2v-1.3b", offload="sequential")
    copies = _stage(sequential, "load.diffusion.sequential_offload")
    assert _stage(sequential) == pytest.approx(_stage(resident) + copies, rel=1e-12)
    assert _stage(sequential, "memory.diffusion_weights") == 0


def test_fp8_storage_holds_one_byte_per_parameter() -> None:
    """fp8 weights: the transformer's weight memory is its parameter count in bytes."""
    deployment = build_deployment("t2v-1.3b", weight_storage="fp8", offload="none")
    params = deployment.family.pipeline_tree(deployment)["diffusion"].aggregate.params
    assert _stage(deployment, "memory.diffusion_weights") == int(sympy.ceiling(params))


def test_the_framework_factor_divides_the_transformer_stage_only() -> None:
    """A stack's framework efficiency scales the transformer's seconds and nothing else."""
    deployment = build_deployment("t2v-1.3b", stack="xdit")
    base = {"framework": 1.0}
    assert _stage(deployment, factors={"framework": 0.5}) == pytest.approx(
        2 * _stage(deployment, factors=base), rel=1e-12
    )
    assert _stage(deployment, "stage.vae_decode", {"framework": 0.5}) == _stage(
        deployment, "stage.vae_decode", base
    )


def test_the_command_line_takes_a_stack_and_overrides_it(capsys: pytest.CaptureFixture[str]) -> None:
    """``--stack lightx2v --attention-kernel fa2`` on estimate: the stack's chains with FA2."""
    from llm_perf_opt.cli import main

    argv = ["estimate", "--variant", "t2v-1.3b", "--profile", "wan2-1-ci-tiny", "--device", "h100"]
    assert main([*argv, "--stack", "lightx2v", "--attention-kernel", "fa2"]) == 0
    out = capsys.readouterr().out
    assert "stack lightx2v, fa2, fused modulation+rmsnorm+rotary" in out
    assert main([*argv, "--stack", "sglang", "--gpus", "3", "--cfg-parallel"]) == 2
    assert "cfg_parallel:" in capsys.readouterr().err
    assert main([*argv, "--fuse", "everything"]) == 2
    assert "--fuse: unknown chain 'everything'" in capsys.readouterr().err


def test_a_parallel_vae_decode_splits_rank_zeros_decode() -> None:
    """LightX2V on several GPUs decodes in parallel: rank 0 runs 1/P of the decoder's work."""
    whole = build_deployment("t2v-1.3b", gpus=2, vae_decode="whole")
    parallel = build_deployment("t2v-1.3b", gpus=2, vae_decode="parallel")
    assert build_deployment("t2v-1.3b", stack="lightx2v", gpus=2).vae_decode == "parallel"
    assert build_deployment("t2v-1.3b", stack="lightx2v").vae_decode == "whole"
    scaling = _stage(whole, "own.vae")
    assert _stage(parallel, "stage.vae_decode") == pytest.approx(
        (_stage(whole, "stage.vae_decode") - scaling) / 2 + scaling, rel=1e-12
    )


def test_a_users_stack_file_runs_like_a_preset(tmp_path: Path) -> None:
    """A stack JSON file builds a deployment named after it, with no framework factor of its own."""
    from importlib import resources

    from llm_perf_opt.deployment.stacks import load_stack

    data = json.loads(resources.files("llm_perf_opt.deployment.stacks").joinpath("lightx2v.json").read_text())
    data["name"] = "my-engine"
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data))
    deployment = build_deployment("t2v-1.3b", stack=load_stack(path))
    assert (deployment.stack, deployment.attention_kernel) == ("my-engine", "fa3")
    assert "framework" not in deployment.factors
