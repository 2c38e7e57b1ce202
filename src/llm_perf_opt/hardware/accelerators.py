"""Accelerators as data: one row per device in ``accelerators.json``, each with its source.

The shipped file is the single source of every datasheet figure the time model uses. Peak rates
are dense (no 2:4 sparsity); ``fp32`` is the non-tensor (vector) rate and the tensor rates are at
FP32 accumulate, which is what PyTorch GEMMs and FlashAttention use (on GeForce cards that is half
the FP16-accumulate headline: the RTX 4090 row lists 165.2 TFLOP/s BF16, not 330). Users add or
replace devices with :func:`load_accelerators`, from a file of the same schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware._json import (
    read_json_object,
    require_fields,
    require_int,
    require_number,
    require_object,
    require_text,
    require_texts,
)

__all__ = [
    "ACCELERATORS",
    "FAMILIES",
    "PRECISIONS",
    "Accelerator",
    "get_accelerator",
    "load_accelerators",
]

PRECISIONS: Final = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp4")
"""Peak-rate keys: ``fp32`` is the non-tensor rate, the others tensor-core rates."""
FAMILIES: Final = ("ampere", "hopper", "ada", "blackwell", "cdna3")
"""Device families; efficiency factors are given per family (see :mod:`.efficiency`)."""
VENDORS: Final = ("nvidia", "amd")

_TERA: Final = 1e12
_GIGA: Final = 1e9
_GIB: Final = 2**30

_REQUIRED: Final = (
    "name",
    "family",
    "peak_tflops",
    "memory_gb",
    "memory_bandwidth_tbps",
    "link_gbps_per_direction",
    "host_link_gbps_per_direction",
    "source",
)
_OPTIONAL: Final = ("display_name", "aliases", "vendor", "link_kind", "link_group_size", "host_link_kind")


def _frozen_rates(rates: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(rates))


@frozen(kw_only=True, eq=False)
class Accelerator:
    """One accelerator's datasheet figures.

    Attributes:
        name: canonical id (``h100-sxm``).
        display_name: the product name.
        aliases: other ids :func:`get_accelerator` accepts (``h100``).
        vendor: ``nvidia`` or ``amd``.
        family: one of :data:`FAMILIES`; selects the efficiency factors.
        peak_tflops: dense peak rate per precision of :data:`PRECISIONS`, in TFLOP/s; only the
            precisions the device has.
        memory_gb: memory capacity as the vendor states it (a binary size: GiB).
        memory_bandwidth_tbps: memory bandwidth in TB/s (10¹² bytes/s).
        link_kind: the GPU-GPU interconnect (``NVLink4``), ``none`` without one.
        link_gbps_per_direction: GPU-GPU bandwidth per GPU and direction in GB/s (half the
            bidirectional headline); 0 without a link.
        link_group_size: GPUs the link connects all-to-all (8 on an NVSwitch baseboard, 2 for a
            bridge, 0 without a link); larger groups go through the host link.
        host_link_kind: the link to the host (``PCIe Gen5 x16``).
        host_link_gbps_per_direction: host-link bandwidth per direction in GB/s.
        source: where the figures come from.
    """

    name: str
    display_name: str
    aliases: tuple[str, ...] = ()
    vendor: str
    family: str
    peak_tflops: Mapping[str, float] = field(converter=_frozen_rates)
    memory_gb: float
    memory_bandwidth_tbps: float
    link_kind: str
    link_gbps_per_direction: float
    link_group_size: int
    host_link_kind: str
    host_link_gbps_per_direction: float
    source: str

    @property
    def precisions(self) -> tuple[str, ...]:
        """The precisions this device has a peak rate for, in the order of :data:`PRECISIONS`."""
        return tuple(p for p in PRECISIONS if p in self.peak_tflops)

    def supports(self, precision: str) -> bool:
        """Whether the device has a peak rate for ``precision``."""
        return precision in self.peak_tflops

    def peak_flops(self, precision: str) -> float:
        """Dense peak rate at ``precision`` in FLOP/s; raises listing the supported precisions."""
        try:
            return self.peak_tflops[precision] * _TERA
        except KeyError:
            raise LlmPerfOptError(
                f"precision: {self.name} has no {precision!r} rate; supported: {', '.join(self.precisions)}"
            ) from None

    @property
    def memory_bytes(self) -> int:
        """Memory capacity in bytes (``memory_gb`` GiB)."""
        return round(self.memory_gb * _GIB)

    @property
    def memory_bandwidth(self) -> float:
        """Memory bandwidth in bytes/s."""
        return self.memory_bandwidth_tbps * _TERA

    @property
    def link_bandwidth(self) -> float:
        """GPU-GPU bandwidth per direction in bytes/s (0 without a link)."""
        return self.link_gbps_per_direction * _GIGA

    @property
    def host_link_bandwidth(self) -> float:
        """Host-link bandwidth per direction in bytes/s."""
        return self.host_link_gbps_per_direction * _GIGA


def _key(name: str) -> str:
    """Lookup key of a device name: case, spaces, underscores and a vendor prefix ignored."""
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    return re.sub(r"^(nvidia|amd|geforce)-", "", key)


def _parse_row(where: str, row: object) -> Accelerator:
    data = require_object(where, row)
    require_fields(where, data, _REQUIRED, _OPTIONAL)
    name = require_text(f"{where}.name", data["name"])
    family = require_text(f"{where}.family", data["family"])
    if family not in FAMILIES:
        raise LlmPerfOptError(f"{where}.family: must be one of {', '.join(FAMILIES)}, got {family!r}")
    vendor = require_text(f"{where}.vendor", data.get("vendor", "nvidia"))
    if vendor not in VENDORS:
        raise LlmPerfOptError(f"{where}.vendor: must be one of {', '.join(VENDORS)}, got {vendor!r}")
    rates_data = require_object(f"{where}.peak_tflops", data["peak_tflops"])
    unknown = sorted(set(rates_data) - set(PRECISIONS))
    if unknown:
        raise LlmPerfOptError(
            f"{where}.peak_tflops.{unknown[0]}: unknown precision; accepted: {', '.join(PRECISIONS)}"
        )
    if "fp32" not in rates_data:
        raise LlmPerfOptError(
            f"{where}.peak_tflops.fp32: required (the non-tensor rate element-wise work runs at), missing"
        )
    rates: dict[str, float] = {
        p: require_number(f"{where}.peak_tflops.{p}", rates_data[p]) for p in PRECISIONS if p in rates_data
    }
    link = require_number(
        f"{where}.link_gbps_per_direction", data["link_gbps_per_direction"], allow_zero=True
    )
    group = require_int(f"{where}.link_group_size", data.get("link_group_size", 8 if link else 0))
    if (link > 0) != (group > 1):
        raise LlmPerfOptError(
            f"{where}.link_group_size: must be ≥ 2 when link_gbps_per_direction > 0 and 0 without a link, "
            f"got {group} with link_gbps_per_direction {link:g}"
        )
    return Accelerator(
        name=_key(name),
        display_name=require_text(f"{where}.display_name", data.get("display_name", name)),
        aliases=tuple(_key(a) for a in require_texts(f"{where}.aliases", data.get("aliases", []))),
        vendor=vendor,
        family=family,
        peak_tflops=rates,
        memory_gb=require_number(f"{where}.memory_gb", data["memory_gb"]),
        memory_bandwidth_tbps=require_number(f"{where}.memory_bandwidth_tbps", data["memory_bandwidth_tbps"]),
        link_kind=require_text(f"{where}.link_kind", data.get("link_kind", "none" if not link else "link")),
        link_gbps_per_direction=link,
        link_group_size=group,
        host_link_kind=require_text(f"{where}.host_link_kind", data.get("host_link_kind", "PCIe")),
        host_link_gbps_per_direction=require_number(
            f"{where}.host_link_gbps_per_direction", data["host_link_gbps_per_direction"]
        ),
        source=require_text(f"{where}.source", data["source"]),
    )


def _parse_file(where: str, data: Mapping[str, Any]) -> list[Accelerator]:
    require_fields(where, data, ("accelerators",), ("schema_version", "conventions"))
    version = data.get("schema_version", 1)
    if version != 1:
        raise LlmPerfOptError(f"{where}.schema_version: must be 1, got {version!r}")
    rows = data["accelerators"]
    if not isinstance(rows, list) or not rows:
        raise LlmPerfOptError(f"{where}.accelerators: must be a non-empty list of devices, got {rows!r}")
    parsed = [_parse_row(f"{where}.accelerators[{i}]", row) for i, row in enumerate(rows)]
    seen: dict[str, int] = {}
    for index, device in enumerate(parsed):
        for key in dict.fromkeys((device.name, *device.aliases)):
            if key in seen:
                raise LlmPerfOptError(
                    f"{where}.accelerators[{index}]: name or alias {key!r} used by both rows {seen[key]} "
                    f"and {index}; expected unique names"
                )
            seen[key] = index
    return parsed


def _merge(base: Mapping[str, Accelerator], rows: list[Accelerator]) -> Mapping[str, Accelerator]:
    merged = dict(base)
    for device in rows:
        for key in (device.name, *device.aliases):
            replaced = _find(merged, key)
            if replaced is not None:
                del merged[replaced.name]
        merged[device.name] = device
    return MappingProxyType(merged)


def _find(catalog: Mapping[str, Accelerator], key: str) -> Accelerator | None:
    for device in catalog.values():
        if key == device.name or key in device.aliases:
            return device
    return None


def _builtin() -> Mapping[str, Accelerator]:
    text = resources.files("llm_perf_opt.hardware").joinpath("accelerators.json").read_text("utf-8")
    return _merge({}, _parse_file("built-in accelerators.json", json.loads(text)))


ACCELERATORS: Final[Mapping[str, Accelerator]] = _builtin()
"""The shipped devices, keyed by canonical name."""


def load_accelerators(
    path: str | Path, base: Mapping[str, Accelerator] = ACCELERATORS
) -> Mapping[str, Accelerator]:
    """``base`` with the devices of the JSON file ``path`` added or replacing the known ones.

    The file has the schema of the shipped ``accelerators.json``: ``{"accelerators": [row, …]}``.
    A row whose name or alias matches a known device's name or alias replaces that device. Every
    problem is an :class:`LlmPerfOptError` naming the file, the field and the bad value.
    """
    return _merge(base, _parse_file(str(path), read_json_object(path)))


def get_accelerator(name: str, catalog: Mapping[str, Accelerator] = ACCELERATORS) -> Accelerator:
    """The device called ``name`` or one of its aliases (case, spaces and a vendor prefix ignored).

    An unknown name is an error that lists the known devices.
    """
    if not isinstance(name, str) or not name.strip():
        raise LlmPerfOptError(f"accelerator: must be a device name, got {name!r}")
    found = _find(catalog, _key(name))
    if found is None:
        raise LlmPerfOptError(f"accelerator: unknown device {name!r}; known: {', '.join(catalog)}")
    return found
