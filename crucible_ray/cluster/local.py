"""A real multi-node Ray cluster on one machine: one head and N executor nodes, each its own
``ray start`` process group, with Ray token authentication on for every process.

``up`` records exactly what it started in a state file; ``down`` stops exactly that (never
``ray stop``, which would kill every Ray process on the machine).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from crucible_ray.errors import CrucibleError
from crucible_ray.topology import (
    HEAD_ROLE,
    NAMESPACE,
    ROLE_LABEL,
    executor_node_labels,
    executor_node_resources,
)

STATE_DIR = Path(os.environ.get("CRUCIBLE_STATE_DIR", "/var/lib/crucible")) / "cluster"
HEAD_PORT = 6390
DASHBOARD_PORT = 8265
# Fixed per-node ports, all outside Ray's worker port range (10002-19999): several raylets
# on one machine otherwise race for the same free port at start.
METRICS_PORT_BASE = 8090  # node i exports Prometheus metrics on 8090 + i
AGENT_PORT_BASE = 52400
NODE_PORT_BASE = 20100


def _node_ports(i: int) -> list[str]:
    base = NODE_PORT_BASE + 10 * i
    return [
        f"--metrics-export-port={METRICS_PORT_BASE + i}",
        f"--dashboard-agent-listen-port={AGENT_PORT_BASE + i}",
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
    nodes: list[dict] = field(default_factory=list)  # {"role", "pid", "metrics_port"}

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path | None = None) -> ClusterState:
        path = path or STATE_DIR / "state.json"
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise ClusterError("no local cluster is running (crucible-ray cluster up)") from None

    def env(self) -> dict[str, str]:
        """What a process needs to join this cluster (token auth on every process)."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": self.token_path,
                "RAY_ADDRESS": self.address}  # fmt: skip


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _labels_arg(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _start_node(args: list[str], env: dict[str, str], log: Path) -> int:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [_ray_bin(), "start", "--block", "--disable-usage-stats", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: down() stops exactly this
        )
    return proc.pid


def up(executors: int = 2, slots: int | None = None, head_cpus: int = 2,
       port: int = HEAD_PORT, timeout_s: float = 120.0) -> ClusterState:  # fmt: skip
    """Start a head and ``executors`` executor nodes; return once all of them joined."""
    state_file = STATE_DIR / "state.json"
    if state_file.exists():
        state = ClusterState.load(state_file)
        if any(_alive(n["pid"]) for n in state.nodes):
            return state  # already up
        state_file.unlink()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    slots = slots or os.cpu_count() or 1
    token_path = STATE_DIR / "ray-token"
    if not token_path.exists():
        token_path.touch(mode=0o600)
        token_path.write_text(secrets.token_hex(32))
    state = ClusterState(address=f"127.0.0.1:{port}", token_path=str(token_path),
                         dashboard_port=DASHBOARD_PORT)  # fmt: skip
    env = {k: v for k, v in state.env().items() if k != "RAY_ADDRESS"}
    log_dir = STATE_DIR / "logs"
    log_dir.mkdir(exist_ok=True)
    head_pid = _start_node(
        [
            "--head",
            f"--port={port}",
            f"--num-cpus={head_cpus}",
            f"--labels={_labels_arg({ROLE_LABEL: HEAD_ROLE})}",
            f"--dashboard-port={DASHBOARD_PORT}",
            "--dashboard-host=127.0.0.1",
            *_node_ports(0),
        ],
        env,
        log_dir / "head.log",
    )
    state.nodes.append({"role": HEAD_ROLE, "pid": head_pid, "metrics_port": METRICS_PORT_BASE})
    state.save(state_file)
    _wait_for_nodes(state, 1, timeout_s)
    for i in range(1, executors + 1):
        pid = _start_node(
            [
                f"--address={state.address}",
                "--num-cpus=1",
                f"--labels={_labels_arg(executor_node_labels())}",
                f"--resources={json.dumps(executor_node_resources(slots))}",
                *_node_ports(i),
            ],
            env,
            log_dir / f"executor-{i}.log",
        )
        state.nodes.append({"role": "executor", "pid": pid, "metrics_port": METRICS_PORT_BASE + i})
        state.save(state_file)
        _wait_for_nodes(state, 1 + i, timeout_s)  # one at a time: raylets starting together race
    return state


def _wait_for_nodes(state: ClusterState, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [n for n in state.nodes if not _alive(n["pid"])]
        if dead:
            raise ClusterError(f"ray start exited early for {dead}; see {STATE_DIR / 'logs'}")
        if _alive_nodes(state) >= count:
            return
        time.sleep(1.0)
    raise ClusterError(f"cluster did not reach {count} nodes in {timeout_s:.0f}s")


def _alive_nodes(state: ClusterState) -> int:
    """Count live nodes from a short-lived subprocess (this process stays Ray-free)."""
    probe = "import ray; ray.init(log_to_driver=False); print(sum(n['Alive'] for n in ray.nodes()))"
    out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **state.env()},
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = out.stdout.strip().splitlines()
    return int(lines[-1]) if out.returncode == 0 and lines else 0


def down(timeout_s: float = 30.0) -> int:
    """Stop exactly the processes ``up`` started (executors first). Returns how many."""
    state_file = STATE_DIR / "state.json"
    state = ClusterState.load(state_file)
    stopped = 0
    for node in reversed(state.nodes):
        stopped += stop_node(node["pid"], timeout_s)
    state_file.unlink(missing_ok=True)
    return stopped


def stop_node(pid: int, timeout_s: float = 30.0, sig: int = signal.SIGTERM) -> int:
    """Stop one node's whole process group (raylet, workers, agents)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return 0
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.2)
    if _group_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    return 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def connect() -> ClusterState:
    """Join the local cluster from this process (token auth configured) and return its state."""
    import ray

    state = ClusterState.load()
    os.environ.update(state.env())
    # Ray caches its auth mode from the environment when first imported; refresh it so that
    # a process which imported Ray before knowing the cluster still authenticates.
    from ray._raylet import Config

    Config.initialize("")
    if not ray.is_initialized():
        ray.init(address=state.address, namespace=NAMESPACE, log_to_driver=False)
    return state
