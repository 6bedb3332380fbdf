"""What every peer adapter shares: the program, the Peer protocol, the image and runtime."""

from __future__ import annotations

from typing import Protocol

from crucible_ray.images.build import image_tag
from crucible_ray.languages import LANGUAGES
from crucible_ray.sandbox.docker.engine import RUNSC_RUNTIME_NAME

CODE = "print(sum(range(1000)))\n"
EXPECTED = "499500\n"
RUNTIMES = ("runsc", "runc")
LABEL = "dev.crucible.bench-peer"  # on every container a peer creates here, to find leftovers


class Peer(Protocol):
    name: str

    def setup(self) -> None: ...  # one-time, not timed

    def run(self, code: str) -> str: ...  # one program in a fresh sandbox; its stdout

    def close(self) -> None: ...


def docker_runtime(runtime: str) -> str:
    """The Docker runtime name for crucible's runtime name."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}")
    return RUNSC_RUNTIME_NAME if runtime == "runsc" else "runc"


def python_image() -> str:
    return image_tag(LANGUAGES["python"])


class Unavailable(Exception):
    """A peer that cannot run here; the message says why."""
