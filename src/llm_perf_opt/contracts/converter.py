"""JSON in and out of the contract classes: one cattrs converter, configured in one function.

Structuring is strict: a string is not an integer, ``true`` is not a number, ``1.5`` is not an
integer, an unknown field is rejected rather than dropped, and every problem becomes one
:class:`~llm_perf_opt.errors.LlmPerfOptError` whose message names the field path, the bad value
and what is accepted, e.g. ``overrides.num_frames: must be ≥ 1, got 0``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_unstructure_fn, override

from llm_perf_opt.contracts import models
from llm_perf_opt.contracts.models import FieldError
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.files import parse_json, read_json

__all__ = [
    "CONTRACT_CLASSES",
    "converter",
    "error_message",
    "from_json",
    "read_json",
    "structure",
    "to_json",
    "unstructure",
]

T = TypeVar("T")

CONTRACT_CLASSES: tuple[type, ...] = (
    models.Wan2_1AnalyticRequest,
    models.Wan2_1AnalyticAccepted,
    models.Wan2_1AnalyticReportSummary,
    models.AnalyticModuleSummary,
    models.Wan2_1AnalyticModel,
    models.Wan2_1ModelSpec,
    models.Wan2_1WorkloadProfile,
    models.AnalyticModuleNode,
    models.OperatorCategory,
    models.ModuleMetricsSnapshot,
    models.OperatorMetrics,
)
"""Every schema of the contract, in the order of ``openapi.yaml``."""


def _strict_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise FieldError((), f"must be a string, got {value!r}")
    return value


def _strict_int(value: object, _: type) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise FieldError((), f"must be an integer, got {value!r}")
    return value


def _strict_float(value: object, _: type) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise FieldError((), f"must be a number, got {value!r}")
    return float(value)


def _strict_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise FieldError((), f"must be true or false, got {value!r}")
    return value


def _as_given(value: object, _: type) -> object:
    """Free-form objects pass through; the class's own validator checks them with field paths."""
    return value


def _build_converter() -> cattrs.Converter:
    """The one converter: strict scalars, enums by the classes' validators, extra keys forbidden."""
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(str, _strict_str)
    conv.register_structure_hook(int, _strict_int)
    conv.register_structure_hook(float, _strict_float)
    conv.register_structure_hook(bool, _strict_bool)
    checked_by_validators = {
        models.Stage,
        models.Repetition,
        models.ReportStatus,
        dict[str, int] | None,
        dict[str, Any],
    }
    conv.register_structure_hook_func(lambda t: t in checked_by_validators, _as_given)
    # Optional numbers that the contract does not make nullable are left out when not given.
    conv.register_unstructure_hook(
        models.AnalyticModuleSummary,
        make_dict_unstructure_fn(
            models.AnalyticModuleSummary,
            conv,
            total_flops_tflops=override(omit_if_default=True),
            memory_activations_gb=override(omit_if_default=True),
        ),
    )
    return conv


converter: cattrs.Converter = _build_converter()


def _accepted_fields(cls: type) -> str:
    return ", ".join(a.name for a in attrs.fields(cls))


_SEPARATOR = "\x00"
"""Between a field path inside an object and the reason, in the descriptions below."""


def _describe(error: BaseException, _type: type | None) -> str:
    """One problem as ``<path inside the object>\\x00<reason>`` for :func:`cattrs.transform_error`."""
    if isinstance(error, FieldError):
        return f"{'.'.join(error.path)}{_SEPARATOR}{error.reason}"
    if isinstance(error, ForbiddenExtraKeysError):
        keys = ", ".join(sorted(error.extra_fields))
        return f"{keys}{_SEPARATOR}unknown field; accepted: {_accepted_fields(error.cl)}"
    if isinstance(error, KeyError):
        return f"{_SEPARATOR}required field is missing"
    if isinstance(error, LlmPerfOptError):
        return f"{_SEPARATOR}{error}"
    return f"{_SEPARATOR}{error}"


def _message(line: str) -> str:
    """``<description> @ $.a[0].b`` → ``a.0.b.<field>: <reason>``."""
    description, _, where = line.rpartition(" @ ")
    inner, _, reason = description.partition(_SEPARATOR)
    outer = where.removeprefix("$").replace("[", ".").replace("]", "").replace("'", "").lstrip(".")
    path = ".".join(part for part in (outer, inner) if part)
    return f"{path or '<document>'}: {reason}"


def error_message(error: BaseException, where: str = "") -> str:
    """Every problem of a failed structuring, ``field.path: reason`` joined by ``; ``, each path
    prefixed by ``where`` (a file name) when given."""
    lines = [_message(line) for line in cattrs.transform_error(error, format_exception=_describe)]
    return "; ".join(f"{where}: {line}" if where else line for line in lines)


def structure(data: object, cls: type[T], *, where: str = "") -> T:
    """Build an object of ``cls`` (a contract class or a data-file record) from plain JSON data, or
    raise one error naming every bad field (prefixed by ``where``, e.g. the file it came from)."""
    if not isinstance(data, Mapping):
        prefix = f"{where}: " if where else ""
        raise LlmPerfOptError(f"{prefix}<document>: must be a JSON object for {cls.__name__}, got {data!r}")
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, FieldError) as error:
        raise LlmPerfOptError(error_message(error, where)) from None


def unstructure(obj: object) -> Any:
    """Plain JSON data (dicts, lists, strings, numbers) of a contract object."""
    return converter.unstructure(obj)


def to_json(obj: object, *, indent: int | None = 2) -> str:
    """JSON text of a contract object; NaN and infinities cannot occur (validators reject them)."""
    return json.dumps(unstructure(obj), indent=indent, allow_nan=False, ensure_ascii=False)


def from_json(text: str | bytes, cls: type[T]) -> T:
    """Parse JSON text into a contract object; malformed JSON (not UTF-8, nested too deeply, an
    integer of too many digits, ``NaN``) is an error like any other."""
    return structure(parse_json(text), cls)
