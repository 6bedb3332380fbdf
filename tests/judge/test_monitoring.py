"""Runtime monitoring of judging sessions (both backends, real gVisor): what the submission
does in any of its tests reaches the judgement's ``security``; the judge driver's own process
starts raise nothing (exec rules stay off in a session, every other rule applies)."""

from __future__ import annotations

TESTS = [("2\n", "4\n"), ("3\n", "6\n"), ("5\n", "10\n")]
CONNECTS = (
    "import socket\ns = socket.socket()\ns.settimeout(1)\n"
    "try:\n    s.connect(('203.0.113.5', 80))\nexcept OSError:\n    pass\n"
    "print(int(input()) * 2)"
)


def test_a_submissions_network_attempts_in_every_test_are_counted(run_judge):
    judged = run_judge(CONNECTS, TESTS)
    assert judged.verdict == "AC" and judged.security is not None, judged
    assert judged.security.counts == {"network_socket": 3, "network_connect": 3}
    assert judged.security.complete
    assert {e.detail for e in judged.security.events if e.rule == "network_connect"} == {
        "connect(203.0.113.5:80)"}  # fmt: skip


def test_the_drivers_own_processes_raise_nothing(run_judge):
    for language, code in (
        ("python", "print(int(input()) * 2)"),
        ("c", '#include <stdio.h>\nint main(void) { int x; scanf("%d", &x); '
              'printf("%d\\n", 2 * x); return 0; }'),
    ):  # fmt: skip
        judged = run_judge(code, TESTS, language=language)
        assert judged.verdict == "AC", judged
        assert judged.security is not None and judged.security.counts == {}, judged.security


def test_a_proc_write_in_a_test_is_an_escape_attempt(run_judge):
    code = ("try:\n    open('/proc/self/attr/current', 'w').write('x')\nexcept OSError:\n"
            "    pass\nprint(int(input()) * 2)")  # fmt: skip
    judged = run_judge(code, TESTS[:1])
    event = next(e for e in judged.security.events if e.rule == "proc_sys_write")
    assert event.alert == "container_escape_attempt"
