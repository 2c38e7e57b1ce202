"""The public stack timings (``deployment/stacks/public_records.json``, none fitted) as calibration
records: the honest check of how the fitted model generalises to devices, GPU counts and stacks
it was not fitted on.

Each published record is read into a :class:`~llm_perf_opt.calibration.CalibrationRecord` that
runs its stack preset with the preset's defaults for the device and GPU count, except what the
publication states (:func:`published_record`): the attention kernel (``SageAttention2`` is the
int8-QK kernel with fp8 PV where the device has fp8 and SageAttention dispatches it, else fp16 PV;
``SageAttention2++`` int8 QK with fp8 PV; ``SageAttention3`` the fp4 kernel; ``FA3``; ``cuDNN
SDPA``), the GEMM precision (LightX2V's ``fp8-sgl``: per-channel fp8; FastVideo's FP8 and NVFP4
linear layers), block-wise CPU offload and ``torch.compile`` (also FlashDreams' "official" runner,
which compiles ``generate.py``). Records the model cannot express yet
are left out with the reason: step caching turned on (TeaCache and the other caches are what-ifs
outside the deployment), and a run decoded with another autoencoder than Wan's VAE.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

import numpy as np
from attrs import frozen

from llm_perf_opt.calibration import (
    CalibrationRecord,
    CalibrationRow,
    CalibrationTable,
    calibration_rows,
)
from llm_perf_opt.deployment.stacks import kernel_family
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import get_accelerator
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, EfficiencyTable

__all__ = ["PublicRecords", "public_records", "public_table", "published_record"]

_SAGE2: Final[Mapping[str, str]] = MappingProxyType(
    {"hopper": "sage-int8-fp8", "ada": "sage-int8-fp16", "blackwell-rtx": "sage-int8-fp16"}
)
"""``SageAttention2`` as the stacks bind it per kernel family: SageAttention's dispatcher runs int8
QK with fp8 PV on sm90; LightX2V binds the int8 / fp16 Triton kernel on sm89 and sm120
(``lightx2v/common/ops/attn/sage_attn.py``)."""
_KERNELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "SageAttention2++": "sage-int8-fp8",
        "SageAttention3 FP4": "sage3-fp4",
        "FA3": "fa3",
        "cuDNN SDPA": "sdpa-cudnn",
    }
)
_GEMMS: Final = (
    ("fp8 GEMM", "fp8-per-channel"),
    ("FP8 linear layers", "fp8-per-tensor"),
    ("NVFP4 linear layers", "nvfp4"),
)
"""Published precision phrases (their start) and the GEMM precision they run."""
_NOT_PRICED: Final = (
    ("After acceleration", "step caching on: cache reuse is a what-if outside the deployment"),
    ("+ TeaCache", "step caching on: cache reuse is a what-if outside the deployment"),
    ("TAEHV", "decoded with the TAEHV tiny autoencoder, not the Wan VAE"),
)
"""Phrases of a record's notes that mark a run the model does not express, with the reason."""


def _compiled_official(raw: Mapping[str, Any]) -> bool:
    """FlashDreams' "official" runner is ``generate.py`` patched to cuDNN SDPA and run under
    torch.compile (NVIDIA/flashdreams ``integrations_v2/wan21/tests/parity_check/README.md``)."""
    return raw.get("preset") == "official" and "NVIDIA/flashdreams" in str(raw.get("source", ""))


def published_record(raw: Mapping[str, Any]) -> CalibrationRecord | str:
    """The calibration record of one published stack timing, or why it cannot be predicted."""
    notes = str(raw.get("notes", ""))
    for phrase, reason in _NOT_PRICED:
        if phrase in notes:
            return reason
    device = get_accelerator(str(raw["gpu"]).lower().replace(" ", ""))
    stated = str(raw["attention_kernel"])
    kernel: str | None
    if stated == "SageAttention2":
        kernel = _SAGE2.get(kernel_family(device.name, device.family))
    else:
        kernel = _KERNELS.get(stated)
    precision = str(raw["precision"])
    gemm = next((name for phrase, name in _GEMMS if precision.startswith(phrase)), None)
    return CalibrationRecord(
        id=str(raw["id"]),
        source=f"{raw['source']} ({raw['row']}; confidence {raw['confidence']})",
        variant=str(raw["variant"]),
        stack=str(raw["preset"]),
        accelerator=device.name,
        gpus=int(raw["gpu_count"]),
        offload="group" if "CPU offload at block granularity" in notes else "none",
        attention_kernel=kernel,
        gemm_precision=gemm,
        fusion="torch-compile" if "torch.compile" in notes or _compiled_official(raw) else None,
        frames=int(raw["frames"]),
        height=int(raw["height"]),
        width=int(raw["width"]),
        steps=int(raw["steps"]),
        guidance=bool(raw["cfg"]),
        what_timed=str(raw["what_timed"]),
        measured_seconds=float(raw["seconds"]),
        fitted=False,
        confidence=str(raw["confidence"]),
        note=notes,
    )


@frozen(kw_only=True)
class PublicRecords:
    """The public records as calibration records, and those left out.

    Attributes:
        records: the records the model predicts.
        skipped: id → why a record is not predicted.
    """

    records: tuple[CalibrationRecord, ...]
    skipped: Mapping[str, str]


def public_records() -> PublicRecords:
    """Every public record, read (:func:`published_record`)."""
    text = (
        resources.files("llm_perf_opt.deployment.stacks").joinpath("public_records.json").read_text("utf-8")
    )
    records, skipped = [], {}
    for raw in json.loads(text)["records"]:
        read = published_record(raw)
        if isinstance(read, str):
            skipped[str(raw["id"])] = read
        else:
            records.append(read)
    return PublicRecords(records=tuple(records), skipped=MappingProxyType(skipped))


def public_table(efficiencies: EfficiencyTable = EFFICIENCIES) -> CalibrationTable:
    """The public records' predictions and errors; MAPE and the largest error over all of them
    (none is fitted)."""
    rows: tuple[CalibrationRow, ...] = calibration_rows(public_records().records, efficiencies)
    if not rows:
        raise LlmPerfOptError("records: no public record can be predicted")
    errors = [abs(row.error) * 100 for row in rows]
    return CalibrationTable(rows=rows, mape=float(np.mean(errors)), max_abs_error=float(max(errors)))
