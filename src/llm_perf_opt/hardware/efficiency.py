"""Efficiency factors as data: the fraction of a peak each class of kernel reaches, per device family.

The roofline divides work by ``peak × factor``. Factors are given per device family (rows of the
shipped ``efficiencies.json``), with per-device overrides where a kernel measurement of that very
device exists (H20, L20, RTX 4090, RTX 5090: compute-starved parts run attention near peak while
H100-class parts do not, so one family factor would be wrong for them). Every row carries the
basis of its numbers: published kernel measurements as priors (FlashAttention and SageAttention
kernel measurements, quoted in docs/hardware.md), and for the factors the calibration fits
(:mod:`.calibration`) the fitted value, which that module reproduces.

Factor keys (:data:`FACTOR_KEYS`), all fractions in (0, 1]:

- ``matmul``: of the tensor peak at the op's precision, for ``mm``/``addmm``/``bmm``/``baddbmm``;
- ``convolution``: likewise for ``convolution``;
- ``attention.<kernel>``: of the tensor peak, for fused attention run by ``kernel`` (``sdpa``:
  PyTorch ``scaled_dot_product_attention``, ``fa2``: FlashAttention-2, ``fa3``: FlashAttention-3);
  a family lists only the kernels that run on it;
- ``memory_tensor``: of the memory bandwidth, for the memory-bound side of the ops above
  (weight streaming of skinny GEMMs);
- ``memory_elementwise``: of the memory bandwidth, for element-wise kernels (casts, norms,
  activations, rotary embedding, residual adds) as PyTorch eager runs them, unfused;
- ``vector``: of the non-tensor fp32 rate, for element-wise arithmetic (never binding in Wan2.1);
- ``link``: of the GPU-GPU bandwidth per direction, for collectives;
- ``host_link``: of the host-link bandwidth per direction, for offload copies and for collectives
  of GPUs without a GPU-GPU link.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from attrs import evolve, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware._json import (
    read_json_object,
    require_fields,
    require_fraction,
    require_object,
    require_text,
)
from llm_perf_opt.hardware.accelerators import FAMILIES, Accelerator

__all__ = [
    "ATTENTION_KERNELS",
    "EFFICIENCIES",
    "FACTOR_KEYS",
    "Efficiency",
    "EfficiencyTable",
    "load_efficiencies",
]

ATTENTION_KERNELS: Final = ("sdpa", "fa2", "fa3")
"""Fused attention kernels with an efficiency factor: PyTorch SDPA, FlashAttention-2 and -3."""
_PLAIN_KEYS: Final = (
    "matmul",
    "convolution",
    "memory_tensor",
    "memory_elementwise",
    "vector",
    "link",
    "host_link",
)
FACTOR_KEYS: Final = (*_PLAIN_KEYS, *(f"attention.{kernel}" for kernel in ATTENTION_KERNELS))
"""Every factor key; see the module docstring."""


def _flatten(where: str, data: Mapping[str, Any]) -> dict[str, float]:
    """``{"matmul": 0.7, "attention": {"fa2": 0.34}}`` → ``{"matmul": 0.7, "attention.fa2": 0.34}``."""
    flat: dict[str, float] = {}
    for key, value in data.items():
        if key == "attention":
            kernels = require_object(f"{where}.attention", value)
            for kernel, fraction in kernels.items():
                if kernel not in ATTENTION_KERNELS:
                    raise LlmPerfOptError(
                        f"{where}.attention.{kernel}: unknown attention kernel; accepted: "
                        f"{', '.join(ATTENTION_KERNELS)}"
                    )
                flat[f"attention.{kernel}"] = require_fraction(f"{where}.attention.{kernel}", fraction)
        elif key in _PLAIN_KEYS:
            flat[key] = require_fraction(f"{where}.{key}", value)
        else:
            raise LlmPerfOptError(
                f"{where}.{key}: unknown efficiency factor; accepted: {', '.join(_PLAIN_KEYS)}, attention"
            )
    return flat


@frozen(kw_only=True, eq=False)
class Efficiency:
    """The factors that apply to one device: its family's, with the device's overrides.

    Attributes:
        device: the device's canonical name.
        family: its family.
        factors: factor key → fraction, for every key of :data:`FACTOR_KEYS` the device has
            (attention kernels only where they run).
    """

    device: str
    family: str
    factors: Mapping[str, float]

    def factor(self, key: str) -> float:
        """The fraction for ``key``; raises naming the device and the keys it has."""
        try:
            return self.factors[key]
        except KeyError:
            pass
        if key.startswith("attention."):
            kernel = key.removeprefix("attention.")
            raise LlmPerfOptError(
                f"attention_kernel: {kernel!r} has no efficiency on {self.device} ({self.family}); "
                f"kernels for it: {', '.join(self.attention_kernels)}"
            )
        raise LlmPerfOptError(f"factor: unknown efficiency factor {key!r}; known: {', '.join(FACTOR_KEYS)}")

    @property
    def attention_kernels(self) -> tuple[str, ...]:
        """The attention kernels with a factor on this device."""
        return tuple(k for k in ATTENTION_KERNELS if f"attention.{k}" in self.factors)


@frozen(kw_only=True, eq=False)
class EfficiencyTable:
    """Efficiency factors per family with per-device overrides.

    Attributes:
        families: family → factor key → fraction; every family of ``FAMILIES``, every plain key,
            and the attention kernels that run on it.
        devices: device name → factor key → fraction, overriding its family's.
        basis: ``family:<name>`` / ``device:<name>`` → why the numbers are what they are.
    """

    families: Mapping[str, Mapping[str, float]]
    devices: Mapping[str, Mapping[str, float]]
    basis: Mapping[str, str]

    def for_device(self, accelerator: Accelerator) -> Efficiency:
        """The factors for ``accelerator``: its family's, overridden by its own row if any."""
        factors = dict(self.families[accelerator.family])
        factors.update(self.devices.get(accelerator.name, {}))
        return Efficiency(
            device=accelerator.name, family=accelerator.family, factors=MappingProxyType(factors)
        )

    def value(self, scope: str, key: str) -> float:
        """One factor of ``scope`` (``family:hopper`` or ``device:h20``)."""
        rows = self._rows(scope)
        try:
            return rows[key]
        except KeyError:
            raise LlmPerfOptError(f"{scope}.{key}: no such factor; it has: {', '.join(rows)}") from None

    def with_values(self, values: Mapping[tuple[str, str], float]) -> EfficiencyTable:
        """A copy with factors replaced: ``{(scope, key): fraction}``, scope as in :meth:`value`."""
        families = {name: dict(rows) for name, rows in self.families.items()}
        devices = {name: dict(rows) for name, rows in self.devices.items()}
        for (scope, key), fraction in values.items():
            kind, _, name = scope.partition(":")
            where = f"{scope}.{key}"
            if key not in FACTOR_KEYS:
                raise LlmPerfOptError(f"{where}: unknown efficiency factor; known: {', '.join(FACTOR_KEYS)}")
            if kind == "family" and name in families:
                families[name][key] = require_fraction(where, fraction)
            elif kind == "device":
                devices.setdefault(name, {})[key] = require_fraction(where, fraction)
            else:
                raise LlmPerfOptError(
                    f"scope: expected 'family:<{'|'.join(FAMILIES)}>' or 'device:<name>', got {scope!r}"
                )
        return evolve(self, families=_freeze(families), devices=_freeze(devices))

    def _rows(self, scope: str) -> Mapping[str, float]:
        kind, _, name = scope.partition(":")
        table = self.families if kind == "family" else self.devices if kind == "device" else {}
        if name not in table:
            raise LlmPerfOptError(
                f"scope: unknown scope {scope!r}; known: "
                + ", ".join([*(f"family:{f}" for f in self.families), *(f"device:{d}" for d in self.devices)])
            )
        return table[name]


def _freeze(rows: Mapping[str, Mapping[str, float]]) -> Mapping[str, Mapping[str, float]]:
    return MappingProxyType({name: MappingProxyType(dict(values)) for name, values in rows.items()})


def _parse(where: str, data: Mapping[str, Any], base: EfficiencyTable | None) -> EfficiencyTable:
    require_fields(where, data, (), ("schema_version", "conventions", "families", "devices"))
    version = data.get("schema_version", 1)
    if version != 1:
        raise LlmPerfOptError(f"{where}.schema_version: must be 1, got {version!r}")
    families = {name: dict(rows) for name, rows in base.families.items()} if base else {}
    devices = {name: dict(rows) for name, rows in base.devices.items()} if base else {}
    basis = dict(base.basis) if base else {}
    for section, target in (("families", families), ("devices", devices)):
        entries = require_object(f"{where}.{section}", data.get(section, {}))
        for name, entry in entries.items():
            entry_where = f"{where}.{section}.{name}"
            if section == "families" and name not in FAMILIES:
                raise LlmPerfOptError(f"{entry_where}: unknown family; accepted: {', '.join(FAMILIES)}")
            entry_data = require_object(entry_where, entry)
            require_fields(entry_where, entry_data, ("factors",), ("basis",))
            target.setdefault(name, {}).update(
                _flatten(
                    f"{entry_where}.factors", require_object(f"{entry_where}.factors", entry_data["factors"])
                )
            )
            if "basis" in entry_data:
                scope = f"{'family' if section == 'families' else 'device'}:{name}"
                basis[scope] = require_text(f"{entry_where}.basis", entry_data["basis"])
    for family in FAMILIES:
        rows = families.get(family)
        if rows is None:
            raise LlmPerfOptError(f"{where}.families.{family}: required family is missing")
        missing = [key for key in _PLAIN_KEYS if key not in rows]
        if missing:
            raise LlmPerfOptError(
                f"{where}.families.{family}.factors.{missing[0]}: required factor is missing"
            )
        if not any(key.startswith("attention.") for key in rows):
            raise LlmPerfOptError(
                f"{where}.families.{family}.factors.attention: must list at least one kernel of "
                f"{', '.join(ATTENTION_KERNELS)}"
            )
    return EfficiencyTable(
        families=_freeze(families), devices=_freeze(devices), basis=MappingProxyType(basis)
    )


def _builtin() -> EfficiencyTable:
    text = resources.files("llm_perf_opt.hardware").joinpath("efficiencies.json").read_text("utf-8")
    return _parse("built-in efficiencies.json", json.loads(text), None)


EFFICIENCIES: Final[EfficiencyTable] = _builtin()
"""The shipped factors: kernel-measurement priors, with the calibrated factors fitted in."""


def load_efficiencies(path: str | Path, base: EfficiencyTable = EFFICIENCIES) -> EfficiencyTable:
    """``base`` with the factors of the JSON file ``path`` merged in, key by key.

    The file has the schema of the shipped ``efficiencies.json`` (``families`` and ``devices``,
    each ``{name: {"factors": {...}, "basis": "..."}}``); any subset of keys may be given. Every
    problem is an :class:`LlmPerfOptError` naming the file, the field and the bad value.
    """
    return _parse(str(path), read_json_object(path), base)
