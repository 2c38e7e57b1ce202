"""The one compiled engine: the calibration records reproduce the published-figure table, parents
are sums of their children, memory matches the published peaks, and the disk cache is safe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import attrs
import numpy as np
import pytest

from llm_perf_opt.calibration import CALIBRATION, calibration_table, predict_record
from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.value import Parallelism
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.efficiency import EFFICIENCIES
from llm_perf_opt.models import build_deployment
from llm_perf_opt.symbolic.cache import CACHE_ENV
from llm_perf_opt.symbolic.symbols import Workload

# The model's seconds for every calibration record (first pinned when the deployment layer was rebuilt,
# where the old symbolic and numeric engines agreed on them; moved since only by the eager op lists
# of the transformer, umT5, CLIP and the VAE and the refits on them); the one engine must reproduce them.
BEFORE = {
    "C4": 4.54,
    "C5": 13.26,
    "C6": 1801.72,
    "C7-fa2": 54.05,
    "C7-fa3": 38.19,
    "C8": 84.62,
    "C4-compiled": 4.54,
    "C5-compiled": 13.26,
    "C7-fa3-compiled": 38.19,
    "C1x1": 1933.47,
    "C1x2": 981.95,
    "C1x4": 500.75,
    "C1x8": 258.60,
    "C2x1": 1575.24,
    "C2x2": 803.54,
    "C2x4": 414.36,
    "C2x8": 218.54,
    "C3x1": 281.46,
    "C3x2": 190.59,
    "C3x4": 115.53,
    "C3x8": 112.88,
}

SUMMARY = {
    "diffusers": (7, 4.2, 11.1),
    "official": (13, 4.5, 10.2),
    "xdit": (1, 0.2, 0.2),
    "fastvideo": (4, 3.9, 7.8),
    "sglang-diffusion": (1, 0.1, 0.1),
    "lightx2v": (5, 5.8, 9.5),
    "flashdreams": (1, 0.1, 0.1),
}
"""stack → (points, MAPE %, largest |error| %) over the fitted records."""

VIDEO_720P = Workload(batch=1, frames=81, height=720, width=1280, steps=50, text_len=512)


@pytest.fixture(scope="module")
def table():  # type: ignore[no-untyped-def]
    return calibration_table()


def test_every_record_is_predicted_as_before(table) -> None:  # type: ignore[no-untyped-def]
    """Each reference record's prediction (no stack) equals the pre-refactor figure to its printed
    precision (0.5% at most): adding the stacks and their fit moved none of them."""
    predicted = {row.record.id: row.predicted_seconds for row in table.rows if row.record.stack is None}
    assert set(predicted) == set(BEFORE)
    for record_id, seconds in BEFORE.items():
        assert predicted[record_id] == pytest.approx(seconds, abs=0.006), record_id


def _errors(table, stacked: bool) -> list[float]:  # type: ignore[no-untyped-def]
    rows = [row for row in table.rows if row.record.fitted and (row.record.stack is not None) == stacked]
    return [abs(row.error) * 100 for row in rows]


def test_fitted_records_keep_their_accuracy(table) -> None:  # type: ignore[no-untyped-def]
    """MAPE 4.5% and largest error 11.1% over the fitted reference records (C1–C8), as published in
    the docs; 3.8% and 9.5% over the 14 stack records; 4.2% and 11.1% over all 35."""
    reference = _errors(table, stacked=False)
    assert (round(sum(reference) / len(reference), 1), round(max(reference), 1)) == (4.5, 11.1)
    stacks = _errors(table, stacked=True)
    assert len(stacks) == 14
    assert (round(sum(stacks) / len(stacks), 1), round(max(stacks), 1)) == (3.8, 9.5)
    assert (round(table.mape, 1), round(table.max_abs_error, 1)) == (4.2, 11.1)


def test_each_stack_has_its_points_and_errors(table) -> None:  # type: ignore[no-untyped-def]
    """The per-stack summary the calibration command prints: points, MAPE, largest error."""
    summary = {s.stack: (s.points, round(s.mape, 1), round(s.max_abs_error, 1)) for s in table.by_stack()}
    assert summary == SUMMARY


def test_published_peak_memory(table) -> None:  # type: ignore[no-untyped-def]
    """Predicted peak memory per GPU of C1–C3 on one GPU: 69.16 / 75.46 / 8.85 GB (published
    69.1 / 76.7 / 8.19)."""
    peaks = {row.record.id: row.predicted_peak_gb for row in table.rows}
    assert peaks["C1x1"] == pytest.approx(69.16, abs=0.01)
    assert peaks["C2x1"] == pytest.approx(75.46, abs=0.01)
    assert peaks["C3x1"] == pytest.approx(8.85, abs=0.01)


def test_single_prediction_equals_the_table(table) -> None:  # type: ignore[no-untyped-def]
    """predict_record and the table read the same compiled output."""
    record = next(r for r in CALIBRATION.records if r.id == "C1x8")
    row = next(r for r in table.rows if r.record.id == "C1x8")
    assert predict_record(record, EFFICIENCIES) == pytest.approx(row.predicted_seconds, rel=1e-12)


def test_parents_are_own_plus_children_and_stages_add_up() -> None:
    """Every module's seconds are its own plus its children's; the stages add up to the total."""
    deployment = build_deployment("t2v-14b", accelerator="h100", gpus=8)
    model = run_model(deployment)
    values = model.evaluate_point(VIDEO_720P)
    for node in model.tree:
        children = sum(values[f"module.{child}"] for child in node.children)
        assert values[f"module.{node.id}"] == pytest.approx(values[f"own.{node.id}"] + children, rel=1e-9)
    stages = sum(values[f"stage.{stage}"] for stage in deployment.family.stages)
    assert stages == pytest.approx(values["total"], rel=1e-12)


def test_factors_are_inputs_not_constants() -> None:
    """A lower matmul factor slows the run through the same compiled function (no recompilation)."""
    deployment = build_deployment("t2v-14b", accelerator="h100", gpus=1, offload="none")
    model = run_model(deployment)
    base = model.evaluate_point(VIDEO_720P)["total"]
    slower = model.evaluate(VIDEO_720P, {"matmul": deployment.factors["matmul"] / 2})["total"]
    assert float(slower) > base
    assert run_model(deployment).function is model.function


def test_grid_equals_points() -> None:
    """A grid of workloads gives the same seconds as each point alone."""
    import numpy as np

    model = run_model(build_deployment("t2v-1.3b", accelerator="rtx4090", gpus=2))
    frames = np.array([17, 49, 81])
    grid = model.evaluate(Workload(batch=1, frames=frames, height=480, width=832, steps=50, text_len=512))[
        "total"
    ]
    for index, count in enumerate(frames):
        point = model.evaluate_point(
            Workload(batch=1, frames=int(count), height=480, width=832, steps=50, text_len=512)
        )
        assert grid[index] == pytest.approx(point["total"], rel=1e-12)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"gpus": 0}, r"^gpus: must be an integer in 1…1024 .*, got 0"),
        (
            {"gpus": 2, "parallelism": Parallelism(ulysses=4)},
            r"^parallelism: ulysses × ring = 4 × 1 = 4 must equal gpus = 2",
        ),
        (
            {"gpus": 8, "parallelism": Parallelism(ulysses=8)},
            r"^ulysses: 12 attention heads cannot be split 8 ways",
        ),
        ({"attention_kernel": "flash9"}, r"^attention_kernel: unknown kernel 'flash9'"),
        (
            {"accelerator": "a100", "attention_kernel": "fa3"},
            r"^attention_kernel: fa3 does not run on a100 \(ampere\); it runs on hopper",
        ),
        ({"offload": "disk"}, r"^offload: must be one of none, model, group, sequential; got 'disk'"),
        (
            {"accelerator": "a100", "precision": "fp8"},
            r"^precision: a100 has no 'fp8' tensor rate; supported: bf16, fp16",
        ),
        ({"gpus": 2, "offload": "group"}, r"^offload: group offloading streams one GPU's weights"),
        (
            {"gpus": 2, "t5_cpu": True, "t5_fsdp": True},
            r"^text_encoder_cpu: the text encoder on the CPU cannot",
        ),
    ],
)
def test_bad_deployments_name_the_field(options: dict[str, object], message: str) -> None:
    """A deployment the official code would reject is one error naming the field and what is accepted."""
    with pytest.raises(LlmPerfOptError, match=message):
        build_deployment("t2v-1.3b", **options)


def test_the_disk_cache_is_used_and_survives_corruption(tmp_path: Path) -> None:
    """A second process loads the cached engine; a corrupted entry is rebuilt, giving the same figures."""
    script = (
        "from llm_perf_opt.models import build_deployment\n"
        "from llm_perf_opt.deployment.engine import run_model\n"
        "from llm_perf_opt.symbolic.symbols import Workload\n"
        "m = run_model(build_deployment('t2v-1.3b', accelerator='h100', gpus=1))\n"
        "w = Workload(batch=1, frames=81, height=480, width=832, steps=50, text_len=512)\n"
        "print(repr(m.evaluate_point(w)['total']))\n"
    )
    env = {"PATH": "/usr/bin:/bin", CACHE_ENV: str(tmp_path)}

    def run() -> str:
        return subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    first = run()
    entries = sorted((tmp_path / "evaluators").glob("*.py"))
    assert entries, "the first process writes cache entries"
    assert not list((tmp_path / "evaluators").glob("*.tmp")), "no temporary file is left"
    assert run() == first
    for entry in entries:
        entry.write_text(entry.read_text()[:-40] + "garbage", encoding="utf-8")
    assert run() == first


def test_the_shipped_factors_are_the_fit() -> None:
    """A refit with scipy least squares reproduces the fitted factors of efficiencies.json (3 decimals)."""
    from llm_perf_opt.calibration import fit_efficiencies

    result = fit_efficiencies()
    for factor in CALIBRATION.free_factors:
        scope, key = factor.cells[0]
        assert result.values[factor.name] == pytest.approx(EFFICIENCIES.value(scope, key), abs=6e-4), (
            factor.name
        )


def test_a_cache_entry_of_another_output_count_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry whose key collides with another tree's (a key that does not determine the source) is
    rebuilt, not used: the evaluator always returns one value per expression."""
    import sympy

    from llm_perf_opt.symbolic.compiler import _lambdify_both
    from llm_perf_opt.symbolic.symbols import B, F

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    one = (B * F,)
    two = (B * F + 1, 2 * B)
    grid, _ = _lambdify_both(one, False, "same key")
    assert len(grid(*(1.0,) * 9)) == 1
    grid, exact = _lambdify_both(two, False, "same key")
    assert len(grid(*(1.0,) * 9)) == 2
    assert [int(v) for v in exact(*(sympy.Integer(2),) * 9)] == [5, 4]


def test_large_grids_are_evaluated_in_chunks_with_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """A grid larger than one chunk gives, bit for bit, what one whole-array evaluation gives."""
    import numpy as np

    from llm_perf_opt.deployment import engine

    model = run_model(build_deployment("t2v-1.3b", accelerator="rtx4090", gpus=2))
    grid = Workload(
        batch=np.array([1, 2])[:, None, None, None],
        frames=(4 * np.arange(41) + 1)[None, :, None, None],
        height=(16 * np.arange(15, 55))[None, None, :, None],
        width=(16 * np.arange(20, 45))[None, None, None, :],
        steps=50,
        text_len=512,
    )
    assert engine.CHUNK_POINTS < 2 * 41 * 40 * 25
    chunked = model.evaluate(grid, names=("total", "peak_memory"))
    monkeypatch.setattr(engine, "CHUNK_POINTS", 10**9)
    whole = model.evaluate(grid, names=("total", "peak_memory"))
    for name in ("total", "peak_memory"):
        assert chunked[name].shape == (2, 41, 40, 25)
        assert np.array_equal(chunked[name], whole[name])


def test_whatifs_are_inputs_of_the_compiled_run() -> None:
    """ρ, k and τ are inputs of the one compiled function: off they change nothing, reusing 25 of 50
    steps halves the transformer's time, and a bad value raises naming the field."""
    model = run_model(build_deployment("t2v-1.3b", accelerator="h100", gpus=1, offload="none"))
    video = Workload(batch=1, frames=81, height=480, width=832, steps=50, text_len=512)
    base = model.evaluate_point(video)
    off = model.evaluate_point(
        Workload(
            batch=1,
            frames=81,
            height=480,
            width=832,
            steps=50,
            text_len=512,
            attention_density=1,
            reused_steps=0,
            guided_fraction=1,
        )
    )
    assert off == base
    cached = model.evaluate_point(attrs.evolve(video, reused_steps=25))
    assert cached["stage.diffusion"] == pytest.approx(base["stage.diffusion"] / 2, rel=1e-12)
    assert cached["stage.text_encoder"] == base["stage.text_encoder"]
    sparse = model.evaluate(attrs.evolve(video, attention_density=np.array([0.25, 0.5, 1.0])))["total"]
    assert sparse[0] < sparse[1] < sparse[2] == pytest.approx(base["total"], rel=1e-12)
    with pytest.raises(LlmPerfOptError, match=r"^attention_density: expected a fraction in \(0, 1\]"):
        model.evaluate(attrs.evolve(video, attention_density=0))
    with pytest.raises(LlmPerfOptError, match=r"^reused_steps: expected 0 ≤ reused_steps < steps"):
        model.evaluate(attrs.evolve(video, reused_steps=50))
