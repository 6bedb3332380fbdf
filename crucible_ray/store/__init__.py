"""Durable evaluation records (SQLAlchemy): SQLite by default, PostgreSQL by URL."""

from crucible_ray.store.store import EvalStore, NewEvaluation

__all__ = ["EvalStore", "NewEvaluation"]
