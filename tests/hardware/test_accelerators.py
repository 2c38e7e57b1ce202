"""The accelerator table: every device of the reference with a source, lookups, and override files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import (
    ACCELERATORS,
    FAMILIES,
    PRECISIONS,
    get_accelerator,
    load_accelerators,
)

# The devices of the reference datasheet table, by canonical name, with their family.
EXPECTED_DEVICES = {
    "a100": "ampere",
    "a800": "ampere",
    "h100-sxm": "hopper",
    "h100-pcie": "hopper",
    "h800": "hopper",
    "h20": "hopper",
    "h200": "hopper",
    "l40s": "ada",
    "l20": "ada",
    "rtx4090": "ada",
    "rtx5090": "blackwell",
    "b200": "blackwell",
    "gb200": "blackwell",
    "mi300x": "cdna3",
    "mi325x": "cdna3",
}


def test_every_reference_device_is_listed_with_a_family_and_a_source() -> None:
    """All 15 devices of the datasheet table are rows, each with its family and a source string."""
    assert set(EXPECTED_DEVICES) <= set(ACCELERATORS)
    for name, device in ACCELERATORS.items():
        if name not in EXPECTED_DEVICES:
            continue
        assert device.family == EXPECTED_DEVICES[name]
        assert device.family in FAMILIES
        assert len(device.source) > 40, name
        assert device.supports("fp32") and device.supports("bf16")


@pytest.mark.parametrize(
    ("name", "precision", "tflops"),
    [
        ("h100-sxm", "bf16", 989),
        ("h100-sxm", "fp8", 1979),
        ("h100-pcie", "bf16", 756),
        ("h20", "bf16", 148),
        ("a100", "tf32", 156),
        # GeForce rule: BF16 with FP32 accumulate runs at half the FP16-accumulate headline (330.3)
        ("rtx4090", "bf16", 165.2),
        ("rtx5090", "fp4", 1676),
        ("b200", "bf16", 2250),
        ("mi300x", "bf16", 1307.4),
    ],
)
def test_dense_peak_rates(name: str, precision: str, tflops: float) -> None:
    """Peak rates are the dense datasheet figures, returned in FLOP/s."""
    assert get_accelerator(name).peak_flops(precision) == pytest.approx(tflops * 1e12)


def test_units_of_memory_and_links() -> None:
    """Capacity is in GiB, bandwidth in TB/s, links per direction in GB/s (half the headline)."""
    h100 = get_accelerator("h100")
    assert h100.memory_bytes == 80 * 2**30
    assert h100.memory_bandwidth == pytest.approx(3.35e12)
    # NVLink4: 900 GB/s bidirectional = 450 GB/s per direction
    assert h100.link_bandwidth == pytest.approx(450e9)
    assert h100.host_link_bandwidth == pytest.approx(64e9)
    assert get_accelerator("4090").link_bandwidth == 0


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("H100", "h100-sxm"),
        ("NVIDIA H100", "h100-sxm"),
        ("h100_sxm5", "h100-sxm"),
        ("4090", "rtx4090"),
        ("RTX 4090", "rtx4090"),
        ("geforce rtx 4090", "rtx4090"),
        ("H800", "h800"),
        ("AMD MI300X", "mi300x"),
    ],
)
def test_aliases(alias: str, name: str) -> None:
    """Names are found by alias, ignoring case, spaces, underscores and a vendor prefix."""
    assert get_accelerator(alias).name == name


def test_unknown_device_lists_the_known_ones() -> None:
    """An unknown name is an error that names it and lists every known device."""
    with pytest.raises(LlmPerfOptError, match=r"accelerator: unknown device 'tpu-v5'; known: a100, a800"):
        get_accelerator("tpu-v5")


@pytest.mark.parametrize(
    ("name", "precision", "supported"),
    [
        ("a100", "fp8", "fp32, tf32, bf16, fp16"),
        ("h100", "fp4", "fp32, tf32, bf16, fp16, fp8"),
        ("mi300x", "fp4", "fp32, tf32, bf16, fp16, fp8"),
    ],
)
def test_unsupported_precision_lists_the_supported_ones(name: str, precision: str, supported: str) -> None:
    """A precision the device lacks is an error that lists the precisions it has."""
    with pytest.raises(
        LlmPerfOptError, match=rf"precision: .* no '{precision}' rate; supported: {supported}$"
    ):
        get_accelerator(name).peak_flops(precision)


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": "my-gpu",
        "family": "hopper",
        "peak_tflops": {"fp32": 50, "bf16": 800},
        "memory_gb": 64,
        "memory_bandwidth_tbps": 3.0,
        "link_gbps_per_direction": 300,
        "host_link_gbps_per_direction": 64,
        "source": "vendor sheet",
    }
    row.update(changes)
    return row


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "devices.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_file_adds_a_device_and_replaces_a_known_one(tmp_path: Path) -> None:
    """A user file adds new devices and replaces a known device named by one of its aliases."""
    path = _write(
        tmp_path,
        {"accelerators": [_row(), _row(name="h100", peak_tflops={"fp32": 60, "bf16": 900})]},
    )
    catalog = load_accelerators(path)
    assert get_accelerator("my-gpu", catalog).peak_flops("bf16") == 800e12
    assert get_accelerator("h100", catalog).peak_flops("bf16") == 900e12
    assert "h100-sxm" not in catalog
    assert get_accelerator("h100", ACCELERATORS).peak_flops("bf16") == 989e12
    assert len(catalog) == len(ACCELERATORS) + 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], r"devices.json: <document>: must be a JSON object for AcceleratorFile, got \[\]"),
        ({"devices": []}, r"devices.json: accelerators: required field is missing"),
        ({"accelerators": []}, r"devices.json: accelerators: must be a non-empty list"),
        (
            {"accelerators": [_row(colour="green")]},
            r"accelerators.0.colour: unknown field; accepted: name",
        ),
        (
            {"accelerators": [{k: v for k, v in _row().items() if k != "source"}]},
            r"accelerators.0.source: required field is missing",
        ),
        (
            {"accelerators": [_row(memory_gb=-1)]},
            r"accelerators.0.memory_gb: must be a number > 0, got -1",
        ),
        ({"accelerators": [_row(memory_gb="80")]}, r"memory_gb: must be a number, got '80'"),
        ({"accelerators": [_row(family="volta")]}, r"family: must be one of ampere, hopper, .*; got 'volta'"),
        (
            {"accelerators": [_row(peak_tflops={"fp32": 1, "int4": 2})]},
            r"peak_tflops.int4: unknown precision; accepted: " + ", ".join(PRECISIONS),
        ),
        ({"accelerators": [_row(peak_tflops={"bf16": 2})]}, r"peak_tflops.fp32: required"),
        (
            {"accelerators": [_row(peak_tflops={"fp32": 1, "bf16": 0})]},
            r"peak_tflops.bf16: must be a number > 0",
        ),
        (
            {"accelerators": [_row(link_gbps_per_direction=0, link_group_size=8)]},
            r"link_group_size: must be ≥ 2 when link_gbps_per_direction > 0 and 0 without a link",
        ),
        ({"accelerators": [_row(), _row()]}, r"name or alias 'my-gpu' used by both"),
        ({"schema_version": 2, "accelerators": [_row()]}, r"schema_version: must be 1, got 2"),
    ],
)
def test_override_file_errors_name_the_field(tmp_path: Path, data: object, message: str) -> None:
    """Every problem in a user file is an error naming the file, the field and the bad value."""
    with pytest.raises(LlmPerfOptError, match=message):
        load_accelerators(_write(tmp_path, data))


def test_unreadable_files(tmp_path: Path) -> None:
    """A missing file and a file that is not JSON are errors naming the path."""
    with pytest.raises(LlmPerfOptError, match=r"cannot read '.*missing.json'"):
        load_accelerators(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(LlmPerfOptError, match=r"bad.json': not valid JSON"):
        load_accelerators(bad)
