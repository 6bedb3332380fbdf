"""Routes that judge a submission against its tests, follow the judging and cancel it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status

from crucible_ray.api.accept import accept
from crucible_ray.api.admission import (
    Duplicate,
    check_limits,
    check_test_data_size,
    rate_limit,
    too_many,
    unprocessable,
)
from crucible_ray.api.deps import ServicesDep, UserDep
from crucible_ray.api.evaluations import (
    BATCH_LINKS,
    WAIT_LIMIT_S,
    WAIT_REFUSED,
    admitted_answer,
    links,
)
from crucible_ray.api.idempotency import KeyDep, admit_batch, derived_id, digest_of, replay
from crucible_ray.api.schemas import (
    Accepted,
    JudgeBatchAccepted,
    JudgeBatchSubmission,
    JudgeSubmission,
)
from crucible_ray.api.testsets import judge_submission, resolved, testset_tests
from crucible_ray.api.waits import long_polls
from crucible_ray.judge.compare import COMPARE_VERSION
from crucible_ray.judge.driver import DRIVER_VERSION
from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import EvalStatus

router = APIRouter(tags=["judging"])
JUDGE_LINKS = links("judge_id", "id", GetJudge="get_judge_api_judge__judge_id__get",
                     CancelJudge="cancel_judge_api_judge__judge_id__delete")  # fmt: skip


def _live(answer: dict[str, Any], record: JudgeResult) -> JudgeResult:
    """The dispatcher's view of a judging, with what only the record holds."""
    return JudgeResult.model_validate(answer).model_copy(
        update={"metadata": record.metadata, "warnings": record.warnings}
    )


@router.post(
    "/api/judge",
    status_code=202,
    response_model=Accepted | JudgeResult,
    responses={202: JUDGE_LINKS, 200: {"model": JudgeResult, **JUDGE_LINKS}, **WAIT_REFUSED},
)
async def submit_judge(
    body: JudgeSubmission,
    request: Request,
    svc: ServicesDep,
    user: UserDep,
    key: KeyDep,
    wait: Annotated[bool, Query(description="answer with the finished result")] = False,
) -> Any:
    """Judge one submission against all its tests in one fresh sandbox: compiled once, a fresh
    process per test, each output compared here (expected answers never enter the sandbox)."""
    limit = svc.settings.waits_per_user
    with long_polls.hold(user, limit) if wait else contextlib.nullcontext():
        return await _submit(body, request, svc, user, key, wait)


async def _submit(body: JudgeSubmission, request: Request, svc: ServicesDep, user: str,
                  key: str | None, wait: bool) -> Any:  # fmt: skip
    check_limits(svc, [body])
    check_test_data_size(svc, body)
    body = await resolved(svc, user, body)
    judge_id = derived_id(user, key, "judge") if key else uuid.uuid4().hex
    earlier = await replay(svc, user, request, judge_id, body) if key else None
    if earlier is None:
        await rate_limit(svc, user, request)
        try:
            (record,) = await accept(svc, user, request, [(judge_id, body)], batch_id=None)
            earlier = JudgeResult(id=judge_id, status=EvalStatus.QUEUED, language=body.language,
                                  image=body.image_name, total=len(body.tests),
                                  compare_version=COMPARE_VERSION,
                                  driver_version=DRIVER_VERSION, metadata=record.metadata,
                                  warnings=record.warnings)  # fmt: skip
        except Duplicate:  # a twin request with this key recorded it a moment before
            earlier = await replay(svc, user, request, judge_id, body)
            if earlier is None:
                raise too_many("a request with this Idempotency-Key was refused", 1.0) from None
    assert isinstance(earlier, JudgeResult)
    return await admitted_answer(svc, user, earlier, wait, lambda answer: _live(answer, earlier))


@router.get("/api/judge/{judge_id}", response_model=JudgeResult, responses=WAIT_REFUSED)
async def get_judge(
    judge_id: str,
    svc: ServicesDep,
    user: UserDep,
    wait: Annotated[
        float, Query(ge=0, le=WAIT_LIMIT_S, description="seconds to wait for a final result")
    ] = 0.0,
) -> JudgeResult:
    record = await asyncio.to_thread(svc.store.get_judgement, user, judge_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such judging")
    if wait and not record.status.is_final:  # long poll: answer as soon as it finishes
        with long_polls.hold(user, svc.settings.waits_per_user):
            answer = await svc.plane.wait(user, judge_id, wait)
        if answer is not None:  # None: the dispatcher no longer knows it; the record stands
            return _live(answer, record)
    return record


@router.delete("/api/judge/{judge_id}", response_model=JudgeResult)
async def cancel_judge(judge_id: str, svc: ServicesDep, user: UserDep) -> JudgeResult:
    record = await asyncio.to_thread(svc.store.get_judgement, user, judge_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such judging")
    if record.status.is_final:
        raise HTTPException(status.HTTP_409_CONFLICT, f"judging already {record.status}")
    if not await svc.plane.cancel(user, judge_id):
        final = await svc.plane.wait(user, judge_id, 0)
        if final is not None and EvalStatus(final["status"]).is_final:
            raise HTTPException(status.HTTP_409_CONFLICT, f"judging already {final['status']}")
    final = await svc.plane.wait(user, judge_id, 10.0)
    return _live(final, record) if final else record


@router.post("/api/judge/batch", status_code=202, response_model=JudgeBatchAccepted,
             responses={202: BATCH_LINKS})  # fmt: skip
async def submit_judge_batch(body: JudgeBatchSubmission, request: Request, svc: ServicesDep,
                             user: UserDep, key: KeyDep) -> JudgeBatchAccepted:  # fmt: skip
    """Judge many submissions on one test set (given, or named by ``testset``) with one set
    of options: each in a fresh sandbox of its own, byte-identical ones once. Follow them with
    GET /api/batch/{batch_id} and its /results (JudgeResults in order), or each by id."""
    if len(body.submissions) > svc.settings.max_batch_items:
        message = f"at most {svc.settings.max_batch_items} submissions"
        raise unprocessable(["body", "submissions"], message)
    check_test_data_size(svc, body)
    tests = body.tests if body.tests is not None else await testset_tests(svc, user, body.testset)
    batch_id = derived_id(user, key, "judge-batch") if key else uuid.uuid4().hex
    unique, positions = _distinct(body, tests)
    check_limits(svc, unique)
    digest = digest_of(body.model_dump(mode="json"))
    ids = await admit_batch(svc, user, request, key, batch_id, unique, digest, "judge")
    return _accepted(batch_id, ids, positions, len(unique))


def _distinct(body: JudgeBatchSubmission,
              tests: list[Any]) -> tuple[list[JudgeSubmission], list[int]]:  # fmt: skip
    """The distinct submissions (language, image and code), and each one's position there."""
    unique: list[JudgeSubmission] = []
    seen: dict[tuple[str, str, str], int] = {}
    positions = []
    for index in range(len(body.submissions)):
        item = judge_submission(body.submission(index), tests, ["body", "submissions", index])
        positions.append(seen.setdefault((item.language, item.image_name, item.code), len(unique)))
        if positions[-1] == len(unique):
            unique.append(item)
    return unique, positions


def _accepted(batch_id: str, admitted: list[str], positions: list[int],
              unique: int) -> JudgeBatchAccepted:  # fmt: skip
    """Each submission's judging id; None for one not admitted (the server filled up part-way:
    send those again)."""
    ids = [admitted[p] if p < len(admitted) else None for p in positions]
    return JudgeBatchAccepted(batch_id=batch_id, ids=ids, unique=unique)
