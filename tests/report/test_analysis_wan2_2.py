"""Reports and the command line for the Wan2.2 variants: every figure split by expert, the README run
as a profile, the official class names, and off-grid sizes as one clear error."""

from __future__ import annotations

import functools

import pytest

from llm_perf_opt.cli import main
from llm_perf_opt.contracts import Wan2_1AnalyticRequest
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import build_deployment
from llm_perf_opt.report.analysis import Analysis, RunOptions, analyze, report_id_for
from llm_perf_opt.wan2_2 import get_variant
from llm_perf_opt.wan2_2.workloads import OFFICIAL_PROFILE_ID, resolve_profile

PARAMETERS_PER_EXPERT = 14_288_491_584
"""One A14B expert's parameters (docs/pipeline.md, checked against diffusers)."""


def _request(variant: str, profile: str = OFFICIAL_PROFILE_ID, **overrides: int) -> Wan2_1AnalyticRequest:
    return Wan2_1AnalyticRequest(
        model_id=get_variant(variant).model_id,
        model_variant=variant,
        workload_profile_id=profile,
        overrides=overrides or None,
    )


@functools.cache
def _analysis(variant: str, profile: str = OFFICIAL_PROFILE_ID) -> Analysis:
    return analyze(_request(variant, profile))


def test_an_a14b_report_splits_every_figure_by_expert() -> None:
    """T2V-A14B's README run: the two experts are top-level modules whose FLOPs are 26 : 14 (the
    step split), whose parameters are one expert's each, and which add up with the rest to the run."""
    analysis = _analysis("t2v-a14b")
    high, low = analysis.figures["high_noise_model"], analysis.figures["low_noise_model"]
    assert high.calls == 2 * 26 and low.calls == 2 * 14
    assert high.metrics["flops"] * 14 == low.metrics["flops"] * 26
    assert high.metrics["params"] == low.metrics["params"] == PARAMETERS_PER_EXPERT
    root = analysis.figures[analysis.model.modules[0].module_id]
    children = [
        m.module_id for m in analysis.model.modules if m.parent_id == analysis.model.modules[0].module_id
    ]
    assert sum(analysis.figures[c].metrics["flops"] for c in children) == root.metrics["flops"]
    names = {m.module_id: m.qualified_class_name for m in analysis.model.modules}
    assert names["pipeline"] == "wan.text2video.WanT2V"
    assert names["high_noise_model"] == "wan.modules.model.WanModel"
    assert names["vae"] == "wan.modules.vae2_1.WanVAE_"
    assert any("high_noise_model runs 26, low_noise_model 14" in note for note in analysis.notes)


def test_the_ti2v_report_uses_its_readme_run_and_its_vae() -> None:
    """TI2V-5B's README run is 121 frames at 1280×704 and 50 steps, its VAE the Wan2.2 one (16× down)."""
    analysis = _analysis("ti2v-5b")
    workload = analysis.model.workload
    assert (workload.num_frames, workload.height, workload.width) == (121, 704, 1280)
    assert workload.num_inference_steps == 50
    assert analysis.model.model.vae_downsample_factor == 16
    assert analysis.model.model.latent_channels == 48
    names = {m.module_id: m.qualified_class_name for m in analysis.model.modules}
    assert names["pipeline"] == "wan.textimage2video.WanTI2V"
    assert names["vae"].startswith("wan.modules.vae2_2.")


def test_a_wan2_1_profile_takes_the_variants_default_steps() -> None:
    """A Wan2.1 profile that leaves the steps open gives A14B its own 40, with a note saying so."""
    profile, notes = resolve_profile("wan2-1-official-480p", get_variant("t2v-a14b"))
    assert (profile.num_frames, profile.height, profile.width, profile.num_inference_steps) == (
        81,
        480,
        832,
        40,
    )
    assert any("num_inference_steps 40: the official default run of t2v-a14b" in n for n in notes)
    overridden, _ = resolve_profile(OFFICIAL_PROFILE_ID, get_variant("t2v-a14b"), {"num_inference_steps": 8})
    assert overridden.num_inference_steps == 8 and overridden.num_frames == 81


def test_a_report_with_a_deployment_times_the_converted_experts() -> None:
    """With --convert_model_dtype the report's tree holds bf16 experts, and its time is the deployment's."""
    deployment = build_deployment("t2v-a14b", accelerator="h100-sxm", convert_model_dtype=True)
    analysis = analyze(_request("t2v-a14b"), RunOptions(deployment=deployment))
    assert analysis.figures["high_noise_model"].metrics["weight_bytes"] == 2 * PARAMETERS_PER_EXPERT
    assert analysis.seconds == pytest.approx(1611.4, abs=0.1)
    assert any("58.58 GB (fits" in note for note in analysis.notes)


def test_an_off_grid_size_is_one_error_naming_the_nearest() -> None:
    """TI2V-5B at 720 pixels high is an error naming 704 and 736, not a silent rounding."""
    with pytest.raises(
        LlmPerfOptError, match=r"height: must be a multiple of 32 .* nearest valid: 704 or 736"
    ):
        analyze(_request("ti2v-5b", height=720))


def test_the_command_line_estimates_and_sizes_wan2_2(capsys: pytest.CaptureFixture[str]) -> None:
    """estimate prints a stage per expert; size rejects an off-grid height with exit status 2."""
    args = ["--variant", "t2v-a14b", "--device", "h100", "--offload", "model", "--convert-model-dtype"]
    assert main(["estimate", "--profile", OFFICIAL_PROFILE_ID, *args]) == 0
    out = capsys.readouterr().out
    assert "high_noise_model" in out and "low_noise_model" in out and "diffusion.expert_switch" in out
    assert "--convert_model_dtype" in out
    size = ["size", "frames", "--variant", "ti2v-5b", "--device", "h100", "--height", "720"]
    assert main(size) == 2
    assert (
        "height: must be a multiple of 32 for wan2.2, got 720; nearest valid: 704 or 736"
        in capsys.readouterr().err
    )
    assert main(["variants"]) == 0
    assert "t2v-a14b" in capsys.readouterr().out


def test_converted_and_plain_deployments_get_different_report_ids() -> None:
    """--convert_model_dtype changes the figures, so it changes the report id (same device and shape)."""
    request = _request("ti2v-5b")
    ids = {
        report_id_for(
            request, RunOptions(deployment=build_deployment("ti2v-5b", convert_model_dtype=convert))
        )
        for convert in (False, True)
    }
    assert len(ids) == 2


def test_a_report_of_an_image_run_holds_its_encode() -> None:
    """A TI2V-5B report with an image-to-video deployment has the image's one VAE encode in its tree."""
    deployment = build_deployment("ti2v-5b", accelerator="rtx4090", image=True)
    analysis = analyze(_request("ti2v-5b"), RunOptions(deployment=deployment))
    assert analysis.figures["vae.encoder"].calls == 1
    assert analysis.figures["vae.encoder"].metrics["flops"] > 0
