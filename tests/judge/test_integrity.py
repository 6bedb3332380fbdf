"""A submission cannot pass, or hurt another test, by anything but its output (every backend):
what one test leaves behind never reaches the next, and nothing it writes passes for the
judge's own report."""

from __future__ import annotations

LINGER = """
import os, sys, time
what = sys.stdin.read().strip()
if what == "leave":
    open("/tmp/left", "w").write("x")
    open("/dev/shm/left", "w").write("x")
    os.chmod("/tmp/main.py", 0o644)
    with open("/tmp/main.py", "a") as me:
        me.write("\\nprint('tampered')\\n")
    os.mkdir("/tmp/locked")
    os.chmod("/tmp/locked", 0)
    if os.fork() == 0:  # a process that outlives its test and prints into the next one
        os.setsid()
        time.sleep(1.0)
        print("from the previous test", flush=True)
        os._exit(0)
    print("left")
else:
    time.sleep(1.5)
    others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())]
    def zygote(pid):  # the judge's own (Python images), which runs nothing of any test's
        try:
            return open(f"/proc/{pid}/comm").read().strip() == "crucible-zygote"
        except OSError:
            return False
    print(sorted(os.listdir("/tmp")), os.listdir("/dev/shm"), [p for p in others if not zygote(p)])
"""


def test_nothing_of_a_test_is_left_when_the_next_starts(run_judge):
    result = run_judge(LINGER, [("leave", "left\n"), ("look", "['main.py'] [] []\n")])
    assert [t.verdict for t in result.tests] == ["AC", "AC"], result.tests[1].stdout_preview
    assert "from the previous test" not in result.tests[1].stdout_preview
    assert "tampered" not in result.tests[1].stdout_preview


FORGE = """
import os
report = b'{"nonce":"0","exit_code":0,"signal":null,"cpu_ms":1,"wall_ms":1,"max_rss_kb":1,' \\
    b'"wall_killed":false,"output_exceeded":false,"stdout_bytes":3,"stdout_total":3,' \\
    b'"stderr_bytes":0,"stderr_total":0}'
for pid in ("1", str(os.getppid())):
    try:
        fd = os.open(f"/proc/{pid}/fd/1", os.O_WRONLY)
        os.write(fd, b"T%08d" % len(report) + report + b"42\\n")
    except OSError:
        pass
print("41")
"""


def test_a_forged_report_is_caught_and_blamed_on_the_program(run_judge):
    result = run_judge(FORGE, [("", "42\n")])
    test = result.tests[0]
    # Either the forgery could not be written at all (WA on its real output), or it was and
    # was caught: never AC, never the platform's fault.
    assert test.verdict in ("RE", "WA")
    assert result.verdict != "AC" and result.score == 0.0
    if test.verdict == "RE":
        assert test.message == "the program interfered with the judge"


KILL_DRIVER = """
import os, signal
os.kill(1, signal.SIGKILL)
os.kill(os.getppid(), signal.SIGKILL)
print("ok")
"""


def test_taking_the_judge_down_is_the_programs_fault_not_an_internal_error(run_judge):
    result = run_judge(KILL_DRIVER, [("", "ok\n"), ("", "ok\n")])
    assert result.tests[0].verdict in ("RE", "AC")
    assert result.verdict != "IE" and result.score is not None


SEARCH = """
import os
needle = ("answer-" + "7f3a9c").encode()  # not in this source as one string
paths = ["/proc/1/cmdline", "/proc/1/environ", "/proc/self/environ"]
for root in ("/tmp", "/build", "/dev/shm", "/opt/crucible", "/etc"):
    for path, dirs, files in os.walk(root):
        paths += [os.path.join(path, name) for name in files]
hits = []
for path in paths:
    try:
        with open(path, "rb") as f:
            if needle in f.read(1 << 20):
                hits.append(path)
    except OSError:
        pass
print(hits, len(paths) > 10)
"""


def test_the_expected_answer_is_nowhere_in_the_sandbox(run_judge):
    result = run_judge(SEARCH, [("", "answer-7f3a9c\n")], limits={"cpu_s": 10})
    assert result.tests[0].verdict == "WA"
    assert result.tests[0].stdout_preview == "[] True\n"


FORK_BOMB = """
import os, sys
if sys.stdin.read().strip() == "bomb":
    while True:
        try:
            os.fork()
        except OSError:
            pass
print("fine")
"""


def test_a_fork_bomb_ends_with_its_test(run_judge):
    result = run_judge(FORK_BOMB, [("bomb", "fine\n"), ("", "fine\n")],
                       stop_on_first_failure=False, limits={"cpu_s": 1, "wall_s": 3})  # fmt: skip
    assert result.tests[0].verdict != "AC"
    assert result.tests[1].verdict == "AC"


ZYGOTE_VICTIM = """
import os, signal, sys
how = sys.stdin.read().strip()
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    try:
        if open(f"/proc/{pid}/comm").read().strip() == "crucible-zygote":
            os.kill(int(pid), {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}.get(how, 0))
            print("found", how)
    except OSError:
        pass
"""


def test_a_test_that_stops_or_kills_the_zygote_hurts_no_later_test(run_judge):
    """Python stdio tests are forked from a zygote (launch.py --zygote, named crucible-zygote)
    that relays their exit status; a test's process may signal it, and the next test still
    gets a fresh process. Stopping it costs the test that did it its report (TLE); killing it
    makes the test's process the driver's own, whose status is then read directly."""
    tests = [("stop", "found stop\n"), ("look", "found look\n"),
             ("kill", "found kill\n"), ("look", "found look\n")]  # fmt: skip
    result = run_judge(ZYGOTE_VICTIM, tests, stop_on_first_failure=False,
                       limits={"wall_s": 2})  # fmt: skip
    verdicts = [t.verdict for t in result.tests]
    assert verdicts == ["TLE", "AC", "AC", "AC"], [t.stdout_preview for t in result.tests]
    assert result.sandboxes == 1
