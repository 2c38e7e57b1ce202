"""Calibration: C1–C8 within tolerance, a reproducible fit, and the pipeline hook."""

from __future__ import annotations

import pytest
from attrs import evolve

from llm_perf_opt.hardware.calibration import (
    DIT_POINTS,
    FREE_FACTORS,
    PIPELINE_FREE_FACTORS,
    PIPELINE_RECORDS,
    RECORDS,
    CalibrationTable,
    FitResult,
    PipelineRecord,
    _fast_predict,
    calibration_table,
    dit_only_seconds,
    fit_efficiencies,
    predict_point,
    predict_record,
)
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, EfficiencyTable


@pytest.fixture(scope="module")
def table() -> CalibrationTable:
    return calibration_table()


@pytest.fixture(scope="module")
def refit() -> FitResult:
    return fit_efficiencies()


def test_every_point_is_within_tolerance(table: CalibrationTable) -> None:
    """Each of C1–C8 (18 points) is predicted within 25% (the requirement), all but two within 10%
    (the aim: C8 and C1 on 8 GPUs miss it by about a point), with a MAPE under 5%."""
    fitted = [row for row in table.rows if row.fitted]
    expected = {point.id for point in DIT_POINTS} | {
        f"{record.id}x{gpus}" for record in PIPELINE_RECORDS for gpus in record.gpus
    }
    assert {row.id for row in fitted} == expected
    errors = {row.id: abs(row.error or 0) for row in fitted}
    assert max(errors.values()) < 0.25
    assert sorted(name for name, error in errors.items() if error >= 0.10) == ["C1x8", "C8"]
    assert max(errors.values()) < 0.12
    assert table.mape < 5.0
    assert table.max_abs_error == pytest.approx(max(errors.values()) * 100)


def test_the_fit_reproduces_the_shipped_factors(refit: FitResult) -> None:
    """Refitting from the priors gives the factors shipped in efficiencies.json (to 3 decimals)."""
    for factor in PIPELINE_FREE_FACTORS:
        for scope, key in factor.cells:
            assert round(refit.values[factor.name], 3) == EFFICIENCIES.value(scope, key), (
                factor.name,
                scope,
            )
        assert factor.lower <= refit.values[factor.name] <= factor.upper


def test_the_fit_lands_near_the_kernel_measurements(refit: FitResult) -> None:
    """Factors with a kernel-measurement prior stay within a factor 1.3 of it; the assumed ones
    (convolutions, the GeForce host link) stay in their bounds."""
    for factor in PIPELINE_FREE_FACTORS:
        value = refit.values[factor.name]
        if factor.confidence == 1.0:
            assert 1 / 1.3 < value / factor.prior < 1.3, factor.name
        else:
            assert factor.lower <= value <= factor.upper


def test_the_transformer_only_fit_is_still_available() -> None:
    """Without the pipeline predictor the fit uses C4–C8 and the transformer's factors only."""
    result = fit_efficiencies(pipeline_predictor=None)
    assert set(result.values) == {factor.name for factor in FREE_FACTORS}
    assert set(result.residuals) == {point.id for point in DIT_POINTS}


def test_the_shipped_pipeline_predictor_is_the_whole_run_model() -> None:
    """The default hook predicts C1 on one GPU as the whole run: more than the transformer alone."""
    c1 = PIPELINE_RECORDS[0]
    assert predict_record(c1, 1) > dit_only_seconds(c1, 1)


def test_fast_and_compiled_predictions_agree() -> None:
    """The fit's numeric terms and the compiled time model give the same prediction."""
    for point in DIT_POINTS:
        assert _fast_predict(point, EFFICIENCIES) == pytest.approx(predict_point(point), rel=1e-9)


def test_group_offload_is_overlapped_and_does_not_bind_c5() -> None:
    """Streaming 28.6 GB over PCIe Gen4 (~1.1 s) hides behind the ~13 s forward on the RTX 4090."""
    c5 = next(point for point in DIT_POINTS if point.id == "C5")
    no_offload = evolve(c5, offload="none")
    assert predict_point(c5) == pytest.approx(predict_point(no_offload))


def test_records_are_kept_with_their_settings(table: CalibrationTable) -> None:
    """C1–C3 keep every GPU column with flags, degrees and presumptions; compiled runs are shown but
    not fitted; without a predictor the records are listed as pending."""
    assert [record.id for record in PIPELINE_RECORDS] == ["C1", "C2", "C3"]
    for record in PIPELINE_RECORDS:
        columns = (
            record.measured_seconds,
            record.measured_peak_gb,
            record.settings,
            record.ulysses,
            record.ring,
            record.fsdp,
            record.t5_fsdp,
            record.offload,
            record.t5_cpu,
        )
        assert all(len(column) == len(record.gpus) for column in columns)
        assert "FlashAttention-2" in record.presumptions
    c3 = PIPELINE_RECORDS[2]
    assert (c3.ulysses[-1], c3.ring[-1]) == (1, 8) and c3.t5_cpu[0]
    predicted = [row for row in table.rows if row.id.startswith("C1x")]
    assert all(row.predicted_seconds is not None and row.fitted for row in predicted)
    assert all(row.dit_only_seconds is not None and row.dit_only_seconds > 0 for row in predicted)
    assert {row.id for row in table.rows if not row.fitted} == {point.id for point in RECORDS}
    pending = calibration_table(pipeline_predictor=None)
    rows = [row for row in pending.rows if row.id.startswith("C2x")]
    assert all(row.predicted_seconds is None and row.note.startswith("pending") for row in rows)


def test_dit_only_share_scales_down_with_gpus() -> None:
    """The transformer's share of C1 falls with each doubling of GPUs."""
    c1 = PIPELINE_RECORDS[0]
    shares = [dit_only_seconds(c1, gpus) for gpus in c1.gpus]
    assert shares == sorted(shares, reverse=True)


def test_a_pipeline_predictor_fills_the_end_to_end_rows() -> None:
    """With the pipeline layer's hook, C1–C3 columns are predicted, fitted and counted in the MAPE."""
    calls: list[tuple[str, int]] = []

    def predictor(record: PipelineRecord, gpus: int, efficiencies: EfficiencyTable) -> float:
        calls.append((record.id, gpus))
        return record.measured_seconds[record.gpus.index(gpus)] * 1.1

    table = calibration_table(pipeline_predictor=predictor)
    rows = {row.id: row for row in table.rows}
    assert rows["C2x4"].error == pytest.approx(0.1)
    assert rows["C2x4"].fitted
    assert len(calls) == 12


def test_a_pipeline_predictor_joins_the_fit_with_the_convolution_factors() -> None:
    """With the hook filled, the fit adds C1–C3 columns and frees the convolution factors."""

    def predictor(record: PipelineRecord, gpus: int, efficiencies: EfficiencyTable) -> float:
        family = "ada" if record.accelerator == "rtx4090" else "hopper"
        # a stand-in whose end-to-end time is right when the convolution factor is 0.4
        factor = efficiencies.value(f"family:{family}", "convolution")
        return record.measured_seconds[record.gpus.index(gpus)] * 0.4 / factor

    result = fit_efficiencies(pipeline_predictor=predictor)
    assert "C1x8" in result.residuals and "C6" in result.residuals
    assert result.values["hopper.convolution"] == pytest.approx(0.4, rel=0.02)
    assert result.values["ada.convolution"] == pytest.approx(0.4, rel=0.05)


def test_the_command_prints_the_table_and_the_refit(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m llm_perf_opt.hardware --fit`` prints every point, the MAPE and the refitted factors."""
    from llm_perf_opt.hardware.__main__ import main

    assert main(["--fit"]) == 0
    out = capsys.readouterr().out
    assert "C7-fa3" in out and "C3x8" in out and "MAPE over the fitted points" in out
    assert "hopper.attention.fa3" in out and "ada.host_link" in out
