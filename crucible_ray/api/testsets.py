"""Routes that store, list and delete test sets, and the resolution of a judge request that
names one (``testset``) into the tests the dispatcher runs."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from crucible_ray.api.admission import rate_limit, unprocessable
from crucible_ray.api.deps import Services, ServicesDep, UserDep, client_address
from crucible_ray.api.schemas import JudgeSubmission
from crucible_ray.audit import audit_action
from crucible_ray.errors import InvalidRequest
from crucible_ray.judge.limits import check_test_data
from crucible_ray.judge.models import JudgeTest
from crucible_ray.judge.testsets import TestSet, TestSetInfo, canonical_tests

router = APIRouter(tags=["test sets"])
TESTSET_LINKS = {"links": {"GetTestSet": {
    "operationId": "get_testset_api_testsets__testset_id__get",
    "parameters": {"testset_id": "$response.body#/id"}}}}  # fmt: skip
NO_SUCH = "no such test set"


def _retention(svc: Services) -> timedelta:
    return timedelta(days=svc.settings.retention_days)


@router.put(
    "/api/testsets",
    status_code=201,
    response_model=TestSetInfo,
    responses={201: TESTSET_LINKS, 200: {"model": TestSetInfo, **TESTSET_LINKS},
               413: {"description": "more test data than the policy allows"}},
)  # fmt: skip
async def put_testset(body: TestSet, request: Request, svc: ServicesDep,
                      user: UserDep) -> JSONResponse:  # fmt: skip
    """Store tests once (201; 200 if this user stored the same tests before) and name them by
    their content's SHA-256 in judge requests (``testset``) instead of sending them again. A
    test set is the user's own, kept while used (``expires_at``), erased with their data."""
    canonical = canonical_tests(body.tests)
    try:
        check_test_data(body.tests, svc.settings.sandbox, canonical)
    except InvalidRequest as exc:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, str(exc)) from None
    await rate_limit(svc, user, request)
    info, created = await asyncio.to_thread(
        svc.store.put_testset, user, canonical, len(body.tests), _retention(svc)
    )
    if created:
        audit_action("testset_stored", user=user, testset=info.id, tests=info.tests,
                     bytes=info.bytes, client=client_address(request))  # fmt: skip
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return JSONResponse(info.model_dump(mode="json"), code)


@router.get("/api/testsets", response_model=list[TestSetInfo])
async def list_testsets(svc: ServicesDep, user: UserDep) -> list[TestSetInfo]:
    """The caller's test sets, most recently used first."""
    return await asyncio.to_thread(svc.store.testsets, user, _retention(svc))


@router.get("/api/testsets/{testset_id}", response_model=TestSetInfo)
async def get_testset(testset_id: str, svc: ServicesDep, user: UserDep) -> TestSetInfo:
    info = await asyncio.to_thread(svc.store.testset_info, user, testset_id, _retention(svc))
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NO_SUCH)
    return info


@router.delete("/api/testsets/{testset_id}", status_code=204)
async def delete_testset(testset_id: str, request: Request, svc: ServicesDep,
                         user: UserDep) -> None:  # fmt: skip
    """Judgings already admitted keep the tests they were given."""
    if not await asyncio.to_thread(svc.store.delete_testset, user, testset_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NO_SUCH)
    audit_action("testset_deleted", user=user, testset=testset_id,
                 client=client_address(request))  # fmt: skip


async def testset_tests(svc: Services, user: str, testset_id: str) -> list[JudgeTest]:
    """The tests a judge request names; 422 naming ``testset`` if the user has no such set."""
    tests = await asyncio.to_thread(svc.store.testset_tests, user, testset_id)
    if tests is None:
        raise unprocessable(["body", "testset"], f"{NO_SUCH} (store it with PUT /api/testsets)")
    return tests


def judge_submission(fields: dict[str, Any], tests: list[JudgeTest],
                     where: list[Any]) -> JudgeSubmission:  # fmt: skip
    """A JudgeSubmission of ``fields`` with ``tests`` (a named test set's, or a batch's): the
    whole request validated again, so a test set that does not fit it is a 422 at ``where``."""
    fields = {name: value for name, value in fields.items() if name not in ("tests", "testset")}
    try:
        return JudgeSubmission.model_validate({**fields, "tests": tests})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [*where, *(part for part in first["loc"] if part != "tests")]
        raise unprocessable(loc, first["msg"]) from None


async def resolved(svc: Services, user: str, body: JudgeSubmission) -> JudgeSubmission:
    """The submission with its tests: those it gave, or those of the test set it names."""
    if body.testset is None:
        return body
    tests = await testset_tests(svc, user, body.testset)
    fields = {name: getattr(body, name) for name in body.model_fields_set}
    return judge_submission(fields, tests, ["body", "testset"])
