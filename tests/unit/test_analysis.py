from crucible_ray.analysis import python_warnings, warnings_for


def test_flags_dangerous_imports_and_calls():
    code = "import os, ctypes\nfrom subprocess import run\neval('1')\n().__class__.__subclasses__()"
    assert python_warnings(code) == [
        "calls eval()",
        "imports ctypes (loads native code)",
        "imports os (operating system)",
        "imports subprocess (starts processes)",
        "introspects __subclasses__",
    ]


def test_clean_code_and_other_languages_have_no_warnings():
    assert python_warnings("print(sum(range(10)))") == []
    assert warnings_for("javascript", "require('child_process')") == []


def test_never_raises_on_bad_source():
    assert python_warnings("def (:") == ["syntax error at line 1: invalid syntax"]
    deep = python_warnings("(" * 100_000)
    assert len(deep) == 1 and ("could not be analysed" in deep[0] or "syntax error" in deep[0])


def test_analysis_is_bounded_per_source_and_per_request():
    from crucible_ray.analysis import (
        MAX_SOURCE_BYTES,
        OVER_BUDGET,
        TOO_LARGE,
        warnings_for_all,
    )

    big = "import os\n" + "x = 1\n" * (MAX_SOURCE_BYTES // 6)  # just over one source's bound
    assert warnings_for("python", big) == [TOO_LARGE]
    small = "import os\n" + "#" * 990  # 1,000 bytes
    found = warnings_for_all([("python", small)] * 3 + [("go", "package main")], 2_500)
    imports_os = ["imports os (operating system)"]
    assert found == [imports_os, imports_os, [OVER_BUDGET], []]  # the third is over budget
