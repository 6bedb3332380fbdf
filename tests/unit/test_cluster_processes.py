"""A local cluster node is alive only while its own process runs: not once it is a zombie, and
not when another process got its pid later."""

import os
import signal
import subprocess
import time

from crucible_ray.cluster.processes import node_alive, stop_node
from crucible_ray.sandbox.owners import process_start_time


def _start_sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"])


def test_a_running_node_is_alive_and_a_stopped_one_is_not():
    proc = _start_sleeper()
    node = {"pid": proc.pid, "started": process_start_time(proc.pid)}
    try:
        assert node_alive(node)
        assert not node_alive({**node, "stopped": True})
    finally:
        proc.kill()
        proc.wait()


def test_a_zombie_is_dead():
    proc = _start_sleeper()
    node = {"pid": proc.pid, "started": process_start_time(proc.pid)}
    os.kill(proc.pid, signal.SIGKILL)
    time.sleep(0.2)  # killed but not reaped: /proc still lists it
    try:
        assert os.path.exists(f"/proc/{proc.pid}")
        assert not node_alive(node)
    finally:
        proc.wait()
    assert not node_alive(node)


def test_a_reused_pid_is_not_the_node():
    proc = _start_sleeper()
    try:
        assert not node_alive({"pid": proc.pid, "started": "1"})  # started at another time
    finally:
        proc.kill()
        proc.wait()


def test_stop_node_stops_the_whole_tree():
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60 & wait"])
    time.sleep(0.3)
    children = [int(p) for p in subprocess.check_output(["pgrep", "-P", str(proc.pid)]).split()]
    assert len(children) == 2
    assert stop_node(proc.pid, timeout_s=2) == 1
    proc.wait()
    for child in children:  # gone, or a zombie waiting for init to reap it
        assert not node_alive({"pid": child})
