"""Compile and run stages (conformance, every backend): the compiler gets its stage's limits,
the program gets exactly the policy's, and the two are reported apart."""

from __future__ import annotations

import time

from crucible_ray.languages import LANGUAGES
from crucible_ray.models import EvalRequest

GO = "go"


def go(body: str, imports: str = '"fmt"') -> str:
    return f"package main\nimport ({imports})\nfunc main() {{\n{body}\n}}\n"


def run_go(runner, code: str, **request):
    return runner.run(EvalRequest(code=code, language=GO, **request))


def test_a_compiled_program_reports_its_compile_stage_apart_from_its_run(runner):
    started = time.monotonic()  # net/http linked in: a compile stage of a second or more
    result = run_go(runner, go('fmt.Println("hello")', imports='"fmt"; _ "net/http"'))
    elapsed_ms = (time.monotonic() - started) * 1000
    assert result.status == "succeeded", result
    assert (result.stdout, result.stderr, result.exit_code) == ("hello\n", "", 0)
    assert result.compile is not None and result.compile.status == "ok"
    assert result.compile.exit_code == 0 and result.compile.duration_ms > 0
    # Two stages one after the other, each timed on its own: together within the evaluation's
    # span (boot and teardown around them). A run timed from the start would count the compile
    # twice, and this compile takes longer than boot and teardown together.
    assert result.duration_ms is not None and result.duration_ms > 0
    assert result.duration_ms + result.compile.duration_ms <= elapsed_ms, (result, elapsed_ms)


def test_a_compile_error_is_its_own_outcome_with_the_compiler_output(runner):
    result = run_go(runner, go("undefined()", imports=""))
    assert result.status == "compile_error", result
    assert result.compile.status == "error" and result.compile.exit_code not in (0, None)
    assert "undefined" in result.compile.output
    # Nothing ran: the compiler's words are not the program's stderr.
    assert (result.stdout, result.stderr, result.exit_code) == ("", "", None)


def test_the_program_runs_with_the_policy_memory_not_the_compilers(runner):
    """The compile stage may use 512 MiB; the program gets the policy's 100 MiB."""
    touch = "b := make([]byte, {mb}<<20)\nfor i := range b {{ b[i] = 1 }}\n"
    touch += "fmt.Println(len(b) >> 20)"
    small = run_go(runner, go(touch.format(mb=20)))
    assert small.status == "succeeded" and small.stdout == "20\n", small
    big = run_go(runner, go(touch.format(mb=200)), timeout_s=20)
    assert big.status == "failed" and big.oom_killed, big


def test_the_program_runs_with_the_policy_process_limit_not_the_compilers(runner):
    body = """
	var procs []*exec.Cmd
	for len(procs) < 100 {
		cmd := exec.Command("sleep", "5")
		if err := cmd.Start(); err != nil {
			fmt.Println("spawned", len(procs), errors.Is(err, syscall.EAGAIN))
			return
		}
		procs = append(procs, cmd)
	}
	fmt.Println("spawned", len(procs))"""
    result = run_go(runner, go(body, imports='"errors";"fmt";"os/exec";"syscall"'))
    assert result.status == "succeeded", result
    spawned = int(result.stdout.split()[1])
    assert result.stdout.split()[2:] == ["true"], result.stdout  # refused: EAGAIN
    assert spawned < 50 <= LANGUAGES[GO].compile.pids_limit, result.stdout


def test_the_program_cannot_exec_from_tmp_nor_rewrite_its_artifact(runner):
    body = """
	os.WriteFile("/tmp/x.sh", []byte("#!/bin/sh\\necho ran\\n"), 0o755)
	_, err := exec.Command("/tmp/x.sh").Output()
	fmt.Println(errors.Is(err, os.ErrPermission))
	fmt.Println(errors.Is(os.WriteFile("/build/main", []byte("x"), 0o755), os.ErrPermission))
	entries, _ := os.ReadDir("/build")
	for _, e := range entries { fmt.Println(e.Name()) }"""
    result = run_go(runner, go(body, imports='"errors";"fmt";"os";"os/exec"'))
    assert result.status == "succeeded", result
    lines = result.stdout.splitlines()
    assert lines[:2] == ["true", "true"], result.stdout  # /tmp is noexec; /build/main read-only
    assert sorted(lines[2:]) == ["main", "main.go"]  # the compiler's caches are gone


def test_stdin_reaches_the_program_after_the_compile(runner):
    body = "data, _ := io.ReadAll(os.Stdin)\nfmt.Print(strings.ToUpper(string(data)))"
    result = run_go(runner, go(body, imports='"fmt";"io";"os";"strings"'), stdin="abc\ndef\n")
    assert result.status == "succeeded" and result.stdout == "ABC\nDEF\n", result
