"""A real multi-node Ray cluster on one machine: one head and N executor nodes, each its own
``ray start`` process group, with Ray token authentication on for every process.

``up`` records exactly what it started in a state file; ``down`` stops exactly that (never
``ray stop``, which would kill every Ray process on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from crucible_ray.cluster.processes import node_alive, stop_node
from crucible_ray.cluster.state import (
    DASHBOARD_PORT,
    HEAD_PORT,
    METRICS_PORT_BASE,
    STATE_DIR,
    ClusterError,
    ClusterState,
    client_port,
    node_port,
    node_ports,
)
from crucible_ray.errors import CrucibleError
from crucible_ray.sandbox.owners import process_start_time
from crucible_ray.topology import (
    EXECUTOR_ROLE,
    HEAD_ROLE,
    NAMESPACE,
    ROLE_LABEL,
    executor_node_labels,
    executor_node_resources,
)

NODE_START_ATTEMPTS = 3


class NodeExitedEarly(ClusterError):
    """``ray start`` for a node ended before the node joined."""


def _ray_bin() -> str:
    return str(Path(sys.executable).with_name("ray"))


def _labels_arg(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _start_node(args: list[str], state: ClusterState, name: str) -> int:
    env = {k: v for k, v in state.env().items() if k != "RAY_ADDRESS"}
    with Path(state.state_dir, "logs", f"{name}.log").open("ab") as out:
        proc = subprocess.Popen(
            [_ray_bin(), "start", "--block", "--disable-usage-stats", *args],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # detached from this terminal; down() stops its process tree
        )
    return proc.pid


DEFAULT_EXECUTORS = 2
PORTS_MARKER = "crucible-alive-ports:"  # the node probe's answer, among whatever Ray prints


def up(executors: int | None = None, slots: int | None = None, head_cpus: int = 2,
       state_dir: Path = STATE_DIR, port_offset: int = 0, timeout_s: float = 120.0,
       default_executors: int = DEFAULT_EXECUTORS) -> ClusterState:  # fmt: skip
    """Start a head and ``executors`` executor nodes (``default_executors`` if None); return
    once all of them joined. A running cluster is brought to the asked shape (``_reshape``);
    with ``executors=None`` it is left as it is.

    ``port_offset`` shifts every fixed port, so a second cluster (tests) can run beside one.
    """
    if (state_dir / "state.json").exists():
        state = ClusterState.load(state_dir)
        if any(node_alive(n) for n in state.nodes):
            return _reshape(state, executors, slots, timeout_s)
        (state_dir / "state.json").unlink()
    state_dir.mkdir(parents=True, exist_ok=True)
    token_path = state_dir / "ray-token"
    if not token_path.exists():
        token_path.touch(mode=0o600)
        token_path.write_text(secrets.token_hex(32))
    state = ClusterState(
        address=f"127.0.0.1:{HEAD_PORT + port_offset}", token_path=str(token_path),
        dashboard_port=DASHBOARD_PORT + port_offset, state_dir=str(state_dir),
        port_offset=port_offset, slots=slots or os.cpu_count() or 1,
    )  # fmt: skip
    (state_dir / "logs").mkdir(exist_ok=True)
    head_pid = _start_node(
        ["--head", f"--port={HEAD_PORT + port_offset}", f"--num-cpus={head_cpus}",
         f"--labels={_labels_arg({ROLE_LABEL: HEAD_ROLE})}",
         f"--dashboard-port={state.dashboard_port}", "--dashboard-host=127.0.0.1",
         f"--ray-client-server-port={client_port(port_offset)}",
         *node_ports(0, port_offset)],
        state, "head",
    )  # fmt: skip
    state.nodes.append({"role": HEAD_ROLE, "pid": head_pid, "started": process_start_time(head_pid),
                        "metrics_port": METRICS_PORT_BASE + port_offset})  # fmt: skip
    state.save()
    _wait_for_nodes(state, timeout_s)
    for _ in range(default_executors if executors is None else executors):
        add_executor(state, timeout_s)
    return state


def live_executors(state: ClusterState) -> list[dict]:
    return [n for n in state.nodes if n["role"] == EXECUTOR_ROLE and node_alive(n)]


def _reshape(state: ClusterState, executors: int | None, slots: int | None,
             timeout_s: float) -> ClusterState:  # fmt: skip
    """A running cluster grows to ``executors`` nodes (adding nodes loses nothing). It is never
    shrunk or given other slots in place: that means stopping executor nodes, killing the
    evaluations they run, so the caller is told what to run instead."""
    restart = "run `crucible-ray cluster down`, then `crucible-ray cluster up"
    if not any(n["role"] == HEAD_ROLE and node_alive(n) for n in state.nodes):
        raise ClusterError(f"the local cluster's head node is not running: {restart}`")
    if slots is not None and slots != state.slots:
        raise ClusterError(
            f"the running cluster has {state.slots} sandbox slot(s) per executor node, not "
            f"{slots}, and slots are fixed when a node starts: {restart} --slots {slots}`"
        )
    running = live_executors(state)
    if executors is None or executors == len(running):
        return state
    if executors < len(running):
        raise ClusterError(
            f"the running cluster has {len(running)} executor node(s), more than {executors}, "
            f"and `up` never stops nodes that may be running evaluations: "
            f"{restart} --executors {executors}`"
        )
    for node in state.nodes:  # executor nodes that died on their own are gone for good
        if node["role"] == EXECUTOR_ROLE and not node_alive(node):
            node["stopped"] = True
    for _ in range(executors - len(running)):
        add_executor(state, timeout_s)
    return state


def add_executor(state: ClusterState, timeout_s: float = 120.0) -> dict:
    """Start one more executor node (a new index, its own ports) and wait until it joined.

    A raylet aborts when its dashboard agent takes over 15 s to start (a wait hard-coded in Ray
    2.60, not configurable), which happens on a loaded machine: such a start is tried again,
    on fresh ports, up to ``NODE_START_ATTEMPTS`` times."""
    for attempt in Retrying(retry=retry_if_exception_type(NodeExitedEarly), reraise=True,
                            stop=stop_after_attempt(NODE_START_ATTEMPTS)):  # fmt: skip
        with attempt:
            return _add_executor_once(state, timeout_s)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _add_executor_once(state: ClusterState, timeout_s: float) -> dict:
    index = max((n.get("index", 0) for n in state.nodes), default=0) + 1
    pid = _start_node(
        [f"--address={state.address}", "--num-cpus=1",
         f"--labels={_labels_arg(executor_node_labels())}",
         f"--resources={json.dumps(executor_node_resources(state.slots))}",
         *node_ports(index, state.port_offset)],
        state, f"executor-{index}",
    )  # fmt: skip
    node = {"role": EXECUTOR_ROLE, "pid": pid, "started": process_start_time(pid), "index": index,
            "metrics_port": METRICS_PORT_BASE + state.port_offset + index}  # fmt: skip
    state.nodes.append(node)
    state.save()
    try:
        _wait_for_nodes(state, timeout_s)  # one at a time: raylets starting together race
    except NodeExitedEarly as exc:
        if node_alive(node):  # another node of ours died: not this start's failure
            raise ClusterError(str(exc)) from None
        with contextlib.suppress(ProcessLookupError):  # what its session left (raylet, agents)
            os.killpg(pid, signal.SIGKILL)
        node["stopped"] = True
        state.save()
        raise
    return node


def _wait_for_nodes(state: ClusterState, timeout_s: float) -> None:
    """Wait until Ray reports every node we run alive. Each is known by its fixed node-manager
    port, so a killed node Ray has not yet declared dead never stands in for a new one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [n for n in state.nodes if not n.get("stopped") and not node_alive(n)]
        if dead:
            raise NodeExitedEarly(f"ray start exited early for {dead}; see {state.state_dir}/logs")
        ours = [n for n in state.nodes if not n.get("stopped")]
        missing = {_node_manager_port(n, state.port_offset) for n in ours} - _ray_alive_ports(state)
        if not missing:
            return
        time.sleep(1.0)
    raise ClusterError(f"nodes on ports {sorted(missing)} did not join in {timeout_s:.0f}s; "
                       f"see {state.state_dir}/logs")  # fmt: skip


def _node_manager_port(node: dict, offset: int) -> int:
    return node_port(node.get("index", 0), offset)


def _ray_alive_ports(state: ClusterState) -> set[int]:
    """Node-manager ports of the nodes Ray reports alive, from a short-lived subprocess (this
    process stays Ray-free)."""
    probe = ("import json, ray; ray.init(log_to_driver=False); "
             f"print('{PORTS_MARKER}' + json.dumps([n['NodeManagerPort'] "
             "for n in ray.nodes() if n['Alive']]), flush=True)")  # fmt: skip
    try:
        out = subprocess.run([sys.executable, "-c", probe], env={**os.environ, **state.env()},
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    except subprocess.TimeoutExpired:
        return set()
    return parse_alive_ports(out.stdout) if out.returncode == 0 else set()


def parse_alive_ports(stdout: str) -> set[int]:
    """The probe's answer, found by its marker: Ray may log to stdout before or after it."""
    for line in stdout.splitlines():
        if PORTS_MARKER in line:
            return {int(port) for port in json.loads(line.split(PORTS_MARKER, 1)[1])}
    return set()


def down(state_dir: Path = STATE_DIR, timeout_s: float = 5.0) -> int:
    """Stop exactly the processes ``up`` started, then remove the sandboxes their executors
    left. Returns the number of nodes stopped."""
    state = ClusterState.load(state_dir)
    live = [n for n in state.nodes if node_alive(n)]  # a stopped node's pid may be reused
    with ThreadPoolExecutor(len(live) or 1) as pool:
        stopped = sum(pool.map(lambda n: stop_node(n["pid"], timeout_s), live))
    (state_dir / "state.json").unlink(missing_ok=True)
    _sweep_sandboxes()
    return stopped


def _sweep_sandboxes() -> None:
    from crucible_ray.paths import sandboxes_dir
    from crucible_ray.sandbox.registry import sweep_every_backend

    with contextlib.suppress(CrucibleError):
        sweep_every_backend(sandboxes_dir())


def kill_executor(state: ClusterState, node: dict) -> None:
    """Kill one executor node abruptly (raylet and all its workers), as a crash would."""
    stop_node(node["pid"], timeout_s=5, sig=signal.SIGKILL)
    node["stopped"] = True
    state.save()


def connect(state_dir: Path = STATE_DIR) -> ClusterState:
    """Join the local cluster from this process (token auth configured) and return its state."""
    import ray

    state = ClusterState.load(state_dir)
    os.environ.update(state.env())
    # Ray caches its auth mode from the environment when first imported; refresh it so that
    # a process which imported Ray before knowing the cluster still authenticates.
    from ray._raylet import Config

    Config.initialize("")
    if not ray.is_initialized():
        ray.init(
            address=state.address, namespace=NAMESPACE, log_to_driver=False, logging_level="WARNING"
        )
    return state
