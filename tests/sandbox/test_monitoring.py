"""Conformance: runtime monitoring under real gVisor, on every backend (runsc: traced from the
start with --pod-init-config; docker: attached before the code arrives). Each rule of
rules.yaml fires on a hostile program and stays silent on benign ones in every image; the
receiver fails secure."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from crucible_ray import EvalRequest, SandboxPolicy, SandboxRunner
from crucible_ray.errors import CrucibleError, RuntimeUnavailable
from crucible_ray.languages import IMAGES
from crucible_ray.models import EvalResult
from crucible_ray.sandbox.docker import DockerBackend
from crucible_ray.security.rules import default_rules

HELLO = {
    "python": 'print("hi")',
    "python-science": "import numpy, pandas, scipy, sklearn, sympy, matplotlib\nprint('hi')",
    "javascript": 'console.log("hi")',
    "go": 'package main\nimport "fmt"\nfunc main() { fmt.Println("hi") }',
    "c": '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }',
    "cpp": '#include <bits/stdc++.h>\nint main() { std::cout << "hi\\n"; }',
    "rust": 'fn main() { println!("hi"); }',
    "java": "public class Main { public static void main(String[] a) "
    '{ System.out.println("hi"); } }',
}
LIBC = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
HOSTILE = {  # rule -> a Python program that does what the rule is about
    "network_socket": "import socket\nsocket.socket(socket.AF_INET6, socket.SOCK_DGRAM)",
    "network_connect": (
        "import socket\ns = socket.socket()\ns.settimeout(1)\n"
        "try:\n    s.connect(('203.0.113.7', 443))\nexcept OSError as e:\n    print(e)"
    ),
    "network_listen": "import socket\nsocket.socket().bind(('0.0.0.0', 8080))",
    "shell_executed": "import os\nos.system('echo pwned')",
    "unexpected_binary": "import subprocess\nsubprocess.run(['/usr/bin/id'])",
    "proc_sys_write": (
        "for path in ('/proc/self/attr/current', '/sys/kernel/uevent_helper'):\n"
        "    try:\n        open(path, 'w').write('x')\n"
        "    except OSError as e:\n        print(e)"
    ),
}
PERMISSIVE = {  # the syscalls crucible's seccomp profile denies before any trace point
    "escape_syscall": LIBC + "print(libc.ptrace(0, 0, 0, 0), libc.unshare(0x10000000))",
    "chroot": "import os\ntry:\n    os.chroot('/tmp')\nexcept OSError as e:\n    print(e)",
}


@pytest.fixture(scope="module")
def runner(checked_backend) -> Iterator[SandboxRunner]:
    with SandboxRunner(SandboxPolicy(backend=checked_backend, memory_mb=512)) as runner:
        yield runner


@pytest.fixture(scope="module")
def permissive(checked_backend, tmp_path_factory) -> Iterator[SandboxRunner]:
    """A policy whose seccomp profile allows everything: where the escape rules are the only
    line left (an operator's looser profile)."""
    profile = tmp_path_factory.mktemp("seccomp") / "allow-all.json"
    allow_all = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                 "syscalls": []}  # fmt: skip
    profile.write_text(json.dumps(allow_all))
    policy = SandboxPolicy(backend=checked_backend, seccomp_profile=profile)
    with SandboxRunner(policy) as runner:
        yield runner


def run(runner: SandboxRunner, code: str, image: str = "python") -> EvalResult:
    spec = IMAGES[image]
    result = runner.run(EvalRequest(code=code, language=spec.language, image=image,
                                    timeout_s=30))  # fmt: skip
    assert result.security is not None, result
    assert result.security.complete, result.security
    return result


@pytest.mark.parametrize("image", sorted(HELLO))
def test_benign_programs_raise_nothing(runner, image):
    result = run(runner, HELLO[image], image)
    assert result.status == "succeeded" and result.stdout.strip() == "hi", result
    assert result.security.counts == {} and result.security.dropped == 0


@pytest.mark.parametrize("rule", sorted(HOSTILE))
def test_each_rule_fires_on_its_hostile_program(runner, rule):
    security = run(runner, HOSTILE[rule]).security
    assert rule in security.counts, security
    event = next(e for e in security.events if e.rule == rule)
    declared = next(r for r in default_rules().rules if r.id == rule)
    assert event.severity == declared.severity
    assert event.alert == (None if declared.alert == "none" else declared.alert)


def test_the_event_says_what_was_done(runner):
    security = run(runner, HOSTILE["network_connect"]).security
    connect = next(e for e in security.events if e.rule == "network_connect")
    assert connect.detail == "connect(203.0.113.7:443)" and connect.process == "python3"
    shell = run(runner, HOSTILE["shell_executed"]).security
    assert "echo pwned" in next(e.detail for e in shell.events if e.rule == "shell_executed")


@pytest.mark.parametrize("rule", sorted(PERMISSIVE))
def test_escape_rules_fire_where_seccomp_lets_the_call_through(runner, permissive, rule):
    assert rule in run(permissive, PERMISSIVE[rule]).security.counts
    # Under crucible's own profile the call is refused before gVisor traces it: nothing to see.
    assert rule not in run(runner, PERMISSIVE[rule]).security.counts


def test_a_compiled_programs_shell_is_flagged_and_its_compilers_are_not(runner):
    code = '#include <stdlib.h>\nint main(void) { return system("id") != 0; }'
    security = run(runner, code, "c").security
    assert security.counts.get("shell_executed") == 1, security  # sh -c id, not gcc's shells
    assert security.counts.get("unexpected_binary") == 1  # id itself


def test_a_dead_receiver_refuses_sandboxes_instead_of_running_them_unwatched(checked_backend):
    with SandboxRunner(SandboxPolicy(backend=checked_backend)) as runner:
        assert run(runner, 'print("watched")').stdout == "watched\n"
        runner.backend._monitor._listener.close()  # nobody answers the Sentry any more
        try:
            result = runner.run(EvalRequest(code='print("unwatched")', timeout_s=10))
        except CrucibleError:
            return  # refused: fine
        assert result.status == "error" and "unwatched" not in result.stdout, result


def test_off_is_explicit_and_runc_cannot_promise_it(checked_backend, engine):
    policy = SandboxPolicy(backend=checked_backend, runtime_monitoring="off")
    with SandboxRunner(policy) as runner:
        assert runner.run(EvalRequest(code="print(1)")).security is None
    required_on_runc = SandboxPolicy(
        backend="docker", runtime="runc", runtime_monitoring="required"
    )
    with pytest.raises(RuntimeUnavailable, match="needs gVisor"):
        DockerBackend(engine).check(required_on_runc)
