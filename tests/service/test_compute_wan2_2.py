"""The service's computations for the Wan2.2 and VACE variants: requests checked by their own
family's rules, curves on the family's size grid, formulas of each expert, and the catalogue."""

from __future__ import annotations

import pytest

from llm_perf_opt.contracts import Wan2_1AnalyticRequest
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.service import compute
from llm_perf_opt.service.compute import ServiceOptions


def _request(variant: str, model_id: str, profile: str, **overrides: int) -> Wan2_1AnalyticRequest:
    return Wan2_1AnalyticRequest(
        model_id=model_id, model_variant=variant, workload_profile_id=profile, overrides=overrides or None
    )


def test_wan2_2_requests_are_checked_by_wan2_2_rules() -> None:
    """The README profile passes for TI2V-5B; 720 pixels high is refused naming 704 and 736."""
    options = ServiceOptions()
    compute.check_request(_request("ti2v-5b", "wan2.2-ti2v-5b", "wan2-2-official"), options)
    with pytest.raises(LlmPerfOptError, match="nearest valid: 704 or 736"):
        compute.check_request(_request("ti2v-5b", "wan2.2-ti2v-5b", "wan2-2-official", height=720), options)


def test_a_ti2v_curve_stays_on_the_32_pixel_grid() -> None:
    """Every point of TI2V-5B's resolution curve is a multiple of 32 in both sides."""
    options = ServiceOptions(device="rtx4090")
    result = compute.curve(options, "ti2v-5b", frames=121, height=704, width=1280, steps=50)
    assert all(p["height"] % 32 == 0 and p["width"] % 32 == 0 for p in result["over_height"])
    assert result["at"]["seconds"] > 0


def test_each_expert_has_a_formula_and_every_variant_is_listed() -> None:
    """The low-noise expert's FLOPs formula names the steps; the catalogue lists Wan2.2 and VACE."""
    found = compute.module_formula("t2v-a14b", "official", True, "low_noise_model", "flops")
    assert "steps" in found["text"]
    listed = {v["model_variant"] for v in compute.catalogue()["variants"]}
    assert {"t2v-a14b", "i2v-a14b", "ti2v-5b", "vace-1.3b", "vace-14b", "t2v-14b"} <= listed


def test_convert_model_dtype_is_a_run_option() -> None:
    """``convert_model_dtype=true`` reaches the Wan2.2 deployment; a non-boolean is refused."""
    options = compute.run_options({"device": "h100", "convert_model_dtype": "true"})
    deployment = compute.report_options("t2v-a14b", options).deployment
    assert deployment is not None and "--convert_model_dtype" in deployment.flags
    with pytest.raises(LlmPerfOptError, match="convert_model_dtype: must be true or false"):
        compute.run_options({"convert_model_dtype": "yes"})
