"""The local cluster's fixed ports and its state file: what ``up`` started, for ``down``."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from crucible_ray.errors import CrucibleError

STATE_DIR = Path(os.environ.get("CRUCIBLE_STATE_DIR", "/var/lib/crucible")) / "cluster"
HEAD_PORT = 6390
DASHBOARD_PORT = 8265
# Fixed per-node ports, all outside Ray's worker port range (10002-19999): several raylets
# on one machine otherwise race for the same free port at start.
METRICS_PORT_BASE = 8090  # node i exports Prometheus metrics on 8090 + i
AGENT_PORT_BASE = 52400
# Node i's own four ports are node_port(i) .. +3. A cluster's block holds MAX_NODES nodes and is
# 10 * offset from the next one's, so clusters whose offsets are >= 50 apart never share a port
# however many executor nodes come and go (each new node takes a new index).
NODE_PORT_BASE = 20100
MAX_NODES = 50


def node_port(i: int, offset: int) -> int:
    """Node i's node-manager port: how ``up`` recognises it among the nodes Ray reports."""
    if i >= MAX_NODES:
        raise ClusterError(f"a local cluster runs at most {MAX_NODES} nodes over its lifetime; "
                           "run `crucible-ray cluster down` and `up` again")  # fmt: skip
    return NODE_PORT_BASE + 10 * offset + 10 * i


def client_port(offset: int) -> int:
    """The head's Ray client server (Ray's default 10001 is one port for the whole machine: a
    second cluster's head could not start beside the first)."""
    return HEAD_PORT + offset + 1


def node_ports(i: int, offset: int) -> list[str]:
    base = node_port(i, offset)
    return [
        f"--metrics-export-port={METRICS_PORT_BASE + offset + i}",
        f"--dashboard-agent-listen-port={AGENT_PORT_BASE + offset + i}",
        f"--node-manager-port={base}",
        f"--object-manager-port={base + 1}",
        f"--runtime-env-agent-port={base + 2}",
        f"--dashboard-agent-grpc-port={base + 3}",
    ]


class ClusterError(CrucibleError):
    """The local cluster could not be started, found or stopped."""


@dataclass
class ClusterState:
    address: str
    token_path: str
    dashboard_port: int
    state_dir: str
    port_offset: int = 0
    slots: int = 1
    nodes: list[dict] = field(default_factory=list)  # {"role", "pid", "metrics_port"}

    def save(self) -> None:
        Path(self.state_dir, "state.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, state_dir: Path = STATE_DIR) -> ClusterState:
        try:
            return cls(**json.loads((state_dir / "state.json").read_text()))
        except FileNotFoundError:
            raise ClusterError("no local cluster is running (crucible-ray cluster up)") from None

    def env(self) -> dict[str, str]:
        """What a process needs to join this cluster (token auth on every process)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": self.token_path,
                "RAY_ADDRESS": self.address}  # fmt: skip
