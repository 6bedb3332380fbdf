"""Peers for the benchmarks: other sandboxes run on crucible's image and runtime, same program.

    .venv/bin/python benchmarks/peers.py --smoke [--runtime runsc|runc]

Each adapter runs one Python program in a fresh sandbox per call, the way that peer isolates,
on the image crucible uses for Python (``crucible-sandbox-python:<tag>``) and, where the peer
lets us choose, the same container runtime. Limits follow ``SandboxPolicy()`` as far as each
peer can express them; what it cannot is listed in its docstring.

- ``epicbox`` (PyPI): docker-py, one container per run, code on stdin.
- ``llm-sandbox`` (PyPI): docker-py, one session (container) per run, code copied in and exec'd.
- ``ray-sandbox``: Ray's experimental ``SandboxRuntime`` (gVisor backend, ``runsc`` without
  Docker, image as an EROFS root filesystem). runsc only.

The peers are the ``bench`` extra of pyproject.toml. ``available_peers()`` returns the peers
that import and pass a smoke run, and the reason for each one that does not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peer_base import CODE, EXPECTED, LABEL, RUNTIMES, Peer, Unavailable, python_image
from peer_docker import EpicboxPeer, LlmSandboxPeer
from peer_ray import RaySandboxPeer

from crucible_ray import SandboxPolicy

__all__ = ["CODE", "EXPECTED", "Peer", "available_peers", "leftovers", "peers"]


PEERS: dict[str, type] = {"epicbox": EpicboxPeer, "llm-sandbox": LlmSandboxPeer,
                          "ray-sandbox": RaySandboxPeer}  # fmt: skip


def available_peers(
    runtime: str = "runsc", policy: SandboxPolicy | None = None
) -> tuple[list[Peer], dict[str, str]]:
    """Peers set up and past one smoke run, and a reason for each peer that is not."""
    ready: list[Peer] = []
    reasons: dict[str, str] = {}
    for name, cls in PEERS.items():
        peer = None
        try:
            peer = cls(runtime, policy)
            peer.setup()
            out = peer.run(CODE)
            if out != EXPECTED:
                raise Unavailable(f"smoke run printed {out!r}, expected {EXPECTED!r}")
            ready.append(peer)
        except Exception as exc:  # any failure makes the peer unavailable, with its reason
            reasons[name] = f"{type(exc).__name__}: {exc}" if not isinstance(
                exc, Unavailable) else str(exc)  # fmt: skip
            if peer is not None:
                with contextlib.suppress(Exception):
                    peer.close()
    return ready, reasons


@contextlib.contextmanager
def peers(runtime: str = "runsc") -> Iterator[tuple[list[Peer], dict[str, str]]]:
    ready, reasons = available_peers(runtime)
    try:
        yield ready, reasons
    finally:
        for peer in ready:
            peer.close()


def leftovers() -> list[str]:
    """Containers a peer created here and left behind."""
    out = subprocess.run(["docker", "ps", "-aq", "--filter", f"label={LABEL}"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.split()


def smoke(runtime: str, n: int) -> dict[str, Any]:
    report: dict[str, Any] = {"runtime": runtime, "image": python_image(), "peers": {}}
    with peers(runtime) as (ready, reasons):
        for peer in ready:
            latencies = []
            for _ in range(n):
                started = time.perf_counter()
                out = peer.run(CODE)
                latencies.append(round((time.perf_counter() - started) * 1000, 1))
                assert out == EXPECTED, out
            report["peers"][peer.name] = {"latency_ms": latencies}
        for name, reason in reasons.items():
            report["peers"][name] = {"unavailable": reason}
    report["leftover_containers"] = leftovers()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="run each available peer 3 times")
    parser.add_argument("--runtime", choices=RUNTIMES, default="runsc")
    parser.add_argument("-n", type=int, default=3, help="runs per peer")
    args = parser.parse_args()
    if not args.smoke:
        parser.error("only --smoke is implemented; the benchmarks import this module")
    print(json.dumps(smoke(args.runtime, args.n), indent=2))


if __name__ == "__main__":
    sys.exit(main())
