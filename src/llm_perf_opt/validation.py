"""Validators for attrs classes at the library's edges, composed from small factories.

Each factory returns an attrs validator that raises :class:`FieldError` naming the field, the bad
value and what is accepted (``num_layers: must be ≥ 1, got 0``). Booleans are never integers here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

from attrs import Attribute

from llm_perf_opt.errors import LlmPerfOptError

__all__ = [
    "FieldError",
    "Validator",
    "absolute_path",
    "flag",
    "instance",
    "integer",
    "is_int",
    "list_of",
    "metric",
    "one_of",
    "optional_integer",
    "optional_metric",
    "optional_text",
    "text",
]


class FieldError(LlmPerfOptError):
    """A field holds a value the contract does not accept.

    ``path`` is the field's location inside the object being checked (``("overrides",
    "num_frames")``); the converter prefixes the location of that object inside a larger document.
    """

    def __init__(self, path: tuple[str, ...], reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{'.'.join(path)}: {reason}")


Validator = Callable[[Any, "Attribute[Any]", Any], None]


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer (and not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def text() -> Validator:
    """A string."""

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, str):
            raise FieldError((attribute.name,), f"must be a string, got {value!r}")

    return check


def optional_text() -> Validator:
    """A string or ``None``."""

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise FieldError((attribute.name,), f"must be a string or null, got {value!r}")

    return check


def flag() -> Validator:
    """A bool."""

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, bool):
            raise FieldError((attribute.name,), f"must be true or false, got {value!r}")

    return check


def integer(minimum: int) -> Validator:
    """An integer ≥ ``minimum``."""

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not is_int(value):
            raise FieldError((attribute.name,), f"must be an integer ≥ {minimum}, got {value!r}")
        if value < minimum:
            raise FieldError((attribute.name,), f"must be ≥ {minimum}, got {value!r}")

    return check


def optional_integer(minimum: int) -> Validator:
    """An integer ≥ ``minimum``, or ``None``."""

    required = integer(minimum)

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        if value is not None:
            required(instance, attribute, value)

    return check


def metric(maximum: float | None = None) -> Validator:
    """A finite number ≥ 0 (and ≤ ``maximum`` when given): never NaN, never infinite."""
    accepted = "a finite number ≥ 0" + ("" if maximum is None else f" and ≤ {maximum:g}")

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if (
            not _is_number(value)
            or not math.isfinite(value)
            or value < 0
            or (maximum is not None and value > maximum)
        ):
            raise FieldError((attribute.name,), f"must be {accepted}, got {value!r}")

    return check


def optional_metric() -> Validator:
    """A finite number ≥ 0, or ``None``."""

    required = metric()

    def check(instance: Any, attribute: Attribute[Any], value: Any) -> None:
        if value is not None:
            required(instance, attribute, value)

    return check


def one_of(allowed: tuple[str, ...]) -> Validator:
    """One of ``allowed``."""

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if value not in allowed:
            raise FieldError((attribute.name,), f"must be one of {', '.join(allowed)}; got {value!r}")

    return check


def list_of(item_type: type) -> Validator:
    """A list whose items are all ``item_type``."""

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, list):
            raise FieldError((attribute.name,), f"must be a list, got {value!r}")
        for index, item in enumerate(value):
            if not isinstance(item, item_type) or isinstance(item, bool):
                raise FieldError(
                    (attribute.name, str(index)), f"must be a {item_type.__name__}, got {item!r}"
                )

    return check


def instance(cls: type) -> Validator:
    """An instance of ``cls``."""

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, cls):
            raise FieldError((attribute.name,), f"must be a {cls.__name__}, got {value!r}")

    return check


def absolute_path() -> Validator:
    """An absolute path."""

    def check(_: Any, attribute: Attribute[Any], value: Any) -> None:
        if not isinstance(value, str) or not value.startswith("/") or not os.path.isabs(value):
            raise FieldError((attribute.name,), f"must be an absolute path, got {value!r}")

    return check
