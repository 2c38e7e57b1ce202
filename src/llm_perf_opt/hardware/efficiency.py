"""Efficiency factors as data: the fraction of a peak each class of kernel reaches, per device family.

The roofline divides work by ``peak × factor``. Factors are given per device family (rows of the
shipped ``efficiencies.json``), with per-device overrides where a kernel measurement of that very
device exists (H20, L20, RTX 4090, RTX 5090: compute-starved parts run attention near peak while
H100-class parts do not, so one family factor would be wrong for them). Every row carries the
basis of its numbers: published kernel measurements as priors (FlashAttention and SageAttention
kernel measurements, quoted in docs/hardware.md), and for the factors the calibration fits
(:mod:`llm_perf_opt.calibration`) the fitted value, which that module reproduces.

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

import sympy
from attrs import evolve, field, frozen

from llm_perf_opt.contracts.converter import read_json, structure
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import FAMILIES, Accelerator
from llm_perf_opt.validation import FieldError

__all__ = [
    "ATTENTION_KERNELS",
    "EFFICIENCIES",
    "FACTOR_KEYS",
    "FACTOR_SYMBOLS",
    "Efficiency",
    "EfficiencyFile",
    "EfficiencyTable",
    "FactorRow",
    "factor_symbol",
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


FACTOR_SYMBOLS: Final[Mapping[str, sympy.Symbol]] = MappingProxyType(
    {key: sympy.Symbol(f"eta_{key.replace('.', '_')}", positive=True) for key in FACTOR_KEYS}
)
"""One SymPy symbol per factor key (``eta_matmul``, ``eta_attention_fa2`` …): time expressions
carry the factors as symbols, so refitting them needs no recompilation."""


def factor_symbol(key: str) -> sympy.Symbol:
    """The symbol of a factor key; an unknown key is an error listing the known ones."""
    try:
        return FACTOR_SYMBOLS[key]
    except KeyError:
        raise LlmPerfOptError(
            f"factor: unknown efficiency factor {key!r}; known: {', '.join(FACTOR_KEYS)}"
        ) from None


def _fraction(path: tuple[str, ...], value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise FieldError(path, f"must be a fraction of peak in (0, 1], got {value!r}")
    return float(value)


def _flatten(data: Mapping[str, Any]) -> dict[str, float]:
    """``{"matmul": 0.7, "attention": {"fa2": 0.34}}`` → ``{"matmul": 0.7, "attention.fa2": 0.34}``."""
    flat: dict[str, float] = {}
    for key, value in data.items():
        if key == "attention":
            if not isinstance(value, Mapping):
                raise FieldError(("factors", "attention"), f"must be an object of kernels, got {value!r}")
            for kernel, fraction in value.items():
                if kernel not in ATTENTION_KERNELS:
                    raise FieldError(
                        ("factors", "attention", kernel),
                        f"unknown attention kernel; accepted: {', '.join(ATTENTION_KERNELS)}",
                    )
                flat[f"attention.{kernel}"] = _fraction(("factors", "attention", kernel), fraction)
        elif key in _PLAIN_KEYS:
            flat[key] = _fraction(("factors", key), value)
        else:
            raise FieldError(
                ("factors", key), f"unknown factor; accepted: {', '.join((*_PLAIN_KEYS, 'attention'))}"
            )
    return flat


@frozen(kw_only=True)
class FactorRow:
    """One row of ``efficiencies.json``: a family's or a device's factors and why they are what
    they are.

    Attributes:
        factors: factor key → fraction, attention kernels nested (``{"attention": {"fa2": 0.33}}``).
        basis: where the numbers come from.
    """

    factors: dict[str, Any] = field(validator=lambda _instance, _attribute, value: _flatten(value))
    basis: str = ""

    @property
    def flat(self) -> dict[str, float]:
        """The factors keyed by :data:`FACTOR_KEYS` names."""
        return _flatten(self.factors)


@frozen(kw_only=True)
class EfficiencyFile:
    """The schema of ``efficiencies.json`` and of a user's override file.

    Attributes:
        schema_version: 1.
        conventions: how the factors are to be read.
        families: family → its row (every family of ``FAMILIES`` in the shipped file).
        devices: device name → its row, overriding its family's factors.
    """

    schema_version: int = field(default=1)
    conventions: str = ""
    families: dict[str, FactorRow] = field(factory=dict)
    devices: dict[str, FactorRow] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if self.schema_version != 1:
            raise FieldError(("schema_version",), f"must be 1, got {self.schema_version!r}")
        for name in self.families:
            if name not in FAMILIES:
                raise FieldError(("families", name), f"unknown family; accepted: {', '.join(FAMILIES)}")


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
                families[name][key] = _checked(where, fraction)
            elif kind == "device":
                devices.setdefault(name, {})[key] = _checked(where, fraction)
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


def _checked(where: str, fraction: float) -> float:
    try:
        return _fraction((), fraction)
    except FieldError as error:
        raise LlmPerfOptError(f"{where}: {error.reason}") from None


def _freeze(rows: Mapping[str, Mapping[str, float]]) -> Mapping[str, Mapping[str, float]]:
    return MappingProxyType({name: MappingProxyType(dict(values)) for name, values in rows.items()})


def _table(where: str, parsed: EfficiencyFile, base: EfficiencyTable | None) -> EfficiencyTable:
    families = {name: dict(rows) for name, rows in base.families.items()} if base else {}
    devices = {name: dict(rows) for name, rows in base.devices.items()} if base else {}
    basis = dict(base.basis) if base else {}
    for section, rows, target in (("family", parsed.families, families), ("device", parsed.devices, devices)):
        for name, row in rows.items():
            target.setdefault(name, {}).update(row.flat)
            if row.basis:
                basis[f"{section}:{name}"] = row.basis
    for family in FAMILIES:
        values = families.get(family)
        if values is None:
            raise LlmPerfOptError(f"{where}: families.{family}: required family is missing")
        missing = [key for key in _PLAIN_KEYS if key not in values]
        if missing:
            raise LlmPerfOptError(
                f"{where}: families.{family}.factors.{missing[0]}: required factor is missing"
            )
        if not any(key.startswith("attention.") for key in values):
            raise LlmPerfOptError(
                f"{where}: families.{family}.factors.attention: must list at least one kernel of "
                f"{', '.join(ATTENTION_KERNELS)}"
            )
    return EfficiencyTable(
        families=_freeze(families), devices=_freeze(devices), basis=MappingProxyType(basis)
    )


def _builtin() -> EfficiencyTable:
    where = "built-in efficiencies.json"
    text = resources.files("llm_perf_opt.hardware").joinpath("efficiencies.json").read_text("utf-8")
    return _table(where, structure(json.loads(text), EfficiencyFile, where=where), None)


EFFICIENCIES: Final[EfficiencyTable] = _builtin()
"""The shipped factors: kernel-measurement priors, with the calibrated factors fitted in."""


def load_efficiencies(path: str | Path, base: EfficiencyTable = EFFICIENCIES) -> EfficiencyTable:
    """``base`` with the factors of the JSON file ``path`` merged in, key by key.

    The file has the schema of the shipped ``efficiencies.json`` (:class:`EfficiencyFile`); any
    subset of keys may be given. Every problem is an :class:`LlmPerfOptError` naming the file, the
    field and the bad value.
    """
    return _table(str(path), structure(read_json(path), EfficiencyFile, where=str(path)), base)
