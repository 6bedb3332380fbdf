import os
import socket
import subprocess

from crucible_ray.sandbox.owners import owner_alive, owner_token


def test_own_token_is_alive_and_unique_per_runner():
    a, b = owner_token(), owner_token()
    assert a != b and owner_alive(a) and owner_alive(b)
    assert a.startswith(f"{os.getpid()}-") and a.endswith(f"@{socket.gethostname()}")


def test_dead_process_and_reused_pid_are_not_alive():
    child = subprocess.Popen(["true"])
    child.wait()
    assert not owner_alive(f"{child.pid}-12345-abcd@{socket.gethostname()}")
    pid = os.getpid()
    assert not owner_alive(f"{pid}-1-abcd@{socket.gethostname()}")  # same pid, other start


def test_other_hosts_are_left_alone():
    assert owner_alive("1-1-abcd@some-other-host")
