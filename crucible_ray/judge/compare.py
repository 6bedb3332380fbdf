"""Compare a program's output with the expected answer, on the host: the judge owns the verdict.

Pure functions. These rules are the contract; COMPARE_VERSION changes whenever one does.

- exact: the strings are equal.
- trailing_whitespace (default, Judge0's): lines rstripped, trailing empty lines dropped; equal.
- lines: the whole text stripped, split into lines, each stripped; same count and each equal.
- tokens: str.split() on both; the token sequences are equal (line breaks do not matter).
- numeric: tokens, but two numbers compare as numbers: integers exactly (any size), others when
  |got - expected| <= max(abs_tol, rel_tol * |expected|); nan equals nothing, inf only itself.
- json: both parsed; deep equality, key order ignored, 1 == 1.0, true != 1, floats within float_tol.
- json unordered: a top-level list is a multiset. Expected that is not JSON: ValueError.
- regex: expected fullmatches the trailing_whitespace-normalised output (DOTALL, MULTILINE).
- regex: an invalid pattern, or one over 4096 characters, raises ValueError.
- case_insensitive: both sides casefolded (regex: IGNORECASE; json: its strings and keys).
- unordered_lines: normalised lines (token lists, blank ones dropped) sorted, compared in pairs.
- unordered_lines with numeric: the tolerance applies after a lexicographic sort (as APPS does).
- Lines split on "\\n" only; stripping removes every str.isspace() character, "\\r" included.
- Mismatch: line and column (1-based) of the first difference in the output (casefolded if so).
- Mismatch with unordered_lines: the line is the position in sorted order; the message says so.
- Mismatch, output too short: exact/tokens point just past its end; line modes at line n+1, col 1.
- Excerpts: the differing line, token, or (exact) text from the difference; <= 80 chars, a cut one
  ends in "…", newlines shown as "\\n"; json: canonical text of the differing values, at line 1.
"""

import json
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crucible_ray.judge import _json, _numbers, _text

COMPARE_VERSION: str = "1"

CompareMode = Literal["exact", "trailing_whitespace", "lines", "tokens", "numeric", "json", "regex"]

_EXCERPT = 80
_END = "<end of output>"
_MAX_PATTERN = 4096
_SORTED_NOTE = "lines compared in sorted order"


class CompareSpec(BaseModel):
    """How to compare; the default is Judge0's rule (trailing whitespace ignored, case kept)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: CompareMode = "trailing_whitespace"
    case_insensitive: bool = False
    unordered_lines: bool = False
    abs_tol: float = Field(1e-6, ge=0)  # numeric
    rel_tol: float = Field(1e-6, ge=0)  # numeric, times |expected|
    float_tol: float | None = Field(None, ge=0)  # json, absolute: None = floats exact
    unordered: bool = False  # json: a top-level list compared as a multiset

    @model_validator(mode="after")
    def _refuse_meaningless(self) -> Self:
        # An ignored modifier would let a test pass or fail for a reason its author did not mean.
        if self.unordered_lines and self.mode in ("exact", "json", "regex"):
            raise ValueError(
                f"unordered_lines does not apply to mode {self.mode!r} "
                "(only to trailing_whitespace, lines, tokens and numeric)"
            )
        if self.unordered and self.mode != "json":
            raise ValueError("unordered applies to mode 'json' only (for text: unordered_lines)")
        if self.float_tol is not None and self.mode != "json":
            raise ValueError("float_tol applies to mode 'json' only (numeric: abs_tol, rel_tol)")
        return self


@dataclass(frozen=True)
class Mismatch:
    line: int  # 1-based, in the output
    column: int  # 1-based
    expected: str  # excerpt, or "<end of output>"
    got: str  # excerpt, or "<end of output>"


@dataclass(frozen=True)
class Comparison:
    matched: bool
    mismatch: Mismatch | None  # where the texts differ (None when matched, or no text)
    message: str | None = None


_MATCHED = Comparison(True, None)


def compare(output: str, expected: str, spec: CompareSpec) -> Comparison:
    """Whether the output passes; ValueError when `expected` itself is unusable (json, regex)."""
    if spec.mode == "regex":
        return _regex(output, expected, spec.case_insensitive)
    if spec.mode == "json":
        return _json_mode(output, expected, spec)
    if spec.case_insensitive:
        output, expected = output.casefold(), expected.casefold()
    if spec.mode == "exact":
        return _exact(output, expected)
    if spec.mode in ("tokens", "numeric"):
        return _tokens(output, expected, spec)
    return _lines(output, expected, spec)


def _exact(output: str, expected: str) -> Comparison:
    if output == expected:
        return _MATCHED
    at = _text.common_prefix(output, expected)
    line, column = _text.position(output, at)
    return _fail(Mismatch(line, column, _excerpt_at(expected, at), _excerpt_at(output, at)))


def _lines(output: str, expected: str, spec: CompareSpec) -> Comparison:
    got, skipped = _normalised_lines(output, spec.mode)
    want, _ = _normalised_lines(expected, spec.mode)
    notes = [f"expected {len(want)} lines, got {len(got)}"] if len(got) != len(want) else []
    if spec.unordered_lines:
        got, want, skipped = sorted(got), sorted(want), 0
        notes.append(_SORTED_NOTE)
    index = _text.first_unequal(got, want, operator.eq)
    if index is None:
        return _MATCHED
    line = skipped + index + 1
    if index == len(got):
        return _fail(Mismatch(line, 1, _excerpt(want[index]), _END), notes)
    if index == len(want):
        return _fail(Mismatch(line, 1, _END, _excerpt(got[index])), notes)
    column = _text.common_prefix(got[index], want[index]) + 1
    if spec.mode == "lines" and not spec.unordered_lines:
        raw = output.split("\n")[line - 1]
        column += len(raw) - len(raw.lstrip())  # a column of the output, not of the stripped line
    return _fail(Mismatch(line, column, _excerpt(want[index]), _excerpt(got[index])), notes)


def _normalised_lines(text: str, mode: str) -> tuple[list[str], int]:
    """The mode's lines, and how many leading lines were dropped (for output line numbers)."""
    if mode == "lines":
        lines = [line.strip() for line in text.split("\n")]
        skipped = next((i for i, line in enumerate(lines) if line), 0)  # all blank: none
        lines = lines[skipped:]
    else:
        lines, skipped = [line.rstrip() for line in text.split("\n")], 0
    while lines and not lines[-1]:
        lines.pop()
    return lines, skipped


def _tokens(output: str, expected: str, spec: CompareSpec) -> Comparison:
    equal: Callable[[str, str], bool] = operator.eq
    if spec.mode == "numeric":
        equal = partial(_numbers.tokens_equal, abs_tol=spec.abs_tol, rel_tol=spec.rel_tol)
    if spec.unordered_lines:
        return _token_lines(output, expected, equal)
    got, want = output.split(), expected.split()
    index = _text.first_unequal(got, want, equal)
    if index is None:
        return _MATCHED
    line, column = _text.position(output, _text.token_start(output, index))
    notes = [f"expected {len(want)} tokens, got {len(got)}"] if len(got) != len(want) else []
    return _fail(Mismatch(line, column, _token_at(want, index), _token_at(got, index)), notes)


def _token_lines(output: str, expected: str, equal: Callable[[str, str], bool]) -> Comparison:
    got = sorted((tokens, line) for line in output.split("\n") if (tokens := line.split()))
    want = sorted(tokens for line in expected.split("\n") if (tokens := line.split()))
    notes = [f"expected {len(want)} lines, got {len(got)}"] if len(got) != len(want) else []
    notes.append(_SORTED_NOTE)
    for number, ((tokens, line), wanted) in enumerate(zip(got, want, strict=False), start=1):
        index = _text.first_unequal(tokens, wanted, equal)
        if index is not None:
            column = _text.position(line, _text.token_start(line, index))[1]
            mismatch = Mismatch(number, column, _token_at(wanted, index), _token_at(tokens, index))
            return _fail(mismatch, notes)
    number = min(len(got), len(want)) + 1
    if len(got) < len(want):
        return _fail(Mismatch(number, 1, _excerpt(want[number - 1][0]), _END), notes)
    if len(got) > len(want):
        return _fail(Mismatch(number, 1, _END, _excerpt(got[number - 1][0][0])), notes)
    return _MATCHED


def _token_at(tokens: list[str], index: int) -> str:
    return _excerpt(tokens[index]) if index < len(tokens) else _END


def _json_mode(output: str, expected: str, spec: CompareSpec) -> Comparison:
    try:
        want = json.loads(expected)
    except (ValueError, RecursionError) as error:  # the test author's error, not the program's
        raise ValueError(f"expected answer is not valid JSON: {error}") from None
    try:
        got = json.loads(output)
    except (ValueError, RecursionError) as error:
        mismatch = Mismatch(1, 1, _excerpt(_json.canonical(want)), _excerpt(output))
        return _fail(mismatch, [f"output is not valid JSON: {error}"])
    found = _json.difference(
        got, want, tol=spec.float_tol, fold=spec.case_insensitive, unordered=spec.unordered
    )
    if found is None:
        return _MATCHED
    want_text, got_text = (_excerpt(_json.canonical(v)) for v in (found.expected, found.got))
    detail = found.detail or f"expected {want_text}, got {got_text}"
    return _fail(Mismatch(1, 1, want_text, got_text), [f"at {found.path}: {detail}"])


def _regex(output: str, pattern: str, case_insensitive: bool) -> Comparison:
    # The pattern is the test author's and the caller caps outputs before they get here, so we
    # set no timeout: a pattern that backtracks badly on bounded input is the author's bug.
    if len(pattern) > _MAX_PATTERN:
        raise ValueError(f"expected regular expression is longer than {_MAX_PATTERN} characters")
    flags = re.DOTALL | re.MULTILINE | (re.IGNORECASE if case_insensitive else 0)
    try:
        compiled = re.compile(pattern, flags)
    except re.error as error:
        raise ValueError(f"expected answer is not a valid regular expression: {error}") from None
    text = "\n".join(_normalised_lines(output, "trailing_whitespace")[0])
    if compiled.fullmatch(text):
        return _MATCHED
    shown = _excerpt(pattern)
    return _fail(Mismatch(1, 1, shown, _excerpt(text)), [f"pattern {shown} did not match"])


def _excerpt(text: str, offset: int = 0) -> str:
    text = text[offset : offset + _EXCERPT + 1].replace("\n", "\\n")  # cut first: 1 MiB lines
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _excerpt_at(text: str, offset: int) -> str:
    return _excerpt(text, offset) if offset < len(text) else _END


def _fail(mismatch: Mismatch, notes: Sequence[str] = ()) -> Comparison:
    return Comparison(False, mismatch, "; ".join(notes) or None)
