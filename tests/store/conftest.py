"""The store's tests run against a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from crucible_ray.store import EvalStore
from crucible_ray.store.tables import Base


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path) -> EvalStore:
    if request.param == "sqlite":
        return EvalStore(f"sqlite:///{tmp_path / 'store.db'}")
    store = EvalStore(request.getfixturevalue("postgres_url"))
    with store.engine.begin() as conn:  # every table empty, whatever an earlier test left
        conn.execute(text(f"TRUNCATE {', '.join(Base.metadata.tables)}"))
    return store
