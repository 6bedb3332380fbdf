"""Test sets in the store: stored once per user and content, read by judge requests that
name them, kept while used (retention counts from the last use) and erased with the user."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crucible_ray.judge.models import JudgeTest
from crucible_ray.judge.testsets import TestSetInfo, content_id
from crucible_ray.models import utcnow
from crucible_ray.store.schema import aware
from crucible_ray.store.tables import StoredTestSet

if TYPE_CHECKING:
    from crucible_ray.store.schema import Sessions

# A test set named again within this long is not written again (its retention is in days).
TOUCH_EVERY = timedelta(minutes=10)


class TestSetRecords:
    _session: Sessions

    def put_testset(self, user: str, canonical: bytes, count: int,
                    retention: timedelta) -> tuple[TestSetInfo, bool]:  # fmt: skip
        """Store ``canonical`` (crucible_ray.judge.testsets.canonical_tests) for ``user``
        unless stored already; returns its info and whether it is new."""
        set_id, now = content_id(canonical), utcnow()
        try:
            with self._session.begin() as session:
                session.add(StoredTestSet(user=user, id=set_id, tests=canonical, count=count,
                                          created_at=now, used_at=now))  # fmt: skip
            created = True
        except IntegrityError:  # stored before (perhaps a moment ago): now used again
            created = False
            self._touch(user, set_id, now)
        info = self.testset_info(user, set_id, retention)
        assert info is not None  # stored above; only its owner's erasure can race this
        return info, created

    def testset_tests(self, user: str, set_id: str) -> list[JudgeTest] | None:
        """The user's test set's tests (None: no such test set of this user's), marked used."""
        with self._session() as session:
            row = session.get(StoredTestSet, (user, set_id))
            if row is None:
                return None
            stale = aware(row.used_at) < utcnow() - TOUCH_EVERY
            tests = [JudgeTest.model_validate(t) for t in json.loads(row.tests)]
        if stale:
            self._touch(user, set_id, utcnow())
        return tests

    def testset_info(self, user: str, set_id: str, retention: timedelta) -> TestSetInfo | None:
        with self._session() as session:
            row = session.execute(
                select(*_COLUMNS).where(StoredTestSet.user == user, StoredTestSet.id == set_id)
            ).first()
        return _info(row, retention) if row is not None else None

    def testsets(self, user: str, retention: timedelta) -> list[TestSetInfo]:
        """The user's test sets, most recently used first."""
        with self._session() as session:
            rows = session.execute(
                select(*_COLUMNS)
                .where(StoredTestSet.user == user)
                .order_by(StoredTestSet.used_at.desc())
            ).all()
        return [_info(row, retention) for row in rows]

    def delete_testset(self, user: str, set_id: str) -> bool:
        with self._session.begin() as session:
            deleted = session.execute(
                delete(StoredTestSet).where(StoredTestSet.user == user,
                                            StoredTestSet.id == set_id)
            )  # fmt: skip
        return deleted.rowcount == 1

    @staticmethod
    def _delete_user_testsets(session: Session, user: str) -> int:
        return session.execute(delete(StoredTestSet).where(StoredTestSet.user == user)).rowcount

    @staticmethod
    def _purge_testsets(session: Session, cutoff: datetime) -> int:
        """Test sets no judge request named since ``cutoff``."""
        return session.execute(delete(StoredTestSet).where(StoredTestSet.used_at < cutoff)).rowcount

    def _touch(self, user: str, set_id: str, now: datetime) -> None:
        with self._session.begin() as session:
            session.execute(
                update(StoredTestSet)
                .where(StoredTestSet.user == user, StoredTestSet.id == set_id)
                .values(used_at=now)
            )


_COLUMNS = (StoredTestSet.id, StoredTestSet.count, StoredTestSet.created_at,
            StoredTestSet.used_at, func.length(StoredTestSet.tests).label("size"))  # fmt: skip


def _info(row: Row[Any], retention: timedelta) -> TestSetInfo:
    used_at = aware(row.used_at)
    return TestSetInfo(id=row.id, tests=row.count, bytes=row.size,
                       created_at=aware(row.created_at), used_at=used_at,
                       expires_at=used_at + retention)  # fmt: skip
