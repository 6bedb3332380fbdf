"""The store's schema: created on first use (the database may be down when a process starts),
with additive upgrades of an older table."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import overload

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from crucible_ray.store.tables import Base, Evaluation


def create_schema(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        with engine.begin() as conn:  # concurrent readers and one writer
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    Base.metadata.create_all(engine)
    _add_missing_columns(engine)


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: None) -> None: ...
def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class Sessions:
    """The store's sessionmaker, preparing the schema before the first session."""

    def __init__(self, maker: sessionmaker[Session], prepare: Callable[[], None]) -> None:
        self._maker, self._prepare = maker, prepare

    def __call__(self) -> Session:
        self._prepare()
        return self._maker()

    def begin(self) -> AbstractContextManager[Session]:
        self._prepare()
        return self._maker.begin()


def _add_missing_columns(engine: Engine) -> None:
    """Additive schema upgrades: a column added to the model since the table was created is
    added to the table (all such columns are nullable). Anything else needs a real migration."""
    present = {c["name"] for c in inspect(engine).get_columns(Evaluation.__tablename__)}
    with engine.begin() as conn:
        for column in Evaluation.__table__.columns:
            if column.name not in present:
                if not column.nullable:
                    raise RuntimeError(f"store schema too old: cannot add {column.name}")
                kind = column.type.compile(dialect=engine.dialect)
                conn.exec_driver_sql(
                    f'ALTER TABLE {Evaluation.__tablename__} ADD COLUMN "{column.name}" {kind}'
                )
