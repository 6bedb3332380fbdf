import pydantic
import pytest

from crucible_ray.judge import _json
from crucible_ray.judge.compare import CompareSpec, Comparison, Mismatch, compare

END = "<end of output>"


def check(output: str, expected: str, **spec: object) -> Comparison:
    return compare(output, expected, CompareSpec(**spec))


def matched(output: str, expected: str, **spec: object) -> bool:
    result = check(output, expected, **spec)
    assert (result.mismatch is None) == result.matched  # set exactly when not matched
    return result.matched


# --- the spec --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"mode": "exact", "unordered_lines": True}, "unordered_lines does not apply"),
        ({"mode": "json", "unordered_lines": True}, "unordered_lines does not apply"),
        ({"mode": "regex", "unordered_lines": True}, "unordered_lines does not apply"),
        ({"mode": "tokens", "unordered": True}, "unordered applies to mode 'json' only"),
        ({"unordered": True}, "unordered applies to mode 'json' only"),
        ({"mode": "numeric", "float_tol": 0.1}, "float_tol applies to mode 'json' only"),
        ({"mode": "json", "float_tol": -1}, "greater than or equal to 0"),
        ({"mode": "numeric", "abs_tol": -1e-9}, "greater than or equal to 0"),
        ({"mode": "numeric", "rel_tol": float("nan")}, "greater than or equal to 0"),
        ({"mode": "fuzzy"}, "mode"),
        ({"tolerance": 1}, "Extra inputs are not permitted"),
    ],
)
def test_spec_refuses_combinations_that_make_no_sense(spec: dict, words: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=words):
        CompareSpec(**spec)


@pytest.mark.parametrize(
    "spec",
    [
        {"mode": "trailing_whitespace", "unordered_lines": True},
        {"mode": "lines", "unordered_lines": True},
        {"mode": "tokens", "unordered_lines": True, "case_insensitive": True},
        {"mode": "numeric", "unordered_lines": True, "abs_tol": 0, "rel_tol": 0.1},
        {"mode": "json", "unordered": True, "float_tol": 0.5, "case_insensitive": True},
        {"mode": "regex", "case_insensitive": True},
    ],
)
def test_spec_accepts_sensible_combinations(spec: dict) -> None:
    assert CompareSpec(**spec).model_dump().items() >= spec.items()


def test_spec_defaults_to_trailing_whitespace_and_is_frozen() -> None:
    spec = CompareSpec()
    assert (spec.mode, spec.abs_tol, spec.rel_tol, spec.float_tol) == (
        "trailing_whitespace",
        1e-6,
        1e-6,
        None,
    )
    with pytest.raises(pydantic.ValidationError):
        spec.mode = "exact"  # type: ignore[misc]


# --- exact -----------------------------------------------------------------------------------


def test_exact_matches_only_identical_text() -> None:
    assert check("a b\nc\n", "a b\nc\n", mode="exact") == Comparison(True, None)
    assert not matched("a b\nc", "a b\nc\n", mode="exact")
    assert not matched("a\r\nb", "a\nb", mode="exact")  # CRLF is a difference here


@pytest.mark.parametrize(
    ("output", "expected", "mismatch"),
    [
        ("abc\ndef", "abc\ndxf", Mismatch(2, 2, "xf", "ef")),
        ("ab", "ab\n", Mismatch(1, 3, "\\n", END)),  # output ended: just past its end
        ("ab\n", "ab", Mismatch(1, 3, END, "\\n")),
        ("x\ny", "x\nz\nw", Mismatch(2, 1, "z\\nw", "y")),  # newlines shown as \n
        ("", "0", Mismatch(1, 1, "0", END)),
    ],
)
def test_exact_mismatch_points_at_first_differing_character(
    output: str, expected: str, mismatch: Mismatch
) -> None:
    assert check(output, expected, mode="exact").mismatch == mismatch


def test_exact_case_insensitive_casefolds_both_sides() -> None:
    assert not matched("Straße", "STRASSE", mode="exact")
    assert matched("Straße", "STRASSE", mode="exact", case_insensitive=True)


# --- trailing_whitespace (the default) ---------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("1 2  \n3\t\n\n\n", "1 2\n3"),
        ("a\r\nb\r\n", "a\nb"),  # CRLF counts as LF
        ("a\nb", "a\nb\n\n"),
        ("", "\n\n"),
    ],
)
def test_trailing_whitespace_ignores_line_ends_and_trailing_blank_lines(
    output: str, expected: str
) -> None:
    assert matched(output, expected)


@pytest.mark.parametrize(
    ("output", "expected", "mismatch"),
    [
        (" 1", "1", Mismatch(1, 1, "1", " 1")),  # leading whitespace matters
        ("1  2", "1 2", Mismatch(1, 3, "1 2", "1  2")),  # inner whitespace matters
        ("1\n\n2", "1\n2", Mismatch(2, 1, "2", "")),  # inner blank lines matter
        ("ok\nab", "ok\nabc", Mismatch(2, 3, "abc", "ab")),
        ("1\n2\n3", "1\n2", Mismatch(3, 1, END, "3")),
    ],
)
def test_trailing_whitespace_mismatches(output: str, expected: str, mismatch: Mismatch) -> None:
    assert check(output, expected).mismatch == mismatch


def test_trailing_whitespace_missing_lines_say_how_many() -> None:
    assert check("1\n2\n", "1\n2\n3\n") == Comparison(
        False, Mismatch(3, 1, "3", END), "expected 3 lines, got 2"
    )


def test_trailing_whitespace_case_insensitive() -> None:
    assert not matched("YES\n", "yes")
    assert matched("YES\n", "yes", case_insensitive=True)


# --- lines -----------------------------------------------------------------------------------


def test_lines_strips_the_text_and_each_line() -> None:
    assert matched("\n\n  a  \n\tb\r\n\n", "a\nb", mode="lines")
    assert not matched("\n\n  a  \n\tb\r\n\n", "a\nb", mode="trailing_whitespace")
    assert not matched("a\n\nb", "a\nb", mode="lines")  # inner blank lines still count


def test_lines_mismatch_is_placed_in_the_output_not_the_stripped_text() -> None:
    result = check("\n  ab\n  xd", "ab\ncd", mode="lines")
    assert result.mismatch == Mismatch(3, 3, "cd", "xd")


def test_lines_count_differs() -> None:
    assert check("a", "a\nb", mode="lines") == Comparison(
        False, Mismatch(2, 1, "b", END), "expected 2 lines, got 1"
    )


# --- tokens ----------------------------------------------------------------------------------


def test_tokens_ignore_any_whitespace() -> None:
    assert matched("1  2\n\n3\t", "1\n2 3", mode="tokens")
    assert not matched("1  2\n\n3\t", "1\n2 3", mode="lines")
    assert not matched("1.0", "1", mode="tokens")  # text, not numbers


@pytest.mark.parametrize(
    ("output", "expected", "mismatch", "message"),
    [
        ("1 2 4", "1 2 3", Mismatch(1, 5, "3", "4"), None),
        ("a b\n  c  d", "a b c e", Mismatch(2, 6, "e", "d"), None),
        ("1 2\n", "1 2 3", Mismatch(1, 4, "3", END), "expected 3 tokens, got 2"),
        ("1 2 3", "1 2", Mismatch(1, 5, END, "3"), "expected 2 tokens, got 3"),
    ],
)
def test_tokens_mismatch_points_at_the_token(
    output: str, expected: str, mismatch: Mismatch, message: str | None
) -> None:
    assert check(output, expected, mode="tokens") == Comparison(False, mismatch, message)


def test_tokens_case_insensitive() -> None:
    assert not matched("YES no", "yes NO", mode="tokens")
    assert matched("YES no", "yes NO", mode="tokens", case_insensitive=True)


# --- numeric ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("-0", "0"),
        ("+5 007", "5 7"),
        ("+0012345678901234567890", "12345678901234567890"),  # as ints, exactly
        ("1e-7", "0"),  # within abs_tol
        ("1.0000001", "1"),
        ("1.0", "1"),
        ("-0.0", "0"),
        ("inf -inf", "inf -inf"),
        ("INF", "inf"),
        ("abc 1 def", "abc 1.0000000001 def"),
        ("1\n2.5", "1 2.5000001"),
    ],
)
def test_numeric_matches(output: str, expected: str) -> None:
    assert matched(output, expected, mode="numeric")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("12345678901234567891", "12345678901234567890"),  # floats would round these equal
        ("1" * 5000 + "2", "1" * 5000 + "3"),  # past int()'s 4300-digit limit
        ("nan", "nan"),
        ("inf", "-inf"),
        ("1e308", "inf"),
        ("abc", "1"),
        ("1", "abc"),
        ("1.1", "1"),
        ("1", "1 2"),
        ("", "0"),
        ("Abc", "abc"),
    ],
)
def test_numeric_mismatches(output: str, expected: str) -> None:
    assert not matched(output, expected, mode="numeric")


def test_numeric_abs_tol_and_rel_tol_each_apply() -> None:
    assert not matched("1e-7", "0", mode="numeric", abs_tol=0)  # rel_tol * 0 is 0
    assert matched("1e-7", "0", mode="numeric", abs_tol=1e-6, rel_tol=0)
    assert matched("1.0000001", "1", mode="numeric", abs_tol=0)  # rel_tol alone
    assert not matched("1.0000001", "1", mode="numeric", abs_tol=0, rel_tol=0)
    assert matched("1000000.5", "1000000", mode="numeric", abs_tol=0)  # 0.5 <= 1e-6 * 1e6
    assert not matched("1000002", "1000000.0", mode="numeric", abs_tol=0)
    assert not matched("inf", "1", mode="numeric", abs_tol=float("inf"))  # inf only equals inf


def test_numeric_relative_tolerance_is_taken_from_the_expected_side() -> None:
    assert matched("109.0", "100", mode="numeric", abs_tol=0, rel_tol=0.1)
    assert not matched("100", "90.9", mode="numeric", abs_tol=0, rel_tol=0.1)  # 9.1 > 9.09


def test_numeric_integers_ignore_the_tolerance() -> None:
    assert not matched("101", "100", mode="numeric", abs_tol=5, rel_tol=0.1)
    assert matched("101.0", "100", mode="numeric", abs_tol=5, rel_tol=0.1)


def test_numeric_mismatch_position_and_counts() -> None:
    assert check("1 2\n3.5 x", "1 2 3.5 y", mode="numeric").mismatch == Mismatch(2, 5, "y", "x")
    assert check("1 2.5", "1 2", mode="numeric").mismatch == Mismatch(1, 3, "2", "2.5")
    assert check("", "0", mode="numeric") == Comparison(
        False, Mismatch(1, 1, "0", END), "expected 1 tokens, got 0"
    )


def test_numeric_case_insensitive_applies_to_text_tokens() -> None:
    assert not matched("Yes 1", "yes 1.0", mode="numeric")
    assert matched("Yes 1", "yes 1.0", mode="numeric", case_insensitive=True)


@pytest.mark.parametrize("mode", ["trailing_whitespace", "lines", "tokens", "numeric"])
def test_empty_output_against_zero(mode: str) -> None:
    assert check("", "0", mode=mode).mismatch == Mismatch(1, 1, "0", END)


# --- unordered_lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "output", "expected"),
    [
        ("trailing_whitespace", "b  \na\n", "a\nb"),
        ("lines", "  b\na  \n", "a\nb"),
        ("tokens", "3 4\n\n1  2", "1 2\n3 4\n"),
        ("numeric", "2.0000001 1\n1 1", "1 1\n2 1"),
    ],
)
def test_unordered_lines_compares_lines_as_a_multiset(
    mode: str, output: str, expected: str
) -> None:
    assert not matched(output, expected, mode=mode)
    assert matched(output, expected, mode=mode, unordered_lines=True)


def test_unordered_lines_counts_duplicates() -> None:
    assert not matched("a\na\nb", "a\nb\nb", unordered_lines=True)
    assert not matched("1 2\n1 2", "1 2", mode="tokens", unordered_lines=True)


def test_unordered_lines_mismatch_refers_to_sorted_order() -> None:
    result = check("c\na", "a\nb", unordered_lines=True)
    assert result == Comparison(False, Mismatch(2, 1, "b", "c"), "lines compared in sorted order")
    result = check("5 1\n1 9", "1 2\n5 1", mode="numeric", unordered_lines=True)
    assert result.mismatch == Mismatch(1, 3, "2", "9")
    assert result.message == "lines compared in sorted order"


def test_unordered_lines_missing_line() -> None:
    result = check("b", "b\na", mode="tokens", unordered_lines=True)
    assert result.mismatch == Mismatch(1, 1, "a", "b")  # sorted: a, b against b
    assert check("a", "b\na", mode="tokens", unordered_lines=True).mismatch == Mismatch(
        2, 1, "b", END
    )
    assert result.message == "expected 2 lines, got 1; lines compared in sorted order"


# --- json ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('{"b": 1, "a": [1, 2]}', '{"a":[1,2],"b":1}'),
        ("[1, 2.0, -0.0]", "[1.0, 2, 0]"),
        ('  {"a": null}\n', '{"a": null}'),
    ],
)
def test_json_matches_by_value_whatever_the_key_order(output: str, expected: str) -> None:
    assert matched(output, expected, mode="json")


@pytest.mark.parametrize(
    ("output", "expected"),
    [("true", "1"), ("[1]", "[true]"), ("false", "0"), ('"1"', "1"), ("null", "0"), ("[1]", "1")],
)
def test_json_bool_is_not_a_number_and_types_matter(output: str, expected: str) -> None:
    assert not matched(output, expected, mode="json")


def test_json_path_of_the_first_difference() -> None:
    output = '[{"name": "ann"}, {"name": "cy"}, {"name": "alice"}]'
    expected = '[{"name": "ann"}, {"name": "cy"}, {"name": "bob"}]'
    assert check(output, expected, mode="json") == Comparison(
        False, Mismatch(1, 1, '"bob"', '"alice"'), 'at $[2].name: expected "bob", got "alice"'
    )


@pytest.mark.parametrize(
    ("output", "expected", "message"),
    [
        ('{"a": 1}', '{"a": 1, "b": 2}', 'at $: missing key "b"'),
        ('{"a": 1, "z": 2}', '{"a": 1}', 'at $: unexpected key "z"'),
        ('{"a b": [1, 2]}', '{"a b": [1, 2, 3]}', 'at $["a b"]: expected 3 elements, got 2'),
        ('{"x": {"y": 1}}', '{"x": {"y": 1.5}}', "at $.x.y: expected 1.5, got 1"),
        ("NaN", "NaN", "at $: expected NaN, got NaN"),  # nan equals nothing
    ],
)
def test_json_messages(output: str, expected: str, message: str) -> None:
    assert check(output, expected, mode="json").message == message


def test_json_excerpts_are_canonical_and_cut_to_80() -> None:
    result = check('{"b": [1, 2], "a": 0}', '{"a": 0, "b": [1, 3]}', mode="json")
    assert result.mismatch == Mismatch(1, 1, "3", "2")
    result = check("[1]", "[" + ", ".join(["12345"] * 40) + "]", mode="json")
    assert result.mismatch is not None and len(result.mismatch.expected) == 80
    assert result.mismatch.expected == "[" + "12345," * 13 + "…"
    assert result.mismatch.got == "[1]"


def test_json_float_tol() -> None:
    assert not matched("[0.1000001]", "[0.1]", mode="json")  # floats exact by default
    assert matched("[0.1000001]", "[0.1]", mode="json", float_tol=1e-6)
    assert not matched("[0.100002]", "[0.1]", mode="json", float_tol=1e-6)
    assert not matched("2", "1", mode="json", float_tol=5)  # two ints compare exactly
    assert matched("2.0", "1", mode="json", float_tol=5)


def test_json_unordered_top_level_list_is_a_multiset() -> None:
    assert not matched("[3, 1, 2]", "[1, 2, 3]", mode="json")
    assert matched("[3, 1, 2]", "[1, 2, 3]", mode="json", unordered=True)
    assert matched('[2, 1.0, {"k": 1}]', '[{"k": 1.0}, 1, 2]', mode="json", unordered=True)
    assert not matched("[[2, 1]]", "[[1, 2]]", mode="json", unordered=True)  # top level only
    assert not matched("[true, 1]", "[1, 1]", mode="json", unordered=True)


def test_json_unordered_counts_duplicates() -> None:
    result = check("[1, 1, 2]", "[1, 2, 2]", mode="json", unordered=True)
    assert result.mismatch == Mismatch(1, 1, "2", "1")
    assert result.message == (
        "at $[2]: no output element matches the expected one "
        "(top-level list compared as a multiset)"
    )
    assert check("[1, 2]", "[1, 2, 2]", mode="json", unordered=True).message == (
        "at $: expected 3 elements, got 2 (top-level list compared as a multiset)"
    )


def test_json_multiset_keys_are_equal_exactly_when_values_are() -> None:
    # Elements with equal keys are paired in linear time before any pair-by-pair matching.
    assert _json._key([1.0, -0.0, {"A": "x"}], True) == _json._key([1, 0, {"a": "X"}], True)
    assert _json._key(True, False) != _json._key(1, False)
    assert _json._key(float("nan"), False) is None  # nan equals nothing, so it gets no key


def test_json_unordered_with_float_tol() -> None:
    spec = {"mode": "json", "unordered": True, "float_tol": 1e-6}
    assert matched("[2.0000001, 1, 3]", "[3, 1, 2]", **spec)
    assert matched('[{"x": 2.0000001}, {"x": 1}]', '[{"x": 1}, {"x": 2}]', **spec)
    assert not matched('[{"x": 2.01}, {"x": 1}]', '[{"x": 1}, {"x": 2}]', **spec)


def test_json_unordered_tolerance_work_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # Sorted by canonical text, "10" comes before "2" but "2.0000001" before "9.9999999": only
    # pair-by-pair matching pairs them right. Past the work limit, the sorted pairing decides.
    output, expected = '[{"x": 9.9999999}, {"x": 2.0000001}]', '[{"x": 10}, {"x": 2}]'
    spec = {"mode": "json", "unordered": True, "float_tol": 1e-6}
    assert matched(output, expected, **spec)
    monkeypatch.setattr(_json, "WORK_LIMIT", 0)
    assert not matched(output, expected, **spec)
    assert matched("[9.9999999, 2.0000001]", "[10, 2]", **spec)  # numbers: sorted by value


def test_json_case_insensitive_folds_strings_and_keys() -> None:
    assert not matched('{"Name": "BOB"}', '{"name": "bob"}', mode="json")
    assert matched('{"Name": "BOB"}', '{"name": "bob"}', mode="json", case_insensitive=True)
    assert matched('["B", "a"]', '["A", "b"]', mode="json", case_insensitive=True, unordered=True)


@pytest.mark.parametrize("output", ["not json", "", "[1, 2", "1 2", "[" * 100_000])
def test_json_invalid_output_is_not_matched(output: str) -> None:
    result = check(output, "[1, 2]", mode="json")
    assert not result.matched and result.message is not None
    assert result.message.startswith("output is not valid JSON")
    assert result.mismatch is not None and result.mismatch.expected == "[1,2]"


@pytest.mark.parametrize("expected", ["{oops", ""])
def test_json_invalid_expected_is_the_authors_error(expected: str) -> None:
    with pytest.raises(ValueError, match="expected answer is not valid JSON"):
        check("{}", expected, mode="json")


# --- regex -----------------------------------------------------------------------------------


def test_regex_must_match_the_whole_output() -> None:
    assert matched("hello world\n", r"hello \w+", mode="regex")
    assert not matched("hello world and more", r"hello \w+", mode="regex")
    assert not matched("abc 123", r"\d+", mode="regex")  # re.search would find it


def test_regex_sees_the_trailing_whitespace_normalised_output() -> None:
    assert matched("a  \r\nb\t\n\n", "a\nb", mode="regex")
    assert matched("a\nb", "^a$\n^b$", mode="regex")  # MULTILINE
    assert matched("a\nb", "a.b", mode="regex")  # DOTALL


def test_regex_mismatch_and_case() -> None:
    result = check("HELLO\n", "hel+o", mode="regex")
    assert result == Comparison(
        False, Mismatch(1, 1, "hel+o", "HELLO"), "pattern hel+o did not match"
    )
    assert matched("HELLO\n", "hel+o", mode="regex", case_insensitive=True)


@pytest.mark.parametrize(
    ("pattern", "words"),
    [("(", "not a valid regular expression"), ("a" * 4097, "longer than 4096")],
)
def test_regex_bad_pattern_is_the_authors_error(pattern: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check("a", pattern, mode="regex")
    assert matched("a" * 4096, "a" * 4096, mode="regex")


# --- excerpts and size -----------------------------------------------------------------------


def test_excerpts_are_cut_to_80_characters() -> None:
    result = check("x" * 200, "y" * 200)
    assert result.mismatch == Mismatch(1, 1, "y" * 79 + "…", "x" * 79 + "…")
    assert check("x" * 80, "y" * 80).mismatch == Mismatch(1, 1, "y" * 80, "x" * 80)


MIB_LINES = ("a" * 1023 + "\n") * 1023 + "a" * 1024


@pytest.mark.parametrize(
    ("mode", "column"),
    [
        ("exact", 1024),
        ("trailing_whitespace", 1024),
        ("lines", 1024),
        ("tokens", 1),
        ("numeric", 1),
    ],
)
def test_one_mebibyte_outputs_differing_at_the_last_byte(mode: str, column: int) -> None:
    assert len(MIB_LINES) == 1 << 20
    result = check(MIB_LINES[:-1] + "b", MIB_LINES, mode=mode)
    assert result.mismatch is not None
    assert (result.mismatch.line, result.mismatch.column) == (1024, column)
    assert result.mismatch.got.endswith("b" if mode == "exact" else "…")
