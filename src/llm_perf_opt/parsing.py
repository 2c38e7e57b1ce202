"""Integers from text, strictly: ASCII digits only, for every command-line and text input.

Python's ``int()`` accepts ``1_000``, ``+9``, `` 7 `` and digits of other scripts (``٣``, ``３``);
a user who typed one of those did not mean an integer, so here they are errors that name the
option. An optional leading ``-`` is accepted so that the range check can say what a negative
value should have been. At most :data:`MAX_DIGITS` digits are read, far below the point where
``int()`` itself refuses (4300 digits) and far above every accepted value.
"""

from __future__ import annotations

import re
from typing import Final

from llm_perf_opt.errors import LlmPerfOptError

__all__ = ["MAX_DIGITS", "parse_int", "parse_int_list"]

MAX_DIGITS: Final = 30
"""Longest integer accepted, in digits."""

_INTEGER: Final = re.compile(r"-?[0-9]+", re.ASCII)


def _show(text: str) -> str:
    shown = repr(text)
    return shown if len(shown) <= 40 else f"{shown[:30]}…({len(text)} characters)"


def parse_int(field: str, text: str) -> int:
    """The integer written in ``text`` as ASCII digits with an optional leading ``-``; anything else
    (``1_000``, ``+9``, spaces, ``1e3``, non-ASCII digits, more than 30 digits) is an error naming
    ``field``."""
    if not isinstance(text, str) or _INTEGER.fullmatch(text) is None:
        raise LlmPerfOptError(
            f"{field}: must be an integer written in ASCII digits 0-9, got {_show(str(text))}"
        )
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise LlmPerfOptError(
            f"{field}: an integer of {len(text.lstrip('-'))} digits is out of range "
            f"(at most {MAX_DIGITS} digits are read), got {_show(text)}"
        )
    return int(text, 10)


def parse_int_list(field: str, text: str) -> list[int]:
    """Comma-separated integers (each as :func:`parse_int`), in order, e.g. ``"480,720"``; an empty
    item is an error naming ``field``."""
    if not isinstance(text, str) or not text:
        raise LlmPerfOptError(f"{field}: must be comma-separated integers, got {_show(str(text))}")
    return [parse_int(field, item) for item in text.split(",")]
