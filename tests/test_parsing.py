"""Strict integer parsing: ASCII digits only, one error naming the option otherwise."""

from __future__ import annotations

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.parsing import parse_int, parse_int_list


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("81", 81), ("-3", -3), ("007", 7)])
def test_ascii_integers_are_parsed(text: str, value: int) -> None:
    """Plain ASCII digits, with an optional minus, are integers."""
    assert parse_int("frames", text) == value


@pytest.mark.parametrize("text", ["1_000", "+9", " 7", "7 ", "1e3", "٣", "３", "", "-", "1.0", "0x10"])
def test_lenient_forms_are_rejected(text: str) -> None:
    """Underscores, plus signs, spaces, exponents and non-ASCII digits are one error naming the option."""
    with pytest.raises(LlmPerfOptError, match=r"^--frames: must be an integer written in ASCII digits"):
        parse_int("--frames", text)


def test_too_many_digits_is_an_error_not_a_crash() -> None:
    """A 5000-digit number is refused before int() is asked."""
    with pytest.raises(LlmPerfOptError, match=r"^frames: an integer of 5000 digits is out of range"):
        parse_int("frames", "9" * 5000)


def test_lists() -> None:
    """Comma-separated values keep their order; an empty item is an error."""
    assert parse_int_list("height", "480,720") == [480, 720]
    with pytest.raises(LlmPerfOptError, match=r"^height: must be an integer"):
        parse_int_list("height", "480,,720")
