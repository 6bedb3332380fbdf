"""The service with its results in a PostgreSQL server of its own, which the tests stop and
start (the session's shared server must stay up for everyone else)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from crucible_ray.settings import Settings
from tests.api.conftest import as_user, http, service, service_settings, token_for
from tests.conftest import PG_PORT, _unavailable

__all__ = ["as_user", "http", "service", "token_for"]  # fixtures, re-registered here
OUTAGE_PG_PORT = PG_PORT + 1


class PostgresServer:
    """A throwaway server (Debian's package) on a unix socket, run as ``postgres``."""

    def __init__(self, bin_dir: Path, root: Path, port: int) -> None:
        self.bin_dir, self.root, self.port = bin_dir, root, port
        self.data = root / "cluster"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@/crucible?host={self.root}&port={self.port}"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin_dir / tool), *args],
                       check=True, capture_output=True, cwd="/")  # fmt: skip

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        self.start()
        self._run("createdb", "-h", str(self.root), "-p", str(self.port), "crucible")

    def start(self) -> None:
        options = f"-k {self.root} -p {self.port} -c listen_addresses="  # unix socket only
        # -l: the server must not inherit our pipes, or waiting for pg_ctl never ends.
        self._run("pg_ctl", "-D", str(self.data), "-o", options,
                  "-l", str(self.data / "server.log"), "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture(scope="package")
def outage_postgres() -> Iterator[PostgresServer]:
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not bins or shutil.which("runuser") is None:
        _unavailable("PostgreSQL is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="crucible-pg-outage-"))  # pytest's are root-only
    shutil.chown(root, "postgres")
    root.chmod(0o700)
    server = PostgresServer(bins[-1].parent, root, OUTAGE_PG_PORT)
    server.create()
    try:
        yield server
    finally:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                str(server.bin_dir / "pg_ctl"),
                "-D",
                str(server.data),
                "-m",
                "immediate",
                "stop",
            ],
            capture_output=True,
            cwd="/",
        )  # fmt: skip  (already stopped: fine)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def settings(tmp_path_factory, outage_postgres) -> Settings:
    return service_settings(
        tmp_path_factory,
        outage_postgres.url,
        rate_limit_per_minute=100_000,  # the outage, not the rate limit, is under test
        maintenance_every_s=2,
    )
