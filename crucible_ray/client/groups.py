"""``judge_batch``: many submissions judged on one test set (a GRPO group, a leaderboard run),
sent as ``POST /api/judge/batch`` requests and followed per batch.

The plan (which submissions are distinct, what to send next, what an answer or a refusal
means) is :class:`GroupPlan`, pure and shared by both clients; :func:`judge_group` is the
blocking client's driver, ``AsyncJudgeCalls.judge_batch`` the asyncio one. Identical
submissions are judged once and share the result (each keeps its own ``metadata``); the
server dedupes within a request too.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crucible_ray.api.schemas import JudgeBatchSubmission
from crucible_ray.client import protocol
from crucible_ray.client.base import unfinished_judgement
from crucible_ray.errors import CrucibleError, DeadlineExceeded
from crucible_ray.judge.models import JudgeResult
from crucible_ray.progress import Tally, progress_bar

if TYPE_CHECKING:
    from crucible_ray.client.retry import Retrier
    from crucible_ray.client.sync import Client

POLL_S = (0.2, 2.0)  # a batch's status is asked this often: from the first, growing to the second
PATH = "/api/judge/batch"


@dataclass
class GroupPlan:
    """What is sent: each distinct submission once, in chunks that shrink when the server is
    full; which submissions share each distinct one; which batches are being followed."""

    items: list[dict[str, Any]]
    shared: dict[str, Any]
    chunk: int  # the size of the next chunk: halved when the server is full, doubled back
    nonce: str = field(default_factory=protocol.new_key)
    distinct: list[int] = field(default_factory=list)  # the first position of each
    copies: dict[int, list[int]] = field(default_factory=dict)  # first position -> all
    pending: collections.deque[int] = field(default_factory=collections.deque)
    largest: int = 0  # the chunk the caller asked for
    following: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # batch -> ids
    results: dict[int, JudgeResult] = field(default_factory=dict)  # first position -> result

    def __post_init__(self) -> None:
        self.chunk = self.largest = max(1, self.chunk)
        seen: dict[tuple[Any, ...], int] = {}
        for position, item in enumerate(self.items):
            key = (item.get("language"), item.get("image"), item["code"])
            first = seen.setdefault(key, position)
            self.copies.setdefault(first, []).append(position)
            if first == position:
                self.distinct.append(position)
        self.pending.extend(self.distinct)

    @property
    def busy(self) -> bool:
        return bool(self.pending or self.following)

    def next_chunk(self) -> list[int]:
        return [self.pending.popleft() for _ in range(min(self.chunk, len(self.pending)))]

    def request(self, chunk: list[int]) -> tuple[dict[str, Any], str]:
        """The body for ``chunk`` and its idempotency key: the same positions are resent with
        the same key, so a lost answer never has them judged twice."""
        body = JudgeBatchSubmission(**self.shared, submissions=[self.items[p] for p in chunk])
        return body.model_dump(
            mode="json", exclude_none=True
        ), f"{self.nonce}-{chunk[0]}-{len(chunk)}"

    def accepted(self, chunk: list[int], answer: dict[str, Any]) -> None:
        self.chunk = min(self.largest, 2 * self.chunk)  # room again: grow back
        pairs = list(zip(chunk, answer["ids"], strict=True))
        self.refused([p for p, judge_id in pairs if judge_id is None])  # not admitted: again
        self.following[answer["batch_id"]] = [(p, judge_id) for p, judge_id in pairs if judge_id]

    def refused(self, chunk: list[int], error: CrucibleError | None = None) -> bool:
        """Send ``chunk`` again first. After a refusal ``error``: whether to pause before the
        next try (the server is not just full, or nothing in flight will free room)."""
        self.pending.extendleft(reversed(chunk))
        if error is None:
            return False
        smaller = protocol.retry_batch_with(error, len(chunk), defer=bool(self.following))
        if smaller:
            self.chunk = smaller
        return smaller is None

    def finished(self, batch_id: str, lines: Iterable[dict[str, Any]], tally: Tally) -> None:
        """A followed batch is done: its results (the /results lines) are recorded."""
        by_id = {data["id"]: data for data in lines}
        for first, judge_id in self.following.pop(batch_id):
            result = self.results[first] = JudgeResult.model_validate(by_id[judge_id])
            for _ in self.copies[first]:
                tally.advance(result.verdict or result.status.value)

    def outcome(self, why: str) -> list[JudgeResult]:
        """Every submission's result, in order, with its own metadata; one without a result
        (the deadline passed) is an ``error`` result with verdict IE and score null."""
        first_of = {p: first for first, copies in self.copies.items() for p in copies}
        out = []
        for position, item in enumerate(self.items):
            result = self.results.get(first_of[position])
            if result is not None:
                out.append(result.model_copy(update={"metadata": item.get("metadata")}))
                continue
            language = item.get("language") or self.shared.get("language", "python")
            image = item.get("image") or self.shared.get("image")
            lost = unfinished_judgement(language, image, item.get("metadata"), why or "lost")
            out.append(lost)
        return out


def group_plan(submissions: Iterable[str | dict[str, Any]], testset: str | None, language: str,
               image: str | None, chunk: int, options: dict[str, Any]) -> GroupPlan:  # fmt: skip
    """The plan for ``judge_batch``'s arguments; the shared options are checked here first
    (a pydantic ValidationError names the field, as ``judge`` does)."""
    items = [{"code": s} if isinstance(s, str) else dict(s) for s in submissions]
    shared = {"testset": testset, "language": language, "image": image, **options}
    shared = {name: value for name, value in shared.items() if value is not None}
    JudgeBatchSubmission(**shared, submissions=[{"code": "-"}])  # tests or testset, options
    return GroupPlan(items, shared, chunk)


def judge_group(client: Client, plan: GroupPlan, progress: bool | None) -> list[JudgeResult]:
    """The blocking driver: send, follow, collect until every submission has its result."""
    retrier, pause, why = client._retrier(), POLL_S[0], ""
    with progress_bar(len(plan.items), enabled=progress, description="judgings") as tally:
        try:
            while plan.busy:
                if plan.pending:
                    _send_next(client, plan, retrier)
                done = [b for b in list(plan.following)
                        if client._get(f"/api/batch/{b}", retrier)["done"]]  # fmt: skip
                for batch_id in done:
                    plan.finished(batch_id, client._batch_lines(batch_id), tally)
                if not done and plan.busy:
                    if retrier.remaining_s <= pause:
                        raise DeadlineExceeded("judgings not finished in time")
                    time.sleep(pause)
                pause = POLL_S[0] if done else min(POLL_S[1], pause * 1.5)
        except DeadlineExceeded as error:
            why = str(error)
    return plan.outcome(why)


def _send_next(client: Client, plan: GroupPlan, retrier: Retrier) -> None:
    chunk = plan.next_chunk()
    body, key = plan.request(chunk)
    try:
        answer = client._send("POST", PATH, None, body=body, key=key).json()
    except CrucibleError as error:
        if plan.refused(chunk, error):
            time.sleep(retrier.pause(error))  # raises when not retryable, or out of time
        return
    plan.accepted(chunk, answer)
