"""Calibrating on a trace: the fit data from the real CPU trace, the draft fit, the override file."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.efficiency import load_efficiencies
from llm_perf_opt.profiling.calibrate import (
    CalibrationFit,
    FitSample,
    FitTerm,
    draft_fit,
    fit_samples,
    fitted_table,
    write_efficiency_override,
)
from llm_perf_opt.profiling.trace import TraceProfile, import_trace


def _term(compute: float, compute_key: str, memory: float, memory_key: str) -> FitTerm:
    return FitTerm(
        kind=("mm", "bf16"),
        flops=compute * 1e12,
        bytes_moved=memory * 1e12,
        compute_seconds=compute,
        compute_factor=compute_key,
        memory_seconds=memory,
        memory_factor=memory_key,
    )


def test_draft_fit_recovers_known_factors() -> None:
    """Samples timed with known factors (compute- and memory-bound alike) give those factors back."""
    truth = {"matmul": 0.7, "memory_tensor": 0.8, "vector": 0.3, "memory_elementwise": 0.6}
    shapes = [
        ("matmul", _term(2.0, "matmul", 0.1, "memory_tensor")),  # compute-bound
        ("matmul", _term(1.0, "matmul", 0.05, "memory_tensor")),
        ("matmul", _term(0.01, "matmul", 1.0, "memory_tensor")),  # memory-bound (skinny GEMM)
        ("elementwise", _term(0.5, "vector", 0.01, "memory_elementwise")),
        ("elementwise", _term(0.001, "vector", 0.4, "memory_elementwise")),
    ]
    samples = [
        FitSample(
            module_id=f"m{i}",
            op_class=cls,
            measured_seconds=FitSample(
                module_id="", op_class=cls, measured_seconds=0.0, terms=(term,)
            ).predicted_seconds(truth),
            terms=(term,),
        )
        for i, (cls, term) in enumerate(shapes)
    ]
    fit = draft_fit(samples, "h100")
    for key, value in truth.items():
        assert fit.factors[key] == pytest.approx(value, rel=1e-6), key
    assert all(r.rms_log_residual < 1e-6 for r in fit.residuals)
    assert [r.op_class for r in fit.residuals] == ["matmul", "elementwise"]
    assert fit.undetermined == () and fit.at_bound == ()


def test_nothing_to_fit_is_a_clear_error() -> None:
    """Samples without measured time are an error rather than a fit of nothing."""
    empty = FitSample(
        module_id="m",
        op_class="matmul",
        measured_seconds=0.0,
        terms=(_term(1, "matmul", 1, "memory_tensor"),),
    )
    with pytest.raises(LlmPerfOptError, match=r"^samples: none has both measured time and analytic work"):
        draft_fit([empty], "host")


@pytest.fixture(scope="module")
def cpu_samples(live_trace: Path) -> tuple[TraceProfile, tuple[FitSample, ...], dict[str, float]]:
    """Fit samples of the real CPU trace on the host, with each stage's analytic FLOPs over the run."""
    from llm_perf_opt.wan2_1.evaluate import dit_tree, vae_tree
    from llm_perf_opt.wan2_1.implementation import get_implementation
    from tests.profiling.live import FORWARDS, SMALL_DIT, SMALL_VAE
    from tests.profiling.test_annotate import _dit, _vae

    diffusers = get_implementation("diffusers")
    trace = import_trace(live_trace)
    (_, dit_workload), (_, vae_workload) = _dit(), _vae()
    dit = dit_tree(SMALL_DIT, diffusers)
    vae = vae_tree(diffusers, encodes=0, decodes=1, config=SMALL_VAE)
    samples = fit_samples(trace, dit, dit_workload, "host") + fit_samples(trace, vae, vae_workload, "host")
    flops = {
        "diffusion": FORWARDS * int(sympy.sympify(dit.root.aggregate.flops).subs(dit_workload.subs())),
        "vae": int(sympy.sympify(vae.root.aggregate.flops).subs(vae_workload.subs())),
    }
    return trace, samples, flops


def test_fit_samples_keep_every_second_and_every_flop(
    cpu_samples: tuple[TraceProfile, tuple[FitSample, ...], dict[str, float]],
) -> None:
    """The samples hold all the measured time of each stage and all its analytic FLOPs, by op class."""
    trace, samples, flops = cpu_samples
    classes = {
        "diffusion": {"matmul", "attention", "elementwise"},
        "vae": {"convolution", "attention", "elementwise"},
    }
    for stage in ("diffusion", "vae"):
        mine = [s for s in samples if s.module_id.split(".")[0] == stage]
        assert sum(s.measured_seconds for s in mine) == pytest.approx(trace.module(stage).total_us / 1e6)
        tensor = sum(s.flops for s in mine if s.op_class != "elementwise")
        assert tensor == pytest.approx(flops[stage], rel=1e-12)
        assert {s.op_class for s in mine} >= classes[stage]
    assert any(s.op_class == "convolution" and s.module_id.startswith("vae.decoder") for s in samples)
    assert any(s.op_class == "attention" and s.module_id.endswith(".self_attn") for s in samples)


def test_calibration_end_to_end_on_the_cpu_trace(
    cpu_samples: tuple[TraceProfile, tuple[FitSample, ...], dict[str, float]], tmp_path: Path
) -> None:
    """The draft fit on the CPU trace gives factors in (0, 1], residuals per op class and a file that
    the efficiency table reads back."""
    _, samples, _ = cpu_samples
    fit: CalibrationFit = draft_fit(samples, "host")
    assert {r.op_class for r in fit.residuals} == {"matmul", "attention", "convolution", "elementwise"}
    assert all(0 < v <= 1 for v in fit.factors.values())
    assert all(math.isfinite(r.rms_log_residual) for r in fit.residuals)
    path = write_efficiency_override(fit, tmp_path / "host.json", basis="fitted to a CPU trace")
    table = load_efficiencies(path)
    for key, value in fit.factors.items():
        assert table.value("device:host", key) == pytest.approx(value, rel=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == ["host.json"]
    assert fitted_table(fit).value("device:host", "memory_tensor") == fit.factors["memory_tensor"]
