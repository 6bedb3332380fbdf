"""Adding an executor node tries again when ``ray start`` exits before the node joined (Ray
2.60's raylet aborts when its agent takes over 15 s to start, as on a loaded machine): the
failed node is marked stopped and the next try uses a new index and fresh ports. Real
processes stand for the nodes; Ray's view of who joined is the one thing given."""

from __future__ import annotations

import subprocess

import pytest

from crucible_ray.cluster import local
from crucible_ray.cluster.state import ClusterState, node_port


@pytest.fixture
def state(tmp_path) -> ClusterState:
    (tmp_path / "logs").mkdir()
    return ClusterState(address="127.0.0.1:1", token_path="", dashboard_port=0,
                        state_dir=str(tmp_path))  # fmt: skip


def nodes_that(fail: int, monkeypatch) -> list[subprocess.Popen]:
    """The first ``fail`` node starts exit at once; later ones run (and join)."""
    started: list[subprocess.Popen] = []
    joining: set[int] = set()

    def start(args, state, name):
        command = ["true"] if len(started) < fail else ["sleep", "60"]
        started.append(subprocess.Popen(command))
        if command != ["true"]:
            joining.add(started[-1].pid)
        return started[-1].pid

    def alive_ports(state):
        ours = [n for n in state.nodes if n["pid"] in joining and local.node_alive(n)]
        return {node_port(n["index"], state.port_offset) for n in ours}

    monkeypatch.setattr(local, "_start_node", start)
    monkeypatch.setattr(local, "_ray_alive_ports", alive_ports)
    return started


def test_a_node_that_exits_early_is_started_again_on_fresh_ports(state, monkeypatch):
    started = nodes_that(fail=2, monkeypatch=monkeypatch)
    try:
        node = local.add_executor(state, timeout_s=10)
        assert len(started) == 3 and node["index"] == 3
        assert [n.get("stopped", False) for n in state.nodes] == [True, True, False]
        assert local.live_executors(state) == [node]
    finally:
        for proc in started:
            proc.kill()
            proc.wait()


def test_it_gives_up_after_the_last_attempt(state, monkeypatch):
    started = nodes_that(fail=local.NODE_START_ATTEMPTS, monkeypatch=monkeypatch)
    with pytest.raises(local.NodeExitedEarly, match="exited early"):
        local.add_executor(state, timeout_s=10)
    assert len(started) == local.NODE_START_ATTEMPTS
    assert all(n["stopped"] for n in state.nodes)
