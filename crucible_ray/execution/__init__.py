"""The Ray execution layer: executor actors on executor nodes behind one dispatcher."""

from crucible_ray.execution.client import ExecutionClient, get_dispatcher, stop_dispatcher
from crucible_ray.execution.config import DispatcherConfig

__all__ = ["DispatcherConfig", "ExecutionClient", "get_dispatcher", "stop_dispatcher"]
