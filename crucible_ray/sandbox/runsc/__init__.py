"""The runsc backend: gVisor driven directly from OCI bundles, no daemon."""

from crucible_ray.sandbox.runsc.backend import RunscBackend

__all__ = ["RunscBackend"]
