"""Where two texts or sequences first differ, and where that is as a line and column."""

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
_TOKEN = re.compile(r"\S+")  # the tokens of str.split(): both use str.isspace()


def first_unequal(got: Sequence[T], want: Sequence[T], equal: Callable[[T, T], bool]) -> int | None:
    """Index of the first unequal pair, or of the shorter side's end; None when all agree."""
    for index, (g, w) in enumerate(zip(got, want, strict=False)):
        if not equal(g, w):
            return index
    return None if len(got) == len(want) else min(len(got), len(want))


def common_prefix(a: str, b: str) -> int:
    # Chunks compared in C first, so a 1 MiB output costs a few hundred slices, not a Python loop.
    step, start, end = 4096, 0, min(len(a), len(b))
    while start < end and a[start : start + step] == b[start : start + step]:
        start += step
    return next((i for i in range(start, min(start + step, end)) if a[i] != b[i]), end)


def position(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


def token_start(text: str, index: int) -> int:
    """Offset of token `index`; past the last token when there are fewer."""
    for i, match in enumerate(_TOKEN.finditer(text)):
        if i == index:
            return match.start()
    return len(text.rstrip())
