"""Reading the hardware data files: JSON objects checked field by field, errors that name the path.

Every message has the form ``<where>.<field path>: <what is expected>, got <value>``, where
``<where>`` is the file (or ``"built-in"`` for the files shipped in the package).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from llm_perf_opt.errors import LlmPerfOptError

__all__ = [
    "read_json_object",
    "require_fields",
    "require_fraction",
    "require_int",
    "require_number",
    "require_object",
    "require_text",
    "require_texts",
]


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``; raises naming the file when it is missing, not JSON or not an object."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise LlmPerfOptError(f"path: cannot read {str(path)!r}: {error.strerror or error}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise LlmPerfOptError(f"{path}: not valid JSON: {error}") from None
    return require_object(str(path), data)


def require_object(where: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LlmPerfOptError(f"{where}: must be a JSON object, got {_short(value)}")
    return value


def require_fields(
    where: str, data: Mapping[str, Any], required: Iterable[str], optional: Iterable[str] = ()
) -> None:
    """Every ``required`` key present and no key outside ``required`` ∪ ``optional``."""
    required = tuple(required)
    accepted = (*required, *optional)
    missing = [key for key in required if key not in data]
    if missing:
        raise LlmPerfOptError(
            f"{where}.{missing[0]}: required field is missing; fields: {', '.join(accepted)}"
        )
    unknown = sorted(key for key in data if key not in accepted)
    if unknown:
        raise LlmPerfOptError(f"{where}.{unknown[0]}: unknown field; accepted fields: {', '.join(accepted)}")


def require_number(where: str, value: object, *, minimum: float = 0.0, allow_zero: bool = False) -> float:
    """A finite JSON number > ``minimum`` (≥ when ``allow_zero`` and ``minimum`` is 0)."""
    number = _finite(value)
    if number is None or number < minimum or (number == minimum and not allow_zero):
        bound = f"≥ {minimum:g}" if allow_zero else f"> {minimum:g}"
        raise LlmPerfOptError(f"{where}: must be a number {bound}, got {_short(value)}")
    return number


def require_fraction(where: str, value: object) -> float:
    """A JSON number in (0, 1]: an efficiency, a fraction of a peak."""
    number = _finite(value)
    if number is None or not 0 < number <= 1:
        raise LlmPerfOptError(f"{where}: must be a fraction of peak in (0, 1], got {_short(value)}")
    return number


def require_int(where: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LlmPerfOptError(f"{where}: must be an integer ≥ {minimum}, got {_short(value)}")
    return value


def require_text(where: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise LlmPerfOptError(f"{where}: must be a non-empty string, got {_short(value)}")
    return value


def require_texts(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise LlmPerfOptError(f"{where}: must be a list of strings, got {_short(value)}")
    return tuple(require_text(f"{where}[{i}]", item) for i, item in enumerate(value))


def _finite(value: object) -> float | None:
    """``value`` as a float when it is a finite JSON number (not a boolean), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
