"""Every compiled language (conformance, every backend): hello world with stdin, a compile
error reported as such, a runtime error, memory exhausted at the run stage's limit (not the
compiler's), and a timeout."""

from __future__ import annotations

import pytest

from crucible_ray.models import EvalRequest

# Each program reads one line of stdin and prints "hello <line>".
ECHO = {
    "go": 'package main\nimport ("bufio";"fmt";"os")\nfunc main() {\n'
    '\ts := bufio.NewScanner(os.Stdin)\n\ts.Scan()\n\tfmt.Println("hello", s.Text())\n}\n',
    "c": "#include <stdio.h>\nint main(void) { char b[64]; if (!fgets(b, sizeof b, stdin)) "
    'return 1; printf("hello %s", b); return 0; }',
    "cpp": "#include <bits/stdc++.h>\nint main() { std::string s; std::getline(std::cin, s);"
    ' std::cout << "hello " << s << "\\n"; }',
    "rust": "use std::io::BufRead;\nfn main() { let mut s = String::new();"
    " std::io::stdin().lock().read_line(&mut s).unwrap();"
    ' print!("hello {}", s); }',
    "java": "import java.util.Scanner;\npublic class Solution {\n"
    "  public static void main(String[] args) {\n"
    '    System.out.println("hello " + new Scanner(System.in).nextLine());\n  }\n}\n',
}
BROKEN = {  # each names an identifier that the compiler reports
    "go": "package main\nfunc main() { missingThing() }",
    "c": "int main(void) { return missingThing(); }",
    "cpp": "int main() { return missingThing(); }",
    "rust": "fn main() { missingThing(); }",
    "java": "public class Main { public static void main(String[] a) { missingThing(); } }",
}
CRASH = {  # exit status 3 from the program's own error path
    "go": 'package main\nimport "os"\nfunc main() { os.Stderr.WriteString("boom\\n"); os.Exit(3) }',
    "c": '#include <stdio.h>\nint main(void) { fputs("boom\\n", stderr); return 3; }',
    "cpp": '#include <iostream>\nint main() { std::cerr << "boom\\n"; return 3; }',
    "rust": 'fn main() { eprintln!("boom"); std::process::exit(3); }',
    "java": 'public class Main { public static void main(String[] a) { System.err.println("boom");'
    " System.exit(3); } }",
}
# 200 MiB, touched: within the compile stage's 512 MiB, beyond the run's 100 MiB.
HOG = {
    "go": 'package main\nimport "fmt"\nfunc main() { b := make([]byte, 200<<20); '
    "for i := range b { b[i] = 1 }; fmt.Println(len(b)) }",
    "c": "#include <stdlib.h>\n#include <stdio.h>\n"  # volatile: -O2 may not drop the pages
    "int main(void) { volatile char *p = malloc(200 << 20); long s = 0;"
    " for (long i = 0; i < (200L << 20); i += 4096) { p[i] = 1; s += p[i]; }"
    ' printf("%ld\\n", s); return 0; }',
    "cpp": "#include <bits/stdc++.h>\nint main() { std::vector<char> v(200 << 20, 1);"
    " std::cout << int(v[7]) << std::endl; }",
    "rust": 'fn main() { let v = vec![1u8; 200 << 20]; println!("{}", v[7]); }',
    "java": "public class Main { public static void main(String[] a) {"
    " byte[][] keep = new byte[200][]; for (int i = 0; i < 200; i++) keep[i] = new byte[1 << 20];"
    " System.out.println(keep.length); } }",
}
SPIN = {
    "go": "package main\nfunc main() { for {} }",
    "c": "int main(void) { for (;;) {} }",
    "cpp": "int main() { for (;;) {} }",
    "rust": "fn main() { loop {} }",
    "java": "public class Main { public static void main(String[] a) { while (true) {} } }",
}

# 200 threads, each blocked for 10 s: far over the run's process limit (C and C++ have theirs in
# test_native.py). Each prints "200" only if every thread started.
THREAD_BOMB = {
    "go": 'package main\nimport ("fmt";"syscall")\nfunc main() { for i := 0; i < 200; i++ {'
    " go func() { ts := syscall.Timespec{Sec: 10}; syscall.Nanosleep(&ts, nil) }() };"
    " ts := syscall.Timespec{Sec: 2}; syscall.Nanosleep(&ts, nil); fmt.Println(200) }",
    "rust": "fn main() { for n in 0..200 { if std::thread::Builder::new().spawn(||"
    " std::thread::sleep(std::time::Duration::from_secs(10))).is_err() {"
    ' println!("stopped at {}", n); std::process::exit(4); } } println!("200"); }',
    "java": "public class Main { public static void main(String[] a) { int n = 0; try {"
    " for (; n < 200; n++) { Thread t = new Thread(() -> { try { Thread.sleep(10000); }"
    " catch (InterruptedException e) { } }); t.setDaemon(true); t.start(); } }"
    ' catch (Throwable e) { System.out.println("stopped at " + n); System.exit(4); }'
    " System.out.println(n); } }",
}


@pytest.fixture(params=sorted(ECHO))
def language(request) -> str:
    return request.param


def run(runner, language: str, code: str, **fields):
    return runner.run(EvalRequest(code=code, language=language, **fields))


def test_hello_world_with_stdin(runner, language):
    result = run(runner, language, ECHO[language], stdin="world\n")
    assert result.status == "succeeded", result
    assert (result.stdout, result.stderr) == ("hello world\n", ""), result
    assert result.compile.status == "ok" and result.compile.duration_ms > 0


def test_a_compile_error_is_reported_as_such(runner, language):
    result = run(runner, language, BROKEN[language])
    assert result.status == "compile_error" and result.compile.status == "error", result
    assert "missingThing" in result.compile.output
    assert (result.stdout, result.stderr, result.exit_code) == ("", "", None)


def test_a_runtime_error_is_the_programs_exit(runner, language):
    result = run(runner, language, CRASH[language])
    assert result.status == "failed" and result.exit_code == 3, result
    assert result.stderr == "boom\n" and result.compile.status == "ok"


def test_memory_is_exhausted_at_the_run_stage_limit(runner, language):
    result = run(runner, language, HOG[language], timeout_s=20)
    assert result.status == "failed" and result.oom_killed, result
    assert result.compile.status == "ok"


def test_an_endless_loop_times_out(runner, language):
    result = run(runner, language, SPIN[language], timeout_s=2)
    assert result.status == "timed_out" and result.exit_code is None, result


@pytest.mark.parametrize("bomb_language", sorted(THREAD_BOMB))
def test_a_thread_bomb_stops_at_the_process_limit(runner, bomb_language):
    result = run(runner, bomb_language, THREAD_BOMB[bomb_language], timeout_s=20)
    assert result.status == "failed", result  # not timed_out: stopped, not left to hang
    assert result.exit_code not in (0, None) and "200" not in result.stdout, result
    assert result.compile.status == "ok"
