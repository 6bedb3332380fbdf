"""``iter_judge_batch``/``judge_batch``: many submissions judged on one test set (a GRPO group,
a leaderboard run), sent as ``POST /api/judge/batch`` requests and followed per batch.

The plan (what to read and send next, what an answer, a refusal or a batch's results mean) is
:class:`GroupStream`, pure and shared by both clients; ``group_driver.stream_group`` is the
blocking client's driver, ``AsyncJudgeCalls.iter_judge_batch`` the asyncio one.

Memory stays flat however long the input: submissions are read lazily, at most ``window``
distinct ones are in flight (and ``4 * window`` positions held in all), and a result is handed
over as soon as it is final. Identical submissions are judged once: a copy that arrives while
its first is in flight waits for it; one that arrives later takes the result from the last
``window`` results kept, or fetches it by id (the ids of the last ``REMEMBERED`` distinct
submissions are kept, by digest). The deadline is for progress: it restarts at every result.
"""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any

from crucible_ray.api.schemas import JudgeBatchSubmission
from crucible_ray.client import protocol
from crucible_ray.client.base import unfinished_judgement
from crucible_ray.errors import CrucibleError, DeadlineExceeded, InvalidRequest
from crucible_ray.judge.models import JudgeResult
from crucible_ray.models import EvalStatus

POLL_S = (0.2, 2.0)  # a batch's status is asked this often: from the first, growing to the second
PATH = "/api/judge/batch"
REMEMBERED = 100_000  # distinct submissions whose judging id is kept for later copies (~100 B)
Yielded = tuple[int, JudgeResult]  # (the submission's position in the input, its result)


@dataclass
class _Distinct:
    """One distinct submission in flight: its body until the server accepts it, and every
    position (with its own metadata) that waits for its result."""

    digests: list[bytes]
    body: dict[str, Any] | None
    waiting: list[tuple[int, Any]]
    language: str
    image: str | None


@dataclass
class GroupStream:
    """What is read, sent and handed over. Positions index the input; a distinct submission is
    known by its first position. Results ready to hand over wait in ``ready``, so that a
    failure between network calls never loses one (``lost`` hands them over first)."""

    source: Iterator[tuple[int, dict[str, Any]]]
    shared: dict[str, Any]
    window: int  # distinct submissions in flight at most (sent or about to be)
    drain_unread: bool = True  # past the deadline, unread input gets IE results (finite input)
    chunk: int = 0  # the next request's size: halved when the server is full, doubled back
    nonce: str = field(default_factory=protocol.new_key)
    exhausted: bool = False
    in_flight: dict[int, _Distinct] = field(default_factory=dict)
    by_digest: dict[bytes, int] = field(default_factory=dict)  # in flight: digest -> first
    judged: collections.OrderedDict[bytes, str] = field(default_factory=collections.OrderedDict)
    recent: collections.OrderedDict[bytes, JudgeResult] = field(
        default_factory=collections.OrderedDict
    )
    pending: collections.deque[int] = field(default_factory=collections.deque)
    following: dict[str, dict[str, int]] = field(default_factory=dict)  # batch -> id -> first
    handed: dict[str, int] = field(default_factory=dict)  # batch -> judgings handed over
    late: collections.deque[tuple[int, Any, str]] = field(default_factory=collections.deque)
    ready: collections.deque[Yielded] = field(default_factory=collections.deque)

    def __post_init__(self) -> None:
        self.window = max(1, self.window)
        self.chunk = self.window

    @property
    def busy(self) -> bool:
        return bool(self.in_flight or self.late or self.ready or not self.exhausted)

    @property
    def held(self) -> int:
        """Positions read and not handed over yet."""
        waiting = sum(len(d.waiting) for d in self.in_flight.values())
        return waiting + len(self.late) + len(self.ready)

    def fill(self) -> None:
        """Read the input until ``window`` distinct submissions are in flight (or ``4 *
        window`` positions are held). Only once a quarter of the window is free, so that
        requests (and batches to follow) stay large."""
        if len(self.in_flight) > self.window - max(1, self.window // 4):
            return
        while (not self.exhausted and len(self.in_flight) < self.window
               and self.held < 4 * self.window):  # fmt: skip
            try:
                position, item = next(self.source)
            except StopIteration:
                self.exhausted = True
                return
            self._read(position, item)

    def _read(self, position: int, item: dict[str, Any]) -> None:
        metadata, digest = item.get("metadata"), self._digest(item)
        first = self.by_digest.get(digest)
        if first is not None:  # its twin is in flight: wait for it
            self.in_flight[first].waiting.append((position, metadata))
        elif digest in self.recent:  # its twin ended a moment ago
            self.recent.move_to_end(digest)
            self.ready.append((position, _with(self.recent[digest], metadata)))
        elif digest in self.judged:  # its twin ended earlier: fetch that result by id
            self.judged.move_to_end(digest)
            self.late.append((position, metadata, self.judged[digest]))
        else:
            self.by_digest[digest] = position
            language, image = self._image(item)
            self.in_flight[position] = _Distinct([digest], item, [(position, metadata)],
                                                 language, image)  # fmt: skip
            self.pending.append(position)

    def _image(self, item: dict[str, Any]) -> tuple[str, str | None]:
        language = item.get("language") or self.shared.get("language", "python")
        return language, item.get("image") or self.shared.get("image")

    def _digest(self, item: dict[str, Any]) -> bytes:
        language, image = self._image(item)
        return hashlib.sha256(f"{language}\0{image}\0{item['code']}".encode()).digest()

    def next_chunk(self) -> list[int]:
        return [self.pending.popleft() for _ in range(min(self.chunk, len(self.pending)))]

    def request(self, chunk: list[int]) -> tuple[dict[str, Any], str]:
        """The body for ``chunk`` and its idempotency key: the same positions are resent with
        the same key, so a lost answer never has them judged twice."""
        items = [self.in_flight[p].body for p in chunk]
        body = JudgeBatchSubmission(**self.shared, submissions=items)
        key = f"{self.nonce}-{chunk[0]}-{len(chunk)}"
        return body.model_dump(mode="json", exclude_none=True), key

    def accepted(self, chunk: list[int], answer: dict[str, Any]) -> None:
        pairs = list(zip(chunk, answer["ids"], strict=True))
        admitted: dict[str, int] = {}
        for position, judge_id in pairs:
            if not judge_id:
                continue
            if judge_id in admitted:  # the server found two of them identical: one judging
                twin = self.in_flight.pop(position)
                target = self.in_flight[admitted[judge_id]]
                target.waiting += twin.waiting
                target.digests += twin.digests
                for digest in twin.digests:
                    self.by_digest[digest] = admitted[judge_id]
                continue
            admitted[judge_id] = position
            self.in_flight[position].body = None  # the server has it: the code is not kept
        refused = [p for p, judge_id in pairs if judge_id is None]
        self.refused(refused)  # not admitted: sent again first
        # Room for all: grow back. Room for some: that many next (the server is full).
        self.chunk = max(1, len(admitted)) if refused else min(self.window, 2 * self.chunk)
        if admitted:
            self.following[answer["batch_id"]] = admitted
            self.handed[answer["batch_id"]] = 0

    def refused(self, chunk: list[int], error: CrucibleError | None = None) -> bool:
        """Send ``chunk`` again first. After a refusal ``error``: whether to pause before the
        next try (the server is not just full, or nothing in flight will free room)."""
        self.pending.extendleft(reversed(chunk))
        if error is None:
            return False
        smaller = protocol.retry_batch_with(error, len(chunk), defer=bool(self.following))
        if smaller is not None:
            self.chunk = smaller  # 0: nothing until a followed batch frees room
        return smaller is None

    def news(self, batch_id: str, counts: dict[str, int]) -> bool:
        """Whether a followed batch has final results not handed over yet (from its status)."""
        final = sum(n for status, n in counts.items() if EvalStatus(status).is_final)
        return final > self.handed[batch_id]

    def finished(self, batch_id: str, lines: Iterable[dict[str, Any]]) -> None:
        """A followed batch's results (its /results lines): the final ones become ready, for
        every position that waits for them."""
        followed = self.following[batch_id]
        for data in lines:
            first = followed.get(data.get("id", ""))
            if first is None or not EvalStatus(data["status"]).is_final:
                continue
            del followed[data["id"]]
            self.handed[batch_id] += 1
            self._done(first, data["id"], JudgeResult.model_validate(data))
        if not followed:
            del self.following[batch_id], self.handed[batch_id]

    def _done(self, first: int, judge_id: str, result: JudgeResult) -> None:
        distinct = self.in_flight.pop(first)
        for digest in distinct.digests:
            del self.by_digest[digest]
            self.judged[digest] = judge_id
            self.recent[digest] = result
        while len(self.judged) > REMEMBERED:
            self.judged.popitem(last=False)
        while len(self.recent) > self.window:
            self.recent.popitem(last=False)
        self.chunk = max(1, self.chunk)  # room freed
        self.ready.extend((p, _with(result, meta)) for p, meta in distinct.waiting)

    def late_fetched(self, result: JudgeResult) -> None:
        """The result of the first late copy (``late[0]``) was fetched: it becomes ready."""
        position, metadata, _ = self.late.popleft()
        self.ready.append((position, _with(result, metadata)))

    def lost(self, why: str) -> Iterator[Yielded]:
        """Past the deadline: what is ready, then an ``error`` result (verdict IE, score null)
        for every submission read without a result; for a finite input, the ones not read yet
        too. An input that may not end is not read further: DeadlineExceeded is raised."""
        while self.ready:
            yield self.ready.popleft()
        self.following.clear()
        self.pending.clear()
        waiting = [(p, m, d) for d in self.in_flight.values() for p, m in d.waiting]
        self.in_flight.clear()
        self.by_digest.clear()
        for position, metadata, distinct in waiting:
            yield position, self._lost(metadata, distinct.language, distinct.image, why)
        while self.late:
            position, metadata, _ = self.late.popleft()
            yield position, self._lost(metadata, *self._image({}), why)
        if not self.drain_unread and not self.exhausted:
            self.exhausted = True
            raise DeadlineExceeded(f"{why}; the rest of the input was not read")
        for position, item in self.source:
            yield position, self._lost(item.get("metadata"), *self._image(item), why)
        self.exhausted = True

    @staticmethod
    def _lost(metadata: Any, language: str, image: str | None, why: str) -> JudgeResult:
        return unfinished_judgement(language, image, metadata, why or "lost")


def _with(result: JudgeResult, metadata: Any) -> JudgeResult:
    if result.metadata == metadata:
        return result
    return result.model_copy(update={"metadata": metadata})


def group_stream(submissions: Iterable[str | dict[str, Any]], testset: str | None,
                 language: str, image: str | None, window: int,
                 options: dict[str, Any]) -> GroupStream:  # fmt: skip
    """The plan for ``iter_judge_batch``'s arguments; the shared options are checked here first
    (a pydantic ValidationError names the field, as ``judge`` does)."""
    if "chunk" in options:
        raise InvalidRequest("judge_batch's chunk= is now window=", field="chunk")
    shared = {"testset": testset, "language": language, "image": image, **options}
    shared = {name: value for name, value in shared.items() if value is not None}
    JudgeBatchSubmission(**shared, submissions=[{"code": "-"}])  # tests or testset, options
    items = ({"code": s} if isinstance(s, str) else dict(s) for s in submissions)
    return GroupStream(enumerate(items), shared, window,
                       drain_unread=isinstance(submissions, Sized))  # fmt: skip


def in_order(stream: Iterable[Yielded]) -> list[JudgeResult]:
    """``judge_batch``'s answer: every result, in the submissions' order."""
    by_position = dict(stream)
    if sorted(by_position) != list(range(len(by_position))):  # a defect, never a short list
        raise RuntimeError("judge_batch lost track of a submission")
    return [by_position[p] for p in range(len(by_position))]
