"""The sandbox layer: one untrusted program in a fresh hardened gVisor container."""

from crucible_ray.sandbox.engine import Engine
from crucible_ray.sandbox.runner import SandboxRunner
from crucible_ray.sandbox.sweep import sweep_orphans

__all__ = ["Engine", "SandboxRunner", "sweep_orphans"]
