"""The analytic run: totals are sums of parts, scaling with batch and steps, attribution, the contract."""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_perf_opt.contracts import Wan2_1AnalyticRequest, openapi_path, to_json
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import build_deployment
from llm_perf_opt.report.analysis import Analysis, RunOptions, analyze, report_id_for
from llm_perf_opt.report.compare import compare_reports
from llm_perf_opt.report.summary import stage_flops, summarize
from llm_perf_opt.wan2_1.variants import VARIANTS, get_variant

SUMMED = (
    "total_flops_tflops",
    "total_io_tb",
    "memory_weights_gb",
    "memory_activations_gb",
    "memory_kvcache_gb",
    "total_time_ms",
)


def _request(
    variant: str = "t2v-1.3b", profile: str = "wan2-1-ci-tiny", **overrides: int
) -> Wan2_1AnalyticRequest:
    return Wan2_1AnalyticRequest(
        model_id=get_variant(variant).model_id,
        model_variant=variant,
        workload_profile_id=profile,
        overrides=overrides or None,
    )


@functools.cache
def _analysis(variant: str, profile: str, guidance: bool = True, **overrides: int) -> Analysis:
    return analyze(_request(variant, profile, **overrides), RunOptions(guidance=guidance))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_parent_is_the_sum_of_its_children(variant: str) -> None:
    """For every metric at every node: parent = Σ children (exactly in integers, to rounding in units)."""
    analysis = _analysis(variant, "wan2-1-ci-tiny")
    snapshots = {s.module_id: s for s in analysis.model.module_metrics}
    for node in analysis.model.modules:
        if not node.children:
            continue
        exact = analysis.figures[node.module_id].metrics
        for metric, value in exact.items():
            assert value == sum(analysis.figures[c].metrics[metric] for c in node.children), (
                node.module_id,
                metric,
            )
        for field in SUMMED:
            parent = getattr(snapshots[node.module_id], field)
            assert parent == pytest.approx(sum(getattr(snapshots[c], field) for c in node.children), rel=1e-9)


def test_categories_add_up_to_the_module() -> None:
    """Each module's category breakdown sums to its FLOPs and bytes; shares sum to 1 where FLOPs exist."""
    analysis = _analysis("i2v-14b-480p", "wan2-1-ci-tiny")
    for snapshot in analysis.model.module_metrics:
        rows = snapshot.operator_breakdown
        assert sum(r.flops_tflops for r in rows) == pytest.approx(
            snapshot.total_flops_tflops, rel=1e-9, abs=1e-15
        )
        assert sum(r.io_tb for r in rows) == pytest.approx(snapshot.total_io_tb, rel=1e-9, abs=1e-15)
        if snapshot.total_flops_tflops:
            assert sum(r.share_of_module_flops for r in rows) == pytest.approx(1.0)


def test_report_validates_against_the_shipped_schema() -> None:
    """report.json of a run validates against openapi.yaml's Wan2_1AnalyticModel; the summary too."""
    document = yaml.safe_load(openapi_path().read_text(encoding="utf-8"))
    analysis = _analysis("flf2v-14b", "wan2-1-ci-tiny")
    for name, obj in (
        ("Wan2_1AnalyticModel", analysis.model),
        ("Wan2_1AnalyticReportSummary", summarize(analysis)),
    ):
        schema = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        jsonschema.validate(json.loads(to_json(obj)), schema)


@settings(max_examples=8, deadline=None)
@given(variant=st.sampled_from(list(VARIANTS)), batch=st.integers(2, 4), steps=st.integers(2, 60))
def test_flops_linear_in_batch_and_steps(variant: str, batch: int, steps: int) -> None:
    """Whole-run FLOPs scale exactly with the batch, and the transformer's FLOPs with the steps."""
    one = _analysis(variant, "wan2-1-ci-tiny").figures
    batched = _analysis(variant, "wan2-1-ci-tiny", batch_size=batch).figures
    stepped = _analysis(variant, "wan2-1-ci-tiny", num_inference_steps=steps).figures
    assert batched["pipeline"].metrics["flops"] == batch * one["pipeline"].metrics["flops"]
    assert stepped["diffusion"].metrics["flops"] == steps * one["diffusion"].metrics["flops"]
    assert stepped["diffusion"].calls == 2 * steps


def test_guidance_doubles_the_transformer_calls() -> None:
    """With guidance the transformer runs 2 × steps times, without it steps times."""
    on = _analysis("t2v-14b", "wan2-1-512p", True)
    off = _analysis("t2v-14b", "wan2-1-512p", False)
    assert on.figures["diffusion"].calls == 100
    assert off.figures["diffusion"].calls == 50
    assert on.figures["diffusion.blocks.7.ffn.0"].calls == 100
    assert on.figures["diffusion"].metrics["flops"] == 2 * off.figures["diffusion"].metrics["flops"]


def test_pipeline_total_is_the_sum_of_its_stages() -> None:
    """The run's FLOPs are the sum of the stage totals."""
    analysis = _analysis("i2v-14b-720p", "wan2-1-720p")
    assert sum(stage_flops(analysis).values()) == analysis.figures["pipeline"].metrics["flops"]


def test_more_frames_cost_more_and_the_change_is_attributed() -> None:
    """Going from 16 to 81 frames raises FLOPs; the attention core grows most, then the projections."""
    small = _analysis("t2v-14b", "wan2-1-720p")
    large = _analysis("t2v-14b", "wan2-1-720p", num_frames=81)
    comparison = compare_reports(small.model, large.model)
    assert comparison.totals[0].delta > 0
    assert comparison.movers[0].key == "diffusion.blocks.*.self_attn.ops"
    assert all(change.delta > 0 for change in comparison.movers)


def test_values_are_finite_non_negative_and_kv_cache_is_zero() -> None:
    """Every figure is finite and ≥ 0; the diffusion transformer reports no KV cache."""
    for snapshot in _analysis("t2v-14b", "wan2-1-720p").model.module_metrics:
        for field in SUMMED:
            value = getattr(snapshot, field)
            assert math.isfinite(value) and value >= 0
        assert snapshot.memory_kvcache_gb == 0.0


def test_report_ids_are_stable_safe_and_distinct() -> None:
    """The same request gives the same id; any change gives another; ids are folder-safe."""
    first = report_id_for(_request(), RunOptions())
    assert first == report_id_for(_request(), RunOptions())
    assert first != report_id_for(_request(num_frames=9), RunOptions())
    assert first != report_id_for(_request(), RunOptions(implementation="diffusers"))
    assert all(c.isalnum() or c in "-._" for c in first)


def test_summary_has_ten_comparable_rows() -> None:
    """The summary lists 10 modules, biggest first, repeated blocks summed with a * for the index."""
    summary = summarize(_analysis("t2v-14b", "wan2-1-720p"))
    rows = summary.top_modules
    assert len(rows) == 10
    assert rows[0].module_id == "diffusion.blocks.*.self_attn"
    assert [r.share_of_model_flops for r in rows] == sorted(
        (r.share_of_model_flops for r in rows), reverse=True
    )


BAD_REQUESTS: list[tuple[dict[str, Any], str]] = [
    ({"model_variant": "t2v-15b"}, "model_variant: unknown variant 't2v-15b'"),
    ({"model_id": "wan2.1-t2v-1.3b"}, "model_id: 'wan2.1-t2v-1.3b' does not match model_variant 't2v-14b'"),
    ({"workload_profile_id": "nope"}, "workload_profile_id: unknown profile 'nope'"),
    ({"overrides": {"height": 500}}, "height: must be a multiple of 16"),
]


@pytest.mark.parametrize(("change", "message"), BAD_REQUESTS)
def test_bad_requests(change: dict[str, Any], message: str) -> None:
    """A request naming an unknown variant or profile, or a size the pipeline rejects, fails clearly."""
    fields: dict[str, Any] = {
        "model_id": "wan2.1-t2v-14b",
        "model_variant": "t2v-14b",
        "workload_profile_id": "wan2-1-720p",
        **change,
    }
    with pytest.raises(LlmPerfOptError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        analyze(Wan2_1AnalyticRequest(**fields))


@functools.cache
def _timed(variant: str, profile: str, device: str, gpus: int) -> Analysis:
    deployment = build_deployment(variant, accelerator=device, gpus=gpus)
    return analyze(_request(variant, profile), RunOptions(deployment=deployment))


def test_times_add_up_and_fill_the_summary() -> None:
    """On a device, every parent's time is the sum of its children's and the summary has the total."""
    analysis = _timed("t2v-14b", "wan2-1-official-720p", "h100", 1)
    snapshots = {s.module_id: s for s in analysis.model.module_metrics}
    for node in analysis.model.modules:
        if node.children:
            children = sum(snapshots[c].total_time_ms for c in node.children)
            assert snapshots[node.module_id].total_time_ms == pytest.approx(children, rel=1e-9)
    root = snapshots["pipeline"]
    assert root.share_of_model_time == 1.0
    assert summarize(analysis).predicted_total_time_ms == pytest.approx(root.total_time_ms)
    # the published end-to-end time of this setup (one H800/H100, --offload_model) is 1837.9 s
    assert 0.75 * 1837.9 < root.total_time_ms / 1e3 < 1.25 * 1837.9
    assert snapshots["diffusion"].share_of_model_time > 0.9


def test_more_devices_run_faster() -> None:
    """Eight H100s with sequence parallelism finish the same run in less time than one."""
    one = _timed("t2v-14b", "wan2-1-official-720p", "h100", 1).seconds
    eight = _timed("t2v-14b", "wan2-1-official-720p", "h100", 8).seconds
    assert eight < one / 4


def test_unknown_device_is_a_clear_error() -> None:
    """A device the table lacks is an error that lists the known ones."""
    with pytest.raises(LlmPerfOptError, match=r"^accelerator: unknown device 'tpu-v5'; known: a100, "):
        build_deployment("t2v-14b", accelerator="tpu-v5")


def test_a_deployment_of_another_variant_is_an_error() -> None:
    """Times must come from a deployment of the report's own variant."""
    with pytest.raises(LlmPerfOptError, match=r"^deployment: built for i2v-14b-480p"):
        analyze(_request(), RunOptions(deployment=build_deployment("i2v-14b-480p", accelerator="h100")))
