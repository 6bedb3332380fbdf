"""Ordinary programs in real gVisor sandboxes, on every backend (the conformance suite):
every language, stdin, exit codes, errors."""

import hashlib
import json
import os

import pytest

from crucible_ray import EvalRequest, InvalidRequest, UnsupportedLanguage

pytestmark = pytest.mark.docker

HELLO = {
    "python": "import sys\nprint('hello', sys.stdin.read().strip())",
    "javascript": "let s='';process.stdin.on('data',d=>s+=d)"
    ".on('end',()=>console.log('hello',s.trim()))",
    "go": 'package main\nimport ("fmt";"io";"os";"strings")\n'
    'func main(){b,_:=io.ReadAll(os.Stdin);fmt.Println("hello",strings.TrimSpace(string(b)))}',
}


@pytest.mark.parametrize("language", sorted(HELLO))
def test_hello_world_in_each_language_under_gvisor(runner, backend_name, language):
    result = runner.run(EvalRequest(code=HELLO[language], language=language, stdin="world\n"))
    assert result.status == "succeeded", result
    assert result.stdout == "hello world\n"
    assert (result.runtime, result.backend) == ("runsc", backend_name)
    assert (result.exit_code, result.runtime, result.language) == (0, "runsc", language)
    assert result.stderr == "" and not result.truncated and not result.oom_killed
    assert result.duration_ms > 0 and result.finished_at >= result.created_at


def test_exit_code_and_stderr(runner):
    result = runner.run(EvalRequest(code="import sys\nprint('bad', file=sys.stderr)\nsys.exit(3)"))
    assert (result.status, result.exit_code, result.stderr) == ("failed", 3, "bad\n")


def test_uncaught_exception_traceback_shows_user_code_only(runner):
    result = runner.run(EvalRequest(code="def f():\n    raise ValueError('boom')\nf()\n"))
    assert result.status == "failed" and result.exit_code == 1
    assert 'File "/tmp/main.py", line 2, in f' in result.stderr
    assert "    raise ValueError('boom')" in result.stderr  # the source line: a real file
    assert "launch.py" not in result.stderr and result.stderr.endswith("ValueError: boom\n")


def test_program_sees_itself_as_main_with_full_stdlib(runner):
    code = (
        "import sys, shutil, json, sqlite3, multiprocessing\n"
        "if __name__ == '__main__':\n"
        "    print(sys.argv[0], __file__, exit is not None)\n"
    )
    result = runner.run(EvalRequest(code=code))
    assert result.stdout == "/tmp/main.py /tmp/main.py True\n", result.stderr


IMPORT_ALL = """
import importlib, json, sys
skip = {"antigravity", "this", "idlelib", "turtledemo"}  # open a browser, print, start a GUI
importable = []
for name in sorted(sys.stdlib_module_names - skip):
    try:
        importlib.import_module(name)
        importable.append(name)
    except Exception:  # absent here (Windows-only, tkinter...): compared, not judged
        pass
print(json.dumps(importable))
"""


def test_the_whole_standard_library_imports_as_with_site(runner):
    """The launcher starts Python with -I -S -B: every standard-library module importable
    with ``site`` (a plain ``python3 -I`` in the same sandbox) is importable in the program,
    and site's builtins are there."""
    code = (
        "import subprocess, sys\n"
        f"IMPORT_ALL = {IMPORT_ALL!r}\n"
        "with_site = subprocess.run([sys.executable, '-I', '-c', IMPORT_ALL],\n"
        "                           capture_output=True, text=True, check=True).stdout\n"
        "print(with_site, end='')\n"
        "exec(IMPORT_ALL)\n"
        "print(sys.flags.no_site, all(callable(f) for f in (exit, quit, help, copyright)))\n"
    )
    result = runner.run(EvalRequest(code=code, timeout_s=30))
    assert result.status == "succeeded", result
    with_site, without, flags = result.stdout.splitlines()
    assert json.loads(without) == json.loads(with_site), result.stdout
    assert len(json.loads(without)) > 150  # the full standard library, not python3-minimal
    assert flags == "1 True"  # -S really is in effect, and the builtins came from the launcher


@pytest.mark.parametrize("language", ["python", "go"])
def test_code_and_stdin_arrive_exactly_however_large(runner, language):
    """The launcher takes exactly the code's bytes off stdin and leaves the program the rest:
    large code (near the limit, no final newline) and large binary stdin both arrive intact."""
    stdin = bytes(range(256)).decode("latin-1") * 800  # ~200 KB, every byte value, UTF-8 encoded
    padding = "#" + "x" * 90_000 + "\n"
    code = {
        "python": padding + "import sys, hashlib\n"
        "print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest(), end='')",
        "go": "// " + padding + 'package main\nimport ("crypto/sha256";"fmt";"io";"os")\n'
        'func main(){b,_:=io.ReadAll(os.Stdin);fmt.Printf("%x",sha256.Sum256(b))}',
    }[language]
    result = runner.run(EvalRequest(code=code, language=language, stdin=stdin, timeout_s=30))
    assert result.status == "succeeded", result
    assert result.stdout == hashlib.sha256(stdin.encode()).hexdigest()


def test_go_compile_error_is_reported_with_the_compiler_message(runner):
    result = runner.run(
        EvalRequest(code="package main\nfunc main() { undefined() }", language="go")
    )
    assert result.status == "compile_error" and result.exit_code is None
    assert "undefined" in result.compile.output and result.stderr == ""


def test_javascript_runtime_error(runner):
    result = runner.run(EvalRequest(code="null.x", language="javascript"))
    assert result.status == "failed" and "TypeError" in result.stderr


def test_host_environment_never_reaches_the_sandbox(runner, monkeypatch):
    monkeypatch.setenv("CRUCIBLE_TEST_SECRET", "hunter2")
    assert os.environ["CRUCIBLE_TEST_SECRET"] == "hunter2"
    code = "import os\nprint(sorted(os.environ))\nprint(open('/proc/1/environ','rb').read())"
    result = runner.run(EvalRequest(code=code))
    assert result.status == "succeeded", result
    assert "hunter2" not in result.stdout and "CRUCIBLE_TEST_SECRET" not in result.stdout
    assert "HOME" in result.stdout


def test_identity_and_hardening_seen_from_inside(runner):
    code = (
        "import os\n"
        "print(os.getuid(), os.getgid())\n"
        "status = open('/proc/self/status').read()\n"
        "print([l for l in status.splitlines() if l.startswith(('CapEff', 'NoNewPrivs'))])\n"
        "print(open('/proc/version').read().split()[2])\n"
    )
    result = runner.run(EvalRequest(code=code))
    lines = result.stdout.splitlines()
    assert lines[0] == "65534 65534"
    assert "CapEff:\\t0000000000000000" in lines[1]
    assert lines[2] == "4.4.0"  # gVisor's kernel, not the host's


@pytest.mark.parametrize(
    "request_fields,field",
    [({"code": "x" * 100_001}, "code"), ({"code": "1", "stdin": "x" * (1 << 20 + 1)}, "stdin"),
     ({"code": "1", "timeout_s": 31}, "timeout_s")],
)  # fmt: skip
def test_invalid_requests_are_refused_before_anything_runs(runner, request_fields, field):
    with pytest.raises(InvalidRequest) as info:
        runner.run(EvalRequest(**request_fields))
    assert info.value.field == field


def test_unknown_language_is_refused(runner):
    with pytest.raises(UnsupportedLanguage):
        runner.run(EvalRequest(code="1", language="cobol"))
