"""The sandbox layer: one untrusted program in a fresh hardened gVisor sandbox.

:class:`SandboxRunner` is the entry point; :class:`SandboxBackend` the seam behind it (Docker,
or runsc driven directly), chosen by ``SandboxPolicy.backend``.
"""

from crucible_ray.sandbox.backend import Outcome, Program, Sandbox, SandboxBackend
from crucible_ray.sandbox.registry import BACKEND_NAMES, make_backend
from crucible_ray.sandbox.runner import SandboxRunner

__all__ = [
    "BACKEND_NAMES",
    "Outcome",
    "Program",
    "Sandbox",
    "SandboxBackend",
    "SandboxRunner",
    "make_backend",
]
