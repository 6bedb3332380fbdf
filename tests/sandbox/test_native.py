"""C and C++ (conformance, every backend): the hostile-program suite written in C, compiled by
both gcc and g++ (every program here is valid C and C++), run with exactly the policy's limits.
What every compiled language must do (stdin, compile errors, limits) is in test_languages.py."""

from __future__ import annotations

import pytest

from crucible_ray.models import EvalRequest

NATIVE = ("c", "cpp")
HEADERS = """
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
"""


def run(runner, language: str, body: str, stdin: str = "", timeout_s: float = 10, extra=""):
    code = f"{HEADERS}\n{extra}\nint main(void) {{\n{body}\n}}\n"
    return runner.run(EvalRequest(code=code, language=language, stdin=stdin, timeout_s=timeout_s))


@pytest.fixture(params=NATIVE)
def language(request) -> str:
    return request.param


def test_cpp_has_the_whole_standard_library_precompiled(runner):
    code = """#include <bits/stdc++.h>
using namespace std;
int main() {
    vector<long long> v{5, 3, 9, 1};
    sort(v.begin(), v.end());
    map<string, int> m{{"a", 1}};
    cout << accumulate(v.begin(), v.end(), 0LL) << ' ' << v.front() << ' ' << m["a"] << endl;
}"""
    result = runner.run(EvalRequest(code=code, language="cpp"))
    assert result.status == "succeeded" and result.stdout == "18 1 1\n", result


def test_a_crash_is_a_failure_with_the_signal_in_the_exit_code(runner, language):
    result = run(runner, language, "volatile int *p = 0;\n*p = 1;\nreturn 0;")
    assert result.status == "failed" and result.exit_code == 128 + 11, result  # SIGSEGV


def test_memory_bomb_is_oom_killed_at_the_run_limit(runner, language):
    body = """
    for (;;) {
        char *p = (char *)malloc(8 << 20);
        if (!p) return 9;
        memset(p, 1, 8 << 20);
    }"""
    result = run(runner, language, body, timeout_s=20)
    assert result.status == "failed" and result.oom_killed, result


def test_fork_bomb_is_contained_and_the_process_limit_is_the_policys(runner, language):
    bomb = run(runner, language, "for (;;) fork();", timeout_s=5)
    assert bomb.status == "timed_out" or bomb.oom_killed, bomb
    body = """
    int n = 0;
    for (; n < 200; n++) {
        pid_t pid = fork();
        if (pid == 0) { sleep(5); _exit(0); }
        if (pid < 0) { printf("%d %s\\n", n, errno == EAGAIN ? "EAGAIN" : strerror(errno)); break; }
    }
    return 0;"""
    result = run(runner, language, body)
    assert result.status == "succeeded", result
    spawned, error = result.stdout.split()
    assert error == "EAGAIN" and int(spawned) == 49, result.stdout  # 50 with the program


def test_thread_bomb_is_contained(runner, language):
    extra = "static void *sleeper(void *arg) { (void)arg; sleep(5); return 0; }"
    body = """
    int n = 0;
    pthread_t t;
    while (n < 1000 && pthread_create(&t, 0, sleeper, 0) == 0) n++;
    printf("%d\\n", n);
    return 0;"""
    result = run(runner, language, body, extra=extra)
    assert result.status == "succeeded" and int(result.stdout) < 50, result


def test_output_flood_is_capped(runner, language):
    body = """
    static char chunk[1 << 20];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 1024; i++) fwrite(chunk, 1, sizeof chunk, stdout);
    return 0;"""
    result = run(runner, language, body, timeout_s=30)
    assert result.truncated and len(result.stdout) == 1 << 20, len(result.stdout)


def test_no_network_no_privileges_no_host_files_and_bounded_disk(runner, language):
    body = """
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    a.sin_addr.s_addr = inet_addr("1.1.1.1");
    printf("connect %d\\n", s >= 0 ? connect(s, (struct sockaddr *)&a, sizeof a) : -1);
    printf("setuid %d\\n", setuid(0));
    printf("shadow %d\\n", open("/etc/shadow", O_RDONLY) >= 0);
    printf("root %d\\n", open("/escape", O_WRONLY | O_CREAT, 0644) >= 0);
    FILE *f = fopen("/tmp/fill", "w");
    static char mb[1 << 20];
    int written = 0;
    while (written < 512 && fwrite(mb, 1, sizeof mb, f) == sizeof mb && fflush(f) == 0) written++;
    printf("tmp %s\\n", written < 512 ? "bounded" : "unbounded");
    return 0;"""
    result = run(runner, language, body)
    assert result.status == "succeeded", result
    assert result.stdout.splitlines() == [
        "connect -1", "setuid -1", "shadow 0", "root 0", "tmp bounded",
    ]  # fmt: skip
