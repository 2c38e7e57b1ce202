"""Accelerators as data: one row per device in ``accelerators.json``, each with its source.

The shipped file is the single source of every datasheet figure the time model uses. Peak rates
are dense (no 2:4 sparsity); ``fp32`` is the non-tensor (vector) rate and the tensor rates are at
FP32 accumulate, which is what PyTorch GEMMs and FlashAttention use (on GeForce cards that is half
the FP16-accumulate headline: the RTX 4090 row lists 165.2 TFLOP/s BF16, not 330). Users add or
replace devices with :func:`load_accelerators`, from a file of the same schema.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Final

import attrs
from attrs import field, frozen

from llm_perf_opt.contracts.converter import read_json, structure
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.validation import FieldError, Validator, integer, one_of, text

__all__ = [
    "ACCELERATORS",
    "FAMILIES",
    "PRECISIONS",
    "Accelerator",
    "AcceleratorFile",
    "get_accelerator",
    "load_accelerators",
]

PRECISIONS: Final = ("fp32", "tf32", "bf16", "fp16", "fp8", "fp4", "int8")
"""Peak-rate keys: ``fp32`` is the non-tensor rate, the others tensor-core rates (``int8`` in TOPS)."""
FAMILIES: Final = ("ampere", "hopper", "ada", "blackwell", "cdna3", "cdna4")
"""Device families; efficiency factors are given per family (see :mod:`.efficiency`)."""
VENDORS: Final = ("nvidia", "amd")

_TERA: Final = 1e12
_GIGA: Final = 1e9
_GIB: Final = 2**30


def _key(name: str) -> str:
    """Lookup key of a device name: case, spaces, underscores and a vendor prefix ignored."""
    key = re.sub(r"[\s_]+", "-", name.strip().lower())
    return re.sub(r"^(nvidia|amd|geforce)-", "", key)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number(minimum: float, *, allow_zero: bool = False) -> Validator:
    """A finite number > ``minimum`` (≥ with ``allow_zero``); booleans are not numbers."""
    bound = f"≥ {minimum:g}" if allow_zero else f"> {minimum:g}"

    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not _is_number(value) or value < minimum or (value == minimum and not allow_zero):
            raise FieldError((attribute.name,), f"must be a number {bound}, got {value!r}")

    return check


def _optional_power(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not _is_number(value) or value <= 0):
        raise FieldError((attribute.name,), f"must be a number > 0 (watts) or null, got {value!r}")


def _rates(_: object, attribute: attrs.Attribute[Any], value: Mapping[str, Any]) -> None:
    for precision, rate in value.items():
        if precision not in PRECISIONS:
            raise FieldError(
                (attribute.name, precision), f"unknown precision; accepted: {', '.join(PRECISIONS)}"
            )
        if not _is_number(rate) or rate <= 0:
            raise FieldError((attribute.name, precision), f"must be a number > 0, got {rate!r}")
    if "fp32" not in value:
        raise FieldError(
            (attribute.name, "fp32"), "required (the non-tensor rate element-wise work runs at), missing"
        )


def _names(_: object, attribute: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for index, name in enumerate(value):
        if not isinstance(name, str) or not name.strip():
            raise FieldError((attribute.name, str(index)), f"must be a non-empty string, got {name!r}")


def _frozen_rates(rates: Mapping[str, float]) -> Mapping[str, float]:
    """The rates in the order of :data:`PRECISIONS` (unknown keys last, for the validator to name)."""
    return MappingProxyType({p: rates[p] for p in PRECISIONS if p in rates} | dict(rates))


def _canonical_names(names: object) -> tuple[str, ...]:
    return tuple(_key(n) if isinstance(n, str) else n for n in names)  # type: ignore[attr-defined]


@frozen(kw_only=True, eq=False)
class Accelerator:
    """One accelerator's datasheet figures (a row of ``accelerators.json``).

    Attributes:
        name: canonical id (``h100-sxm``).
        display_name: the product name.
        aliases: other ids :func:`get_accelerator` accepts (``h100``).
        vendor: ``nvidia`` or ``amd``.
        family: one of :data:`FAMILIES`; selects the efficiency factors.
        peak_tflops: dense peak rate per precision of :data:`PRECISIONS`, in TFLOP/s; only the
            precisions the device has (``fp32`` always).
        memory_gb: memory capacity as the vendor states it (a binary size: GiB).
        memory_bandwidth_tbps: memory bandwidth in TB/s (10¹² bytes/s).
        link_kind: the GPU-GPU interconnect (``NVLink4``), ``none`` without one.
        link_gbps_per_direction: GPU-GPU bandwidth per GPU and direction in GB/s (half the
            bidirectional headline); 0 without a link.
        link_group_size: GPUs the link connects all-to-all (8 on an NVSwitch baseboard, 2 for a
            bridge, 0 without a link); larger groups go through the host link.
        host_link_kind: the link to the host (``PCIe Gen5 x16``).
        host_link_gbps_per_direction: host-link bandwidth per direction in GB/s.
        board_power_w: the vendor's maximum board or module power in W (energy estimates are
            upper bounds), ``None`` where not published.
        source: where the figures come from.
    """

    name: str = field(converter=_key, validator=text())
    display_name: str = field(
        default=attrs.Factory(lambda self: self.name, takes_self=True), validator=text()
    )
    aliases: tuple[str, ...] = field(default=(), converter=_canonical_names, validator=_names)
    vendor: str = field(default="nvidia", validator=one_of(VENDORS))
    family: str = field(validator=one_of(FAMILIES))
    peak_tflops: Mapping[str, float] = field(validator=_rates, converter=_frozen_rates)
    memory_gb: float = field(validator=_number(0.0))
    memory_bandwidth_tbps: float = field(validator=_number(0.0))
    link_gbps_per_direction: float = field(validator=_number(0.0, allow_zero=True))
    link_kind: str = field(
        default=attrs.Factory(
            lambda self: "link" if self.link_gbps_per_direction else "none", takes_self=True
        ),
        validator=text(),
    )
    link_group_size: int = field(
        default=attrs.Factory(lambda self: 8 if self.link_gbps_per_direction else 0, takes_self=True),
        validator=integer(0),
    )
    host_link_kind: str = field(default="PCIe", validator=text())
    host_link_gbps_per_direction: float = field(validator=_number(0.0))
    board_power_w: float | None = field(default=None, validator=_optional_power)
    source: str = field(validator=text())

    def __attrs_post_init__(self) -> None:
        if (self.link_gbps_per_direction > 0) != (self.link_group_size > 1):
            raise FieldError(
                ("link_group_size",),
                "must be ≥ 2 when link_gbps_per_direction > 0 and 0 without a link, got "
                f"{self.link_group_size} with link_gbps_per_direction {self.link_gbps_per_direction:g}",
            )

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


@frozen(kw_only=True)
class AcceleratorFile:
    """The schema of ``accelerators.json`` and of a user's device file.

    Attributes:
        schema_version: 1.
        conventions: how the figures are to be read.
        accelerators: the devices; names and aliases unique.
    """

    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: int = field(default=1, validator=integer(1))
    conventions: str = ""
    accelerators: tuple[Accelerator, ...] = field()

    def __attrs_post_init__(self) -> None:
        if self.schema_version != self.SCHEMA_VERSION:
            raise FieldError(
                ("schema_version",), f"must be {self.SCHEMA_VERSION}, got {self.schema_version!r}"
            )
        if not self.accelerators:
            raise FieldError(("accelerators",), "must be a non-empty list of devices, got []")
        seen: dict[str, int] = {}
        for index, device in enumerate(self.accelerators):
            for key in dict.fromkeys((device.name, *device.aliases)):
                if key in seen:
                    raise FieldError(
                        ("accelerators", str(index)),
                        f"name or alias {key!r} used by both rows {seen[key]} and {index}; "
                        "expected unique names",
                    )
                seen[key] = index


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
    parsed = structure(json.loads(text), AcceleratorFile, where="built-in accelerators.json")
    return _merge({}, list(parsed.accelerators))


ACCELERATORS: Final[Mapping[str, Accelerator]] = _builtin()
"""The shipped devices, keyed by canonical name."""


def load_accelerators(
    path: str | Path, base: Mapping[str, Accelerator] = ACCELERATORS
) -> Mapping[str, Accelerator]:
    """``base`` with the devices of the JSON file ``path`` added or replacing the known ones.

    The file has the schema of the shipped ``accelerators.json`` (:class:`AcceleratorFile`). A row
    whose name or alias matches a known device's name or alias replaces that device. Every problem
    is an :class:`LlmPerfOptError` naming the file, the field and the bad value.
    """
    parsed = structure(read_json(path), AcceleratorFile, where=str(path))
    return _merge(base, list(parsed.accelerators))


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
