"""Per-language environment and heap sizing (pure logic)."""

from __future__ import annotations

from crucible_ray.languages import HEAP_SHARE, LANGUAGES


def test_runtimes_heaps_follow_the_sandbox_memory_limit():
    js, go = LANGUAGES["javascript"], LANGUAGES["go"]
    assert js.environment(100)["NODE_OPTIONS"] == "--max-old-space-size=50"
    assert js.environment(1000)["NODE_OPTIONS"] == "--max-old-space-size=500"
    assert go.environment(512)["GOMEMLIMIT"] == f"{int(512 * HEAP_SHARE)}MiB"
    assert js.environment(32)["NODE_OPTIONS"] == "--max-old-space-size=16"  # a floor


def test_the_environment_keeps_the_language_variables_and_adds_nothing_of_the_host():
    python = LANGUAGES["python"]
    assert python.environment(100) == python.env
    go = LANGUAGES["go"].environment(512)
    assert go["GOPROXY"] == "off" and go["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert set(go) == set(LANGUAGES["go"].env) | {"GOMEMLIMIT"}


def test_a_runtime_stopping_at_its_heap_limit_counts_as_out_of_memory():
    js = LANGUAGES["javascript"]
    fatal = "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n"
    assert js.ran_out_of_heap(134, fatal)
    assert not js.ran_out_of_heap(0, fatal)  # a program that printed it and went on
    assert not js.ran_out_of_heap(1, "TypeError: x is not a function\n")
    assert not js.ran_out_of_heap(None, fatal)  # timed out: not an exit of its own
    assert not LANGUAGES["python"].ran_out_of_heap(1, fatal)  # python has no such marker
