"""Idempotent submissions: ``Idempotency-Key`` on ``POST /api/eval`` and ``POST /api/batch``.

A client that lost its answer (connection cut, an ingress replica killed, a 5xx) resends the
same request with the same key and gets the same evaluation back, never a second run. Ids
are derived from the user and the key, so a replay finds its record wherever it lands. A key
names one request: reusing it for a different program, or a batch for a different body, is
refused (422). The Python client
sends a fresh key with every submission and resends on such failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.exc import IntegrityError

from crucible_ray.api.accept import accept
from crucible_ray.api.admission import (
    Duplicate,
    Submission,
    check_room,
    rate_limit,
    refuse,
    stored_kind,
    submission_context,
    too_many,
)
from crucible_ray.api.deps import Services
from crucible_ray.api.schemas import BatchAccepted, BatchSubmission
from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import EvalResult
from crucible_ray.store import NewEvaluation

KEY_HEADER = "Idempotency-Key"
KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-")
KEY_DOC = "any unique string per submission: resending with the same key never runs it twice"
ADMISSION_WINDOW_S = 2.0  # longer than any record-to-admission step of a live request


def _valid_key(key: str | None) -> str | None:
    if key is not None and not (0 < len(key) <= 128 and set(key) <= KEY_CHARS):
        problem = {"loc": ["header", KEY_HEADER], "type": "value_error",
                   "msg": "1 to 128 characters of A-Z a-z 0-9 . _ : -"}  # fmt: skip
        raise HTTPException(422, [problem])
    return key


def idempotency_key(
    key: Annotated[str | None, Header(alias=KEY_HEADER, description=KEY_DOC)] = None,
) -> str | None:
    return _valid_key(key)


KeyDep = Annotated[str | None, Depends(idempotency_key)]


def derived_id(user: str, key: str, *parts: str) -> str:
    """The id of the evaluation (or batch) a user's key names: the same on every replica."""
    return hashlib.sha256("\0".join((user, key, *parts)).encode()).hexdigest()[:32]


def request_digest(body: BatchSubmission) -> str:
    """SHA-256 of the request's content, defaults filled in: equal for equal requests however
    their JSON was spelled."""
    return digest_of({"items": [item.canonical() for item in body.items]})


def digest_of(content: Any) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def reused(what: str) -> HTTPException:
    return HTTPException(422, f"{KEY_HEADER} already used for a different {what}")


async def batch_replay(svc: Services, user: str, batch_id: str,
                       digest: str) -> BatchAccepted | None:  # fmt: skip
    """What an earlier request with this key admitted (the same prefix of its items); 422 if
    that request had another body."""
    ids, earlier = await asyncio.to_thread(svc.store.batch_request, user, batch_id)
    if not ids:
        return None
    if earlier is not None and earlier != digest:  # None: recorded before digests were kept
        raise reused("batch")
    return BatchAccepted(batch_id=batch_id, ids=ids)


async def admit_batch(svc: Services, user: str, request: Request, key: str | None,
                      batch_id: str, items: Sequence[Submission], digest: str,
                      *id_parts: str) -> list[str]:  # fmt: skip
    """Record, then admit, a batch's items; the ids admitted, in order. Under a key: the
    earlier request's ids if there was one (422 if its body differed). Room is asked first
    and the batch is charged once to the rate limit."""
    if key and (earlier := await batch_replay(svc, user, batch_id, digest)) is not None:
        return earlier.ids
    await check_room(svc, len(items))
    await rate_limit(svc, user, request)  # a batch counts as one request
    pairs = [(derived_id(user, key, *id_parts, str(i)) if key else uuid.uuid4().hex, item)
             for i, item in enumerate(items)]  # fmt: skip
    try:
        admitted = await accept(svc, user, request, pairs, batch_id=batch_id, digest=digest)
    except Duplicate:  # a twin request with this key recorded it a moment before
        earlier = await batch_replay(svc, user, batch_id, digest)
        if earlier is None:
            raise too_many("a request with this Idempotency-Key was refused", 1.0) from None
        return earlier.ids
    return [record.id for record in admitted]


async def replay(svc: Services, user: str, request: Request, eval_id: str,
                 body: Submission) -> EvalResult | JudgeResult | None:  # fmt: skip
    """The evaluation an earlier request with this key created, or None if there is none.

    A record the dispatcher does not know is being admitted by that request right now, or was
    left when it died: after the admission window it is admitted again from this request."""
    context = submission_context(user, request, body)
    deadline = time.monotonic() + ADMISSION_WINDOW_S
    get = svc.store.get_judgement if body.kind == "judge" else svc.store.get
    while True:
        existing = await asyncio.to_thread(get, user, eval_id)
        if existing is None:
            return None  # never recorded, or refused and forgotten: a new submission
        fingerprint = await asyncio.to_thread(svc.store.code_sha256, eval_id)
        if (fingerprint, existing.language) != (context["code_sha256"], body.language) or (
            existing.image not in (None, body.image_name)  # None: recorded before images
        ):
            raise reused("request")
        if existing.status.is_final or await svc.plane.admitted(eval_id):
            return existing
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    answer = await svc.plane.submit(eval_id, body.request_body(), context, body.kind)  # type: ignore[attr-defined]
    if not answer["accepted"]:
        await asyncio.to_thread(svc.store.delete_user_evals, user, [eval_id])  # an orphan
        refuse(answer, request, user)
    if await asyncio.to_thread(get, user, eval_id) is None:
        # The first request was refused and forgot the record just before this one admitted
        # it: record it again, or its result would have nowhere to go.
        record = NewEvaluation(id=eval_id, user=user, code=body.code, language=body.language,
                               image=body.image_name, metadata=body.metadata,
                               kind=stored_kind(body))  # fmt: skip
        with contextlib.suppress(IntegrityError):
            await asyncio.to_thread(svc.store.add, [record])
    return existing
