"""Deep JSON comparison for compare.py's json mode: the first difference and its path."""

import json
import math
from dataclasses import dataclass
from typing import Any

# With a tolerance, multiset elements left without an exact partner are matched pair by pair
# (quadratic) when there are at most PAIRWISE_LIMIT of them and the work stays under WORK_LIMIT
# (under a second); otherwise they are sorted by canonical text and compared in that order.
PAIRWISE_LIMIT = 10_000
WORK_LIMIT = 2_000_000  # about 0.45 µs a unit: a character compared, or 12 per comparison
_MULTISET_NOTE = "top-level list compared as a multiset"


@dataclass(frozen=True)
class Difference:
    path: str  # $, $[2], $.name, $["a b"]
    expected: Any
    got: Any
    detail: str | None = None  # None: "expected X, got Y" says it all


def canonical(value: Any) -> str:
    """Sorted keys, no spaces: the text of excerpts."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:
        return "<too deeply nested to show>"


def difference(
    got: Any, expected: Any, *, tol: float | None, fold: bool, unordered: bool
) -> Difference | None:
    """The first difference in document order (sorted keys), or None when they are equal."""
    if unordered and isinstance(got, list) and isinstance(expected, list):
        return _multiset_difference(got, expected, tol, fold)
    return _first_difference(got, expected, tol, fold, "$")


def _first_difference(
    got: Any, expected: Any, tol: float | None, fold: bool, path: str
) -> Difference | None:
    # An explicit stack, not recursion: json.loads accepts nesting deeper than we could recurse.
    stack = [(path, got, expected)]
    while stack:
        path, g, e = stack.pop()
        if isinstance(g, dict) and isinstance(e, dict):
            if fold:
                g, e = _fold_keys(g), _fold_keys(e)
            if g.keys() != e.keys():
                missing = sorted(e.keys() - g.keys())
                detail = (
                    f"missing key {_quoted(missing[0])}"
                    if missing
                    else f"unexpected key {_quoted(min(g.keys() - e.keys()))}"
                )
                return Difference(path, e, g, detail)
            stack.extend((_member(path, k), g[k], e[k]) for k in sorted(e, reverse=True))
        elif isinstance(g, list) and isinstance(e, list):
            if len(g) != len(e):
                return Difference(path, e, g, f"expected {len(e)} elements, got {len(g)}")
            stack.extend((f"{path}[{i}]", g[i], e[i]) for i in range(len(e) - 1, -1, -1))
        elif not _scalars_equal(g, e, tol, fold):
            return Difference(path, e, g)
    return None


def _scalars_equal(got: Any, expected: Any, tol: float | None, fold: bool) -> bool:
    if isinstance(got, bool) or isinstance(expected, bool):
        return got is expected  # bool is not a number here: true != 1
    if _is_number(got) and _is_number(expected):
        if tol is not None and (isinstance(got, float) or isinstance(expected, float)):
            return _within(got, expected, tol)
        return bool(got == expected)  # by value: 1 == 1.0, exactly
    if isinstance(got, str) and isinstance(expected, str):
        return got.casefold() == expected.casefold() if fold else got == expected
    return got is None and expected is None  # null, or a type mismatch


def _within(got: float, expected: float, tol: float) -> bool:
    if got == expected:
        return True
    try:
        return not (math.isinf(got) or math.isinf(expected)) and abs(got - expected) <= tol
    except OverflowError:  # an int beyond float range against a float
        return False


def _multiset_difference(
    got: list[Any], expected: list[Any], tol: float | None, fold: bool
) -> Difference | None:
    if len(got) != len(expected):
        detail = f"expected {len(expected)} elements, got {len(got)} ({_MULTISET_NOTE})"
        return Difference("$", expected, got, detail)
    # Exactly equal elements share a key: pairing them by key first is linear.
    pool: dict[str, list[int]] = {}
    left_got: list[int] = []
    for i, g in enumerate(got):
        key = _key(g, fold)
        if key is None:
            left_got.append(i)
        else:
            pool.setdefault(key, []).append(i)
    left_expected: list[int] = []
    for i, e in enumerate(expected):
        key = _key(e, fold)
        bucket = pool.get(key) if key is not None else None
        if bucket:
            bucket.pop()
        else:
            left_expected.append(i)
    if not left_expected:
        return None
    left_got += [i for bucket in pool.values() for i in bucket]
    if all(_is_number(got[i]) for i in left_got) and all(
        _is_number(expected[i]) for i in left_expected
    ):
        left_got.sort(key=got.__getitem__)  # sorted pairing is optimal for numbers
        left_expected.sort(key=expected.__getitem__)
        return _paired(got, expected, left_got, left_expected, tol, fold)
    got_text = {i: canonical(got[i]) for i in left_got}
    expected_text = {i: canonical(expected[i]) for i in left_expected}
    left_got.sort(key=got_text.__getitem__)  # near-equal elements line up: greedy stays short
    left_expected.sort(key=expected_text.__getitem__)
    if tol is not None and len(left_expected) <= PAIRWISE_LIMIT:
        sizes = (
            {i: len(t) for i, t in got_text.items()},
            {i: len(t) for i, t in expected_text.items()},
        )
        try:
            return _greedy(got, expected, list(left_got), left_expected, tol, fold, sizes)
        except _OverBudget:
            pass
    return _paired(got, expected, left_got, left_expected, tol, fold)


class _OverBudget(Exception):
    pass


def _greedy(
    got: list[Any],
    expected: list[Any],
    left_got: list[int],
    left_expected: list[int],
    tol: float,
    fold: bool,
    sizes: tuple[dict[int, int], dict[int, int]],  # canonical text lengths: output, expected
) -> Difference | None:
    """Each expected element takes the first unused output element equal to it."""
    spent, got_size, expected_size = 0, *sizes
    for i in left_expected:
        for j in left_got:
            # A comparison costs at most the smaller side's size: bound the quadratic total.
            spent += 12 + min(expected_size[i], got_size[j])
            if spent > WORK_LIMIT:
                raise _OverBudget
            if _first_difference(got[j], expected[i], tol, fold, "$") is None:
                left_got.remove(j)
                break
        else:
            return _unmatched(i, expected[i], got[left_got[0]])
    return None


def _paired(
    got: list[Any],
    expected: list[Any],
    left_got: list[int],
    left_expected: list[int],
    tol: float | None,
    fold: bool,
) -> Difference | None:
    """The sorted leftovers compared in order: exact without a tolerance, bounded with one."""
    for i, j in zip(left_expected, left_got, strict=True):
        if _first_difference(got[j], expected[i], tol, fold, "$") is not None:
            return _unmatched(i, expected[i], got[j])
    return None


def _unmatched(index: int, expected: Any, got: Any) -> Difference:
    detail = f"no output element matches the expected one ({_MULTISET_NOTE})"
    return Difference(f"$[{index}]", expected, got, detail)


def _key(value: Any, fold: bool) -> str | None:
    """Text equal exactly when the values are equal (no tolerance); None for nan or deep nesting."""
    try:
        plain = _plain(value, fold)
        return json.dumps(plain, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (ValueError, RecursionError):
        return None


def _plain(value: Any, fold: bool) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 1.0 == 1 and -0.0 == 0, so they must share a key
    if isinstance(value, str):
        return value.casefold() if fold else value
    if isinstance(value, list):
        return [_plain(v, fold) for v in value]
    if isinstance(value, dict):
        return {(k.casefold() if fold else k): _plain(v, fold) for k, v in value.items()}
    return value


def _fold_keys(value: dict[str, Any]) -> dict[str, Any]:
    return {k.casefold(): v for k, v in value.items()}  # keys that fold alike: the last wins


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _member(path: str, key: str) -> str:
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{_quoted(key)}]"


def _quoted(key: str) -> str:
    return json.dumps(key if len(key) <= 80 else key[:79] + "…", ensure_ascii=False)
