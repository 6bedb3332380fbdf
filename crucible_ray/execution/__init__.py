"""The Ray execution layer: executor actors on executor nodes behind one dispatcher.

Its names are imported on first use, so the pure modules here (``scheduling``, ``fairness``,
``autoscale``) can be used by the store without importing Ray.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crucible_ray.execution.client import ExecutionClient, get_dispatcher, stop_dispatcher
    from crucible_ray.execution.config import DispatcherConfig

__all__ = ["DispatcherConfig", "ExecutionClient", "get_dispatcher", "stop_dispatcher"]
_HOME = {"DispatcherConfig": "config", "ExecutionClient": "client",
         "get_dispatcher": "client", "stop_dispatcher": "client"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
