"""The runtime security rules as data, and their evaluation (pure: points built here)."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from crucible_ray.security import rules
from crucible_ray.security.rules import SandboxFacts, default_rules, evaluate
from crucible_ray.security.wire import Point

RULES = default_rules()


def point(kind: str, group: int = 1, process: str = "python3", exit_: bool = False, **fields):
    context = {"container_id": "s", "group_id": group, "process_name": process, "cwd": "/tmp"}
    return Point(kind, {"context": context, **({"exit": {}} if exit_ else {}), **fields}, 0)


def fired(p: Point, facts: SandboxFacts | None = None) -> list[str]:
    return [e.rule for e in evaluate(RULES, p, facts or SandboxFacts("s", "python", False))]


def inet(a: int, b: int, c: int, d: int, port: int) -> bytes:
    return bytes([2, 0]) + port.to_bytes(2, "big") + bytes([a, b, c, d]) + bytes(8)


def test_network_rules():
    assert fired(point("socket", domain=2, type=1)) == ["network_socket"]
    assert fired(point("socket", domain=1, type=1)) == []  # AF_UNIX: local, allowed
    assert fired(point("connect", fd=3, address=inet(10, 0, 0, 1, 443))) == ["network_connect"]
    assert fired(point("connect", fd=3, address=b"\x01\x00/tmp/x\x00")) == []  # a unix socket
    assert fired(point("connect", exit_=True, address=inet(1, 2, 3, 4, 80))) == []  # its result
    assert fired(point("bind", fd=3, address=inet(0, 0, 0, 0, 8080))) == ["network_listen"]


def test_open_for_writing_under_proc_and_sys_resolves_relative_paths():
    write = 0o1  # O_WRONLY
    assert fired(point("open", fd=-100, path="/proc/sys/kernel/x", flags=write)) == [
        "proc_sys_write"]  # fmt: skip
    assert fired(point("open", fd=-100, path="/proc/self/status", flags=0)) == []  # reading
    relative = point("open", fd=-100, path="../proc/self/attr/current", flags=write)
    assert fired(relative) == ["proc_sys_write"]  # /tmp/../proc/...
    at_dir = point("open", fd=5, fd_path="/sys/kernel", path="uevent_helper", flags=0o100)
    assert fired(at_dir) == ["proc_sys_write"]  # O_CREAT, relative to a directory fd
    assert fired(point("open", fd=-100, path="/tmp/out.txt", flags=write)) == []


def test_a_compiled_languages_setup_is_not_its_program():
    facts = SandboxFacts("s", "c", compiled=True)
    compiler = point("execve", group=5, process="sh", binary_path="/usr/bin/gcc-12")
    assert fired(compiler, facts) == []  # the compile stage
    shell = point("execve", group=6, process="sh", binary_path="/usr/bin/dash")
    assert fired(shell, facts) == []
    program = point("execve", group=1, process="sh", binary_path="/build/main")
    assert fired(program, facts) == [] and facts.running  # the launcher became the program
    assert fired(shell, facts) == ["shell_executed"]  # from now on, the program's doing
    assert fired(point("execve", group=7, binary_path="/usr/bin/id"), facts) == [
        "unexpected_binary"]  # fmt: skip


def test_an_interpreted_language_runs_from_the_start():
    assert fired(point("execve", group=2, binary_path="/usr/bin/bash")) == ["shell_executed"]


def test_exceptions_name_the_image_too():
    coredump = {"path": "/proc/self/coredump_filter", "flags": 1, "fd": -100}
    java = SandboxFacts("s", "java", compiled=True)
    assert fired(point("open", process="java", **coredump), java) == []
    # the same from a Python program that renamed itself "java" is still flagged
    assert fired(point("open", process="java", **coredump)) == ["proc_sys_write"]
    assert fired(point("socket", process="java", domain=10, type=1), java) == []
    assert fired(point("connect", process="java", address=inet(1, 1, 1, 1, 53)), java) == [
        "network_connect"]  # fmt: skip
    java.running = True
    launcher_run = point("execve", group=3, process="sh", binary_path="/usr/bin/cat")
    assert fired(launcher_run, java) == []  # expected_binaries of the java image


def test_escape_syscalls_by_number():
    assert fired(point("syscall_raw", sysno=101, arg1=0)) == ["escape_syscall"]  # ptrace
    assert fired(point("syscall_raw", sysno=39)) == []  # getpid: not a rule's


def test_trace_points_follow_the_rules():
    names = [p["name"] for p in rules.trace_points(RULES)]
    assert names[0] == "container/start" and len(names) == len(set(names))
    assert {"syscall/connect/enter", "sentry/execve", "syscall/sysno/101/enter",
            "syscall/sysno/272/enter", "syscall/openat/enter"} <= set(names)  # fmt: skip
    assert all("container_id" in p["context_fields"] for p in rules.trace_points(RULES))


@pytest.mark.parametrize(
    "broken",
    [
        {"rules": [{"id": "x1", "description": "d", "point": "nope", "severity": "high"}]},
        {"rules": [{"id": "x1", "description": "d", "point": "socket", "severity": "huge"}]},
        {
            "rules": [
                {"id": "x1", "description": "d", "point": "socket", "severity": "low", "typo": 1}
            ]
        },
        {"rules": [{"id": "x1", "description": "d", "point": "socket", "severity": "low"}] * 2},
        {
            "rules": [
                {
                    "id": "x1",
                    "description": "d",
                    "point": "syscall_raw",
                    "severity": "low",
                    "when": {"syscall": {"in": ["reboot"]}},
                }
            ]
        },
    ],
)
def test_a_malformed_rule_file_is_refused(broken):
    with pytest.raises((ValidationError, ValueError)):
        rules.load(yaml.safe_dump(broken))


def test_every_counted_rule_has_its_alert():
    """The metric's alert label comes from the rule itself, so events beyond the ones a
    summary keeps in full are labelled the same."""
    assert rules.alert_of("network_connect") == "unexpected_network_activity"
    assert rules.alert_of("proc_sys_write") == "container_escape_attempt"
    assert rules.alert_of("trace_identity_mismatch") == "container_escape_attempt"
    assert rules.alert_of("unexpected_binary") == "none"
    assert rules.alert_of("no_such_rule") == "none"
