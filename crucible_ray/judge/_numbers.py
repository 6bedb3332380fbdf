"""Numbers inside tokens, for compare.py's numeric mode: what counts as one, and when two agree."""

import math
import re

_INTEGER = re.compile(r"[+-]?[0-9]+")
# What float() accepts, minus its extras (underscores, non-ASCII digits, surrounding spaces).
_REAL = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE
)


def tokens_equal(got: str, expected: str, abs_tol: float, rel_tol: float) -> bool:
    """Numbers on both sides compare as numbers; anything else compares as text."""
    if got == expected:
        return not _is_nan(got)  # equal text is an equal number, except nan, which equals nothing
    got_int, expected_int = _INTEGER.fullmatch(got), _INTEGER.fullmatch(expected)
    if got_int and expected_int:
        return _integer_value(got) == _integer_value(expected)
    if (got_int or _REAL.fullmatch(got)) and (expected_int or _REAL.fullmatch(expected)):
        return floats_close(float(got), float(expected), abs_tol, rel_tol)
    return False  # different text, or a number against a non-number


def floats_close(got: float, expected: float, abs_tol: float, rel_tol: float) -> bool:
    """|got - expected| <= max(abs_tol, rel_tol * |expected|); inf only equals itself."""
    if math.isinf(got) or math.isinf(expected):
        return got == expected  # an infinite tolerance must not make inf equal -inf or 5
    return abs(got - expected) <= max(abs_tol, rel_tol * abs(expected))  # False for nan


def _integer_value(token: str) -> tuple[bool, str]:
    # Sign and digits compared as text: exact at any size, and no int() digit limit (4300).
    digits = token.lstrip("+-").lstrip("0")
    return token.startswith("-") and digits != "", digits


def _is_nan(token: str) -> bool:
    return token.lstrip("+-").lower() == "nan"
