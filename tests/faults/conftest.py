"""The fault-matrix tests run the real service (the API tests' fixtures) with its store in
SQLite on a small tmpfs of its own, so that the store's disk can really fill up, and with
short maintenance intervals, so that reconciliation is seen within a test."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crucible_ray.settings import Settings
from tests.api.conftest import as_user, http, service, service_settings, token_for
from tests.conftest import IN_CI

__all__ = ["as_user", "http", "service", "token_for"]  # fixtures, re-registered here
STORE_DISK_MB = 16


class StoreDisk:
    """A tmpfs holding the service's SQLite store: ``fill()`` takes every free byte."""

    def __init__(self, mountpoint: Path) -> None:
        self.mountpoint = mountpoint
        self.filler = mountpoint / "filler"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.mountpoint / 'crucible.db'}"

    def fill(self) -> None:
        with self.filler.open("ab", buffering=0) as f:
            for size in (1 << 20, 4096, 1):  # down to the last byte
                with contextlib.suppress(OSError):
                    while True:
                        f.write(b"\0" * size)

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture(scope="package")
def store_disk(tmp_path_factory) -> Iterator[StoreDisk]:
    mountpoint = tmp_path_factory.mktemp("store-disk")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={STORE_DISK_MB}m", "tmpfs",
                              str(mountpoint)], capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs for the store (root needed): {mounted.stderr.strip()}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    disk = StoreDisk(mountpoint)
    try:
        yield disk
    finally:
        disk.free()
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


@pytest.fixture(scope="package")
def settings(tmp_path_factory, store_disk) -> Settings:
    return service_settings(
        tmp_path_factory,
        store_disk.database_url,
        rate_limit_per_minute=100_000,  # the faults, not the rate limit, are under test
        maintenance_every_s=2,
        reconcile_after_s=10,
    )
