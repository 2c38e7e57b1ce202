"""The service's calls into the library: run options from a query, the synchronous check, limits."""

from __future__ import annotations

import pytest

from llm_perf_opt.contracts import Wan2_1AnalyticRequest, structure
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import build_deployment
from llm_perf_opt.report.analysis import RunOptions, report_id_for
from llm_perf_opt.service import compute
from llm_perf_opt.service.compute import REPORT_ID_PATTERN, ServiceOptions

TINY = {"model_id": "wan2.1-t2v-1.3b", "model_variant": "t2v-1.3b", "workload_profile_id": "wan2-1-ci-tiny"}


def test_run_options_are_read_from_the_query() -> None:
    """Every field of the run options is a query parameter, strictly typed."""
    options = compute.run_options(
        {
            "device": "H100-SXM",
            "gpus": "4",
            "guidance": "false",
            "offload": "group",
            "attention_kernel": "fa3",
        }
    )
    assert options == ServiceOptions(
        device="h100-sxm", gpus=4, guidance=False, offload="group", attention_kernel="fa3"
    )
    assert compute.run_options({}) == ServiceOptions()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"gpu": "1"}, "gpu: unknown query parameter; accepted: implementation, guidance"),
        ({"gpus": "3"}, "gpus: must be one of 1, 2, 4, 8, got '3'"),
        ({"gpus": "1.5"}, "gpus: must be one of 1, 2, 4, 8, got '1.5'"),
        ({"guidance": "yes"}, "guidance: must be true or false, got 'yes'"),
        ({"offload": "true"}, "offload: unknown offload 'true'; accepted: none, model, group"),
        ({"implementation": "jax"}, "implementation: unknown profile 'jax'; accepted: official, diffusers"),
        ({"attention_kernel": "fa9"}, "attention_kernel: unknown kernel 'fa9'; accepted: sdpa, fa2, fa3"),
        ({"device": "tpu"}, "tpu"),
    ],
)
def test_a_bad_option_names_the_parameter(query: dict[str, str], message: str) -> None:
    """A bad query parameter is one error naming it, the value and what is accepted."""
    with pytest.raises(LlmPerfOptError, match=message.replace(".", r"\.").replace("(", r"\(")):
        compute.run_options(query)


@pytest.mark.parametrize(
    ("request_data", "options", "message"),
    [
        (
            {**TINY, "overrides": {"num_frames": 2000}},
            ServiceOptions(),
            "overrides.num_frames: must be from 1 to 1025",
        ),
        (
            {**TINY, "overrides": {"height": 8192}},
            ServiceOptions(),
            "overrides.height: must be from 1 to 4096",
        ),
        (
            {**TINY, "model_variant": "t2v-14b"},
            ServiceOptions(),
            "model_id: 'wan2.1-t2v-1.3b' does not match",
        ),
        ({**TINY, "workload_profile_id": "x"}, ServiceOptions(), "workload_profile_id: unknown profile 'x'"),
        ({**TINY, "overrides": {"height": 250}}, ServiceOptions(), "height"),
        (
            {**TINY},
            ServiceOptions(device="a100", attention_kernel="fa3"),
            "attention_kernel: .fa3. has no efficiency on a100",
        ),
    ],
)
def test_the_check_rejects_what_the_report_would(
    request_data: dict[str, object], options: ServiceOptions, message: str
) -> None:
    """Limits, the variant's model id, the profile, frame sizes and the device setup fail before a job."""
    request = structure(request_data, Wan2_1AnalyticRequest)
    with pytest.raises(LlmPerfOptError, match=message):
        compute.check_request(request, options)


def test_the_report_id_is_the_library_s_and_matches_the_pattern() -> None:
    """The service's id is the command line's id, and the strict pattern accepts it."""
    request = structure(TINY, Wan2_1AnalyticRequest)
    options = ServiceOptions(device="h100-sxm")
    deployment = build_deployment("t2v-1.3b", accelerator="h100-sxm")
    assert compute.report_id(request, options) == report_id_for(request, RunOptions(deployment=deployment))
    assert REPORT_ID_PATTERN.fullmatch(compute.report_id(request, options))
    for bad in ("../etc__0123456789ab", "a/b__0123456789ab", "a__0123456789AB", "", "a__0123"):
        assert not REPORT_ID_PATTERN.fullmatch(bad)


def test_options_survive_the_store_as_json() -> None:
    """Run options written to the store read back equal."""
    options = ServiceOptions(device="h200", gpus=8, offload="none", t5_cpu=True)
    assert compute.options_from_json(compute.options_json(options)) == options


def test_a_formula_is_latex_of_the_library_s_expression() -> None:
    """The self-attention's FLOPs formula is the library's, spelt with upright workload symbols."""
    result = compute.module_formula("t2v-1.3b", "official", True, "diffusion.blocks.0.self_attn", "flops")
    assert r"\mathrm{frames}" in result["latex"] and r"\left\lfloor" in result["latex"]
    # 6·b·h·s·w·(h·w·(⌊(F−1)/4⌋+1)/32 + 24576)·(⌊(F−1)/4⌋+1): Q, K, V, O projections and the attention core
    assert result["text"] == (
        "6*batch*height*steps*width*(height*width*(floor((frames - 1)/4) + 1)/32 + 24576)"
        "*(floor((frames - 1)/4) + 1)"
    )
    with pytest.raises(LlmPerfOptError, match="module_id: no module 'nowhere'"):
        compute.module_formula("t2v-1.3b", "official", True, "nowhere", "flops")
