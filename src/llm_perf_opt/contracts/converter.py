"""JSON in and out of the contract classes: one cattrs converter, configured in one function.

Structuring is strict: a string is not an integer, ``true`` is not a number, ``1.5`` is not an
integer, an unknown field is rejected rather than dropped, and every problem becomes one
:class:`~llm_perf_opt.errors.LlmPerfOptError` whose message names the field path, the bad value
and what is accepted, e.g. ``overrides.num_frames: must be ≥ 1, got 0``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_dict_unstructure_fn, override

from llm_perf_opt.contracts import models
from llm_perf_opt.contracts.models import FieldError
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.files import parse_json

__all__ = ["CONTRACT_CLASSES", "converter", "from_json", "structure", "to_json", "unstructure"]

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


def _problems(error: BaseException, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Flatten cattrs' nested exception groups into (field path, reason) pairs."""
    if isinstance(error, ClassValidationError | IterableValidationError):
        with_notes, without_notes = error.group_exceptions()
        for inner, note in with_notes:
            step = getattr(note, "name", None)
            if step is None:
                step = str(getattr(note, "index", "?"))
            yield from _problems(inner, (*path, step))
        for inner in without_notes:
            yield from _problems(inner, path)
    elif isinstance(error, FieldError):
        yield (*path, *error.path), error.reason
    elif isinstance(error, ForbiddenExtraKeysError):
        for key in sorted(error.extra_fields):
            yield (*path, key), f"unknown field; accepted: {_accepted_fields(error.cl)}"
    elif isinstance(error, KeyError):
        yield path, "required field is missing"
    else:
        yield path, str(error)


def _format(problems: Iterator[tuple[tuple[str, ...], str]]) -> str:
    return "; ".join(f"{'.'.join(path) or '<document>'}: {reason}" for path, reason in problems)


def structure(data: object, cls: type[T]) -> T:
    """Build a contract object from plain JSON data, or raise one error naming every bad field."""
    if not isinstance(data, Mapping):
        raise LlmPerfOptError(f"<document>: must be a JSON object for {cls.__name__}, got {data!r}")
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, FieldError) as error:
        raise LlmPerfOptError(_format(_problems(error, ()))) from None


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
