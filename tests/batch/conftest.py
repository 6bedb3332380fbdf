"""Batch tests drive the real `crucible-ray batch` command against the session's cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crucible_ray.execution import DispatcherConfig, get_dispatcher
from crucible_ray.execution.client import stop_dispatcher

CLI = str(Path(sys.executable).with_name("crucible-ray"))


@pytest.fixture(scope="package")
def dispatcher(cluster) -> Iterator[object]:
    """Two executor actors of two slots (admission limit 8), warm sandboxes."""
    handle = get_dispatcher(
        DispatcherConfig(slots_per_actor=2, min_actors=2, max_actors=2), replace=True
    )
    yield handle
    stop_dispatcher()


@pytest.fixture
def batch_cli(cluster, dispatcher) -> Callable[..., subprocess.Popen]:
    """Start `crucible-ray batch ARGS` as a separate driver joined to the test cluster."""

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [CLI, "batch", *args, "--no-progress", "--json"],
            env={**os.environ, **cluster.env()},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    return start
