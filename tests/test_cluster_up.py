"""`crucible-ray cluster up` on a cluster that already runs: it grows to the asked shape, and
refuses (saying what to run) to shrink or change slots, which would stop nodes mid-evaluation.

A real local cluster of its own (its own state directory and ports, beside the session's),
driven through the real command. This process never joins it (Ray keeps one cluster's token per
process); the command's processes do."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from crucible_ray.cluster import local
from crucible_ray.topology import EXECUTOR_ROLE
from tests.conftest import TEST_PORT_OFFSET
from tests.test_cli import cli

pytestmark = pytest.mark.docker
OWN_PORT_OFFSET = TEST_PORT_OFFSET + 50  # offsets are 100 apart: this one collides with none


@pytest.fixture
def one_executor(engine, tmp_path) -> Iterator[dict[str, str]]:
    """A running cluster with one executor node; yields the CLI's environment for it."""
    state_dir = tmp_path / "cluster"
    try:
        local.up(executors=1, slots=1, state_dir=state_dir, port_offset=OWN_PORT_OFFSET)
    except local.ClusterError:  # Ray's own 30 s node start-up limit, on a loaded machine: once more
        if (state_dir / "state.json").exists():
            local.down(state_dir)
        local.up(executors=1, slots=1, state_dir=state_dir, port_offset=OWN_PORT_OFFSET)
    try:
        yield {**os.environ, "CRUCIBLE_STATE_DIR": str(tmp_path)}
    finally:
        if (state_dir / "state.json").exists():
            local.down(state_dir)


def ray_executor_nodes(env: dict[str, str]) -> int:
    """Executor nodes alive as Ray itself reports them (`cluster status` asks Ray)."""
    out = cli("cluster", "status", "--json", env=env)
    assert out.returncode == 0, out.stderr
    return sum(n["alive"] and n["role"] == EXECUTOR_ROLE for n in json.loads(out.stdout)["nodes"])


def said(out) -> str:
    return " ".join(out.stderr.split())  # the console wraps long lines


def test_up_grows_a_running_cluster_and_refuses_to_shrink_it(one_executor):
    grown = cli("cluster", "up", "--executors", "2", "--json", env=one_executor)
    assert grown.returncode == 0, grown.stderr
    assert ray_executor_nodes(one_executor) == 2
    assert json.loads(grown.stdout)["executors"] == 2

    kept = cli("cluster", "up", env=one_executor)  # no shape asked: the running one stays
    assert kept.returncode == 0, kept.stderr
    assert "2 executor node(s) x 1 slots" in said(kept)

    shrink = cli("cluster", "up", "--executors", "1", env=one_executor)
    assert shrink.returncode == 1
    assert "has 2 executor node(s), more than 1" in said(shrink)
    assert "crucible-ray cluster down`, then `crucible-ray cluster up --executors 1`" in said(
        shrink
    )
    assert "Traceback" not in shrink.stderr

    slots = cli("cluster", "up", "--executors", "2", "--slots", "3", env=one_executor)
    assert slots.returncode == 1
    assert "1 sandbox slot(s) per executor node, not 3" in said(slots)
    assert "`crucible-ray cluster up --slots 3`" in said(slots)
    assert ray_executor_nodes(one_executor) == 2  # nothing was stopped
