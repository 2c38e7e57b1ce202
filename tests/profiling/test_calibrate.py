"""Calibrating on a trace with the engine's fit: the targets of the real CPU trace, a fit that recovers
the factors a trace was timed with, the end-to-end fit on the host CPU and the override file."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import attrs
import numpy as np
import pytest
import sympy

from llm_perf_opt.calibration import predict_targets
from llm_perf_opt.deployment.engine import RunModel, run_model
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import get_accelerator
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, FACTOR_KEYS, load_efficiencies
from llm_perf_opt.hardware.host import DEFAULT_HOST
from llm_perf_opt.models import build_deployment
from llm_perf_opt.profiling.calibrate import (
    LOWEST_FACTOR,
    TracedRun,
    fit_trace,
    fit_traces,
    host_accelerator,
    host_efficiencies,
    trace_targets,
    write_efficiency_override,
)
from llm_perf_opt.profiling.op_flops import OP_CLASSES
from llm_perf_opt.profiling.trace import TraceProfile, import_trace
from llm_perf_opt.symbolic.module import build_tree
from llm_perf_opt.symbolic.symbols import Workload

Run = tuple[TraceProfile, RunModel, dict[str, Workload]]


def test_the_host_is_a_device_at_its_assumed_rates() -> None:
    """The host row runs tensor work at the host's matrix rate and element-wise work at its vector rate."""
    host = host_accelerator()
    assert host.peak_flops("bf16") == pytest.approx(DEFAULT_HOST.matmul_flops)
    assert host.memory_bandwidth == pytest.approx(DEFAULT_HOST.memory_bandwidth)
    factors = host_efficiencies(EFFICIENCIES).for_device(host).factors
    # 0.2 TFLOP/s vector over 1 TFLOP/s matrix rate
    assert factors["vector"] == pytest.approx(0.2)
    assert all(factors[key] == 1.0 for key in FACTOR_KEYS if key != "vector")


@pytest.fixture(scope="module")
def small_run(live_trace: Path) -> Run:
    """The real CPU trace, the compiled run of its small transformer and VAE on the host, and the
    workload of each traced stage."""
    from llm_perf_opt.wan2_1.evaluate import resolve_workload
    from llm_perf_opt.wan2_1.implementation import get_implementation
    from llm_perf_opt.wan2_1.pipeline import PIPELINE_ID, declare_pipeline
    from llm_perf_opt.wan2_1.vae import declare_vae
    from tests.profiling.live import DIT_WORKLOAD, SMALL_DIT, SMALL_VAE, VAE_FRAMES, VAE_HEIGHT, VAE_WIDTH

    diffusers = get_implementation("diffusers")
    pipeline = declare_pipeline(SMALL_DIT, diffusers, guidance=True)
    small_vae = declare_vae(diffusers, encodes=0, decodes=1, config=SMALL_VAE)
    children = tuple(small_vae if child.name == small_vae.name else child for child in pipeline.children)
    tree = build_tree(attrs.evolve(pipeline, children=children), PIPELINE_ID, bare_children=True)
    deployment = build_deployment(
        SMALL_DIT,
        implementation=diffusers,
        accelerator=host_accelerator(),
        gpus=1,
        offload="none",
        attention_kernel="sdpa",
        efficiencies=host_efficiencies(EFFICIENCIES),
    )
    dit, _ = resolve_workload(
        SMALL_DIT,
        batch=1,
        frames=DIT_WORKLOAD.frames,
        height=DIT_WORKLOAD.height,
        width=DIT_WORKLOAD.width,
        text_len=DIT_WORKLOAD.text_len,
        pad_text=False,
    )
    vae = Workload(batch=1, frames=VAE_FRAMES, height=VAE_HEIGHT, width=VAE_WIDTH, steps=1, text_len=16)
    workloads = {"diffusion": dit, "vae": vae}
    return import_trace(live_trace), run_model(deployment, tree), workloads


def test_targets_hold_every_second_and_every_module(small_run: Run) -> None:
    """Per traced stage, the units hold all its measured time and every node's work, and their
    predictions add up to the engine's stage time scaled to the trace's calls."""
    trace, model, workloads = small_run
    targets, units, unpredicted, unmeasured = trace_targets(trace, model, workloads)
    assert sorted(workloads) == ["diffusion", "vae"] and unmeasured == ()
    tree = model.tree
    for stage, workload in workloads.items():
        mine = [u for u in units if u.module_id.split(".")[0] == stage]
        measured = sum(u.measured_seconds for u in mine)
        assert measured <= trace.module(stage).total_us / 1e6 * (1 + 1e-12)
        declared = {n.id for n in tree if n.id.split(".")[0] == stage and n.own_breakdown}
        own = model.evaluate(workload, names=tuple(f"own.{n}" for n in declared))
        # a unit predicted at 0 (a copy only a batch > 1 makes) is dropped: the nodes with work remain
        working = {n for n in declared if own[f"own.{n}"] > 0}
        assert working <= {n for u in mine for n in u.nodes} <= declared
        predicted = predict_targets(
            [t for t in targets if t.id.split(".")[0] == stage], model.deployment.efficiencies
        )
        engine = model.evaluate(workload, names=(f"module.{stage}",))[f"module.{stage}"]
        calls = float(sympy.sympify(tree[stage].calls).subs(workload.subs()))
        # the trace ran 2 transformer forwards and 1 decode; the run, S·2 forwards and 1 decode
        assert predicted.sum() == pytest.approx(float(engine) * trace.module(stage).calls / calls, rel=1e-9)
    total = sum(trace.module(stage).total_us for stage in workloads) / 1e6
    assert sum(u.measured_seconds for u in units) + unpredicted == pytest.approx(total, rel=1e-12)
    assert any(u.op_class == "convolution" for u in units) and any(u.op_class == "attention" for u in units)


def _timed_with(trace: TraceProfile, seconds: Mapping[str, float]) -> TraceProfile:
    """``trace`` with each unit's own time replaced by ``seconds`` (as matrix-product time), every
    other range's set to zero."""
    modules = tuple(
        attrs.evolve(
            timing,
            own_us_by_class={
                cls: (seconds.get(timing.module_id, 0.0) * 1e6 if cls == "matmul" else 0.0)
                for cls in OP_CLASSES
            },
        )
        for timing in trace.modules
    )
    return attrs.evolve(trace, modules=modules)


def test_the_fit_recovers_the_factors_a_trace_was_timed_with(small_run: Run) -> None:
    """Measured times that are the engine's predictions at known factors give those factors back."""
    trace, model, workloads = small_run
    targets, _, _, _ = trace_targets(trace, model, workloads)
    # convolutions compute-bound, everything else memory-bound, as at the start of the fit
    truth = {"convolution": 0.3, "memory_tensor": 0.5, "memory_elementwise": 0.4}
    timed = model.deployment.efficiencies.with_values({("device:host", k): v for k, v in truth.items()})
    seconds = dict(zip((t.id for t in targets), predict_targets(targets, timed), strict=True))
    fit = fit_trace(_timed_with(trace, seconds), model, workloads, prior_weight=1e-12)
    for key, value in truth.items():
        assert fit.factors[key] == pytest.approx(value, rel=1e-6), key
    assert "vector" in fit.not_binding  # every element-wise op stays memory-bound
    assert all(row.rms_log_residual < 1e-6 for row in fit.residuals)
    assert "link" in fit.undetermined and "link" not in fit.factors


def test_calibration_end_to_end_on_the_cpu_trace(small_run: Run, tmp_path: Path) -> None:
    """The engine's fit on the CPU trace lowers the misfit, reports residuals per op class and writes
    a file the efficiency table reads back, with the residuals in its basis."""
    trace, model, workloads = small_run
    fit = fit_trace(trace, model, workloads)
    assert {r.op_class for r in fit.residuals} == {"matmul", "attention", "convolution", "elementwise"}
    assert sum(r.units for r in fit.residuals) == len(fit.units)
    assert all(LOWEST_FACTOR * (1 - 1e-9) <= v <= 1 for v in fit.factors.values())
    targets, _, _, _ = trace_targets(trace, model, workloads)
    measured = np.array([t.measured_seconds for t in targets])

    def misfit(table: object) -> float:
        return float(np.sum(np.log(predict_targets(targets, table) / measured) ** 2))  # type: ignore[arg-type]

    assert misfit(fit.table) < misfit(model.deployment.efficiencies)
    rms = {r.op_class: r.rms_log_residual for r in fit.residuals}
    assert all(math.isfinite(v) for v in rms.values())
    path = write_efficiency_override(fit, tmp_path / "host.json", basis="fitted to a CPU trace")
    table = load_efficiencies(path)
    for key, value in fit.factors.items():
        assert table.value("device:host", key) == pytest.approx(value, rel=1e-5)
    basis = table.basis["device:host"]
    assert basis.startswith("fitted to a CPU trace; residuals per op class")
    assert f"convolution {rms['convolution']:.3f} over" in basis
    assert [p.name for p in tmp_path.iterdir()] == ["host.json"]


def test_a_trace_of_another_model_is_a_clear_error(small_run: Run) -> None:
    """No range of a stage, a stage the tree lacks or no stage at all: one error each."""
    trace, model, workloads = small_run
    bare = attrs.evolve(trace, modules=tuple(t for t in trace.modules if not t.module_id.startswith("vae")))
    with pytest.raises(
        LlmPerfOptError, match=r"has no range of 'vae': it is not a trace of this model's stage"
    ):
        trace_targets(bare, model, workloads)
    with pytest.raises(LlmPerfOptError, match=r"^workloads: 'encoder' is not a module of the run's tree"):
        trace_targets(trace, model, {"encoder": workloads["vae"]})
    with pytest.raises(LlmPerfOptError, match=r"^workloads: expected at least one traced stage"):
        trace_targets(trace, model, {})


def test_several_traces_fit_as_one(small_run: Run) -> None:
    """Two traces timed with the same factors fit to them together, every unit of both counted."""
    trace, model, workloads = small_run
    targets, units, _, _ = trace_targets(trace, model, workloads)
    truth = {"convolution": 0.3, "memory_tensor": 0.5, "memory_elementwise": 0.4}
    timed = model.deployment.efficiencies.with_values({("device:host", k): v for k, v in truth.items()})
    run = TracedRun(
        trace=_timed_with(
            trace, dict(zip((t.id for t in targets), predict_targets(targets, timed), strict=True))
        ),
        model=model,
        workloads=workloads,
    )
    fit = fit_traces([run, run], prior_weight=1e-12)
    assert len(fit.units) == 2 * len(units)
    assert sum(r.units for r in fit.residuals) == 2 * len(units)
    for key, value in truth.items():
        assert fit.factors[key] == pytest.approx(value, rel=1e-6), key
    other = attrs.evolve(
        model, deployment=attrs.evolve(model.deployment, accelerator=get_accelerator("h100"))
    )
    with pytest.raises(LlmPerfOptError, match=r"^traces: .* was measured on h100-sxm, .* on host: one fit"):
        fit_traces([run, TracedRun(trace=trace, model=other, workloads=workloads)])
    with pytest.raises(LlmPerfOptError, match=r"^traces: expected at least one trace"):
        fit_traces([])
