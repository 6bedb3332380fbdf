"""Two local clusters side by side (a developer's and the tests', or two test clusters) never
share a port, however many executor nodes each has started over its lifetime."""

from __future__ import annotations

import pytest

from crucible_ray.cluster.state import (
    DASHBOARD_PORT,
    HEAD_PORT,
    MAX_NODES,
    ClusterError,
    client_port,
    node_ports,
)


def cluster_ports(offset: int) -> set[int]:
    ports = {HEAD_PORT + offset, client_port(offset), DASHBOARD_PORT + offset}
    for i in range(MAX_NODES):
        ports |= {int(arg.split("=")[1]) for arg in node_ports(i, offset)}
    return ports


@pytest.mark.parametrize("other", [50, 100, 300])
def test_clusters_fifty_offsets_apart_share_no_port(other):
    # The session cluster (offset 200) had replaced executor nodes up to index 5 when a second
    # cluster (offset 250) started: its head took node 5's node-manager port and died.
    first, second = cluster_ports(200), cluster_ports(200 + other)
    assert len(first) == 3 + 6 * MAX_NODES  # no port used twice within one cluster either
    assert first.isdisjoint(second)


def test_every_port_stays_outside_rays_worker_range():
    for port in cluster_ports(0) | cluster_ports(500):
        assert not 10002 <= port <= 19999, port


def test_a_node_past_the_cluster_block_is_refused():
    with pytest.raises(ClusterError, match="at most 50 nodes"):
        node_ports(MAX_NODES, 200)
