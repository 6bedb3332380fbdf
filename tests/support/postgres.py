"""A throwaway PostgreSQL server (Debian's package) on a unix socket only: for the test suite's
store tests and the queue benchmark. Not part of the product."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    pass


@contextlib.contextmanager
def throwaway_postgres(port: int, database: str = "crucible") -> Iterator[str]:
    """Start a fresh cluster, yield its SQLAlchemy URL, and remove it afterwards."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not bins or shutil.which("runuser") is None:
        raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    bin_dir = bins[-1].parent
    data = Path(tempfile.mkdtemp(prefix="crucible-pg-"))  # pytest's tmp dirs are root-only
    shutil.chown(data, "postgres")
    data.chmod(0o700)

    def as_postgres(*cmd: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, cwd="/"
        )

    cluster = data / "cluster"
    as_postgres(str(bin_dir / "initdb"), "-D", str(cluster), "-A", "trust", "-U", "postgres")
    options = f"-k {data} -p {port} -c listen_addresses="  # unix socket only
    # -l: the server must not inherit our pipes, or waiting for pg_ctl never ends.
    log = str(cluster / "server.log")
    as_postgres(str(bin_dir / "pg_ctl"), "-D", str(cluster), "-o", options, "-l", log, "-w",
                "start")  # fmt: skip
    try:
        as_postgres(str(bin_dir / "createdb"), "-h", str(data), "-p", str(port), database)
        yield f"postgresql+psycopg://postgres@/{database}?host={data}&port={port}"
    finally:
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(cluster), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


def fresh_database(url: str, name: str) -> str:
    """An empty database ``name`` on the server of ``url`` (dropped first if it exists), so a
    test's store cannot disturb another's; returns its URL."""
    from sqlalchemy import create_engine, make_url

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)
