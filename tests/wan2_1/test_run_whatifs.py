"""The what-if methods a Wan2.1 deployment carries: the step cache's module in the sampling stage
and its residuals in the sampling memory, and clear errors where a family does not declare them."""

from __future__ import annotations

import pytest

from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import build_deployment
from llm_perf_opt.symbolic.symbols import Workload

WORKLOAD = Workload(batch=1, frames=81, height=480, width=832, steps=50, text_len=512, reused_steps=20)


def test_a_step_cache_adds_its_module_to_sampling_and_its_residuals_to_memory() -> None:
    """TeaCache on T2V-1.3B 480p: the diffusion stage gains the cache module's seconds, and the
    sampling phase exactly two residuals of B·tokens·dim (cond and uncond) at the stream's
    dtype: 2 · 32,760 · 1,536 · 4 bytes (fp32 stream) = 402,554,880."""
    plain = run_model(build_deployment("t2v-1.3b", accelerator="h100", offload="none"))
    cached = run_model(
        build_deployment("t2v-1.3b", accelerator="h100", offload="none", step_cache="teacache")
    )
    names = (
        "stage.diffusion",
        "phase.sampling",
        "module.diffusion",
        "module.step_cache",
        "memory.step_cache_residuals",
    )
    without = plain.evaluate_point(WORKLOAD)
    with_cache = {k: float(v) for k, v in cached.evaluate(WORKLOAD, names=names).items()}
    assert with_cache["memory.step_cache_residuals"] == 402_554_880
    assert with_cache["phase.sampling"] == without["phase.sampling"] + 402_554_880
    assert with_cache["stage.diffusion"] == pytest.approx(
        with_cache["module.diffusion"] + with_cache["module.step_cache"], rel=1e-12
    )
    assert with_cache["module.step_cache"] > 0


def test_the_residuals_are_sharded_with_the_sequence() -> None:
    """Over 8 GPUs (Ulysses 8) each rank keeps its eighth of the tokens' residuals."""
    deployment = build_deployment("t2v-1.3b", accelerator="h100", gpus=8, step_cache="magcache")
    values = run_model(deployment).evaluate(WORKLOAD, names=("memory.step_cache_residuals",))
    assert float(values["memory.step_cache_residuals"]) == 402_554_880 / 8


@pytest.mark.parametrize(
    ("variant", "options", "message"),
    [
        ("t2v-1.3b", {"step_cache": "fbcache"}, r"^step_cache: unknown step cache 'fbcache'"),
        ("t2v-1.3b", {"sparse_attention": "dense"}, r"^sparse_attention:"),
        (
            "t2v-a14b",
            {"step_cache": "teacache"},
            r"^step_cache: the 'teacache' module is declared for the Wan2.1",
        ),
        ("vace-1.3b", {"sparse_attention": "vsa"}, r"^sparse_attention: the 'vsa' pattern"),
    ],
)
def test_methods_a_family_does_not_declare_are_errors(
    variant: str, options: dict[str, object], message: str
) -> None:
    """An unknown cache, an unknown pattern, or a method on Wan2.2 or VACE: one error naming the field."""
    with pytest.raises(LlmPerfOptError, match=message):
        run_model(build_deployment(variant, accelerator="h100", **options))
