"""The Docker backend: sandboxes as containers of the local Docker engine, under gVisor."""

from crucible_ray.sandbox.docker.backend import DockerBackend
from crucible_ray.sandbox.docker.engine import Engine

__all__ = ["DockerBackend", "Engine"]
