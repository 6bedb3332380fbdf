"""BatchJob: stream a batch through the cluster's dispatcher (no HTTP), keeping a bounded
window of evaluations in flight and writing each result as soon as it is final."""

from __future__ import annotations

import collections
import getpass
import hashlib
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import RayError

from crucible_ray.batch.items import InputLine, Item
from crucible_ray.batch.results import ResultsFile, key_digest
from crucible_ray.client.retry import Retrier
from crucible_ray.errors import InvalidRequest, NoExecutors, Overloaded
from crucible_ray.execution.client import get_dispatcher, raise_for_refusal
from crucible_ray.models import EvalStatus
from crucible_ray.progress import Tally

WAIT_S = 30.0  # one dispatcher.wait call; re-issued until the result is final
INVALID_KEPT = 100  # line errors listed in the summary (all are reported as they happen)


@dataclass
class BatchSummary:
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    resumed: int = 0  # ids already in OUTPUT, skipped
    invalid: int = 0  # malformed lines, duplicate ids, requests the policy refuses
    invalid_lines: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def evaluated(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        rate = self.evaluated / self.elapsed_s if self.elapsed_s else 0.0
        return {"evaluated": self.evaluated, "by_status": dict(self.counts),
                "resumed": self.resumed, "invalid": self.invalid,
                "invalid_lines": self.invalid_lines, "elapsed_s": round(self.elapsed_s, 2),
                "per_second": round(rate, 2)}  # fmt: skip


@dataclass
class Pending:
    number: int
    item: Item
    eval_id: str


class BatchJob:
    """``window`` evaluations at most in flight (default: the dispatcher's admission limit).
    Waits out overload and short outages; after ``unavailable_timeout_s`` of refusals the job
    stops with DeadlineExceeded (everything written so far stays; resume later)."""

    def __init__(
        self,
        results: ResultsFile,
        *,
        window: int | None = None,
        unavailable_timeout_s: float = 300.0,
        on_invalid: Callable[[int, str], None] = lambda number, message: None,
        dispatcher: Any = None,
    ) -> None:
        self.results = results
        self.window = window or self._connect(dispatcher)
        self.unavailable_timeout_s = unavailable_timeout_s
        self.on_invalid = on_invalid
        self.summary = BatchSummary()
        self._inflight: dict[Any, Pending] = {}
        self._resubmit: collections.deque[Pending] = collections.deque()
        self._tally = Tally(None, None)
        self._context = {"user": f"batch:{getpass.getuser()}", "client": socket.gethostname()}

    def _connect(self, dispatcher: Any) -> int:
        """Find the plane's entry point; returns its admission limit (the default window)."""
        self.dispatcher = dispatcher or get_dispatcher()
        return ray.get(self.dispatcher.stats.remote())["admission_limit"]

    def run(self, lines: Iterable[InputLine], tally: Tally) -> BatchSummary:
        started = time.monotonic()
        self._tally = tally
        done = set(self.results.done())
        seen: set[bytes] = set()
        try:
            for line in lines:
                if line.item is None:
                    self._invalid(line.number, line.error or "invalid")
                    continue
                digest = key_digest(line.item.key)
                if digest in seen:
                    self._invalid(line.number, f"duplicate id {line.item.id!r}")
                    continue
                seen.add(digest)
                if digest in done:
                    self.summary.resumed += 1
                    tally.advance("resumed")
                    continue
                self._make_room()
                self._submit(Pending(line.number, line.item, self._eval_id(line.item)))
            while self._inflight or self._resubmit:
                self._make_room()
                self._collect(timeout_s=WAIT_S + 5)
        finally:
            self.summary.elapsed_s = time.monotonic() - started
        return self.summary

    # pipeline --------------------------------------------------------------------------------

    def _eval_id(self, item: Item) -> str:
        seed = f"{self.results.job_token}\0{item.key}".encode()
        return "batch-" + hashlib.blake2b(seed, digest_size=16).hexdigest()

    def _make_room(self) -> None:
        """Resubmit what must run again, then wait until the window has room."""
        while True:
            while self._resubmit and len(self._inflight) < self.window:
                self._submit(self._resubmit.popleft())
            if len(self._inflight) < self.window:
                return
            self._collect(timeout_s=WAIT_S + 5)

    def _submit(self, pending: Pending) -> None:
        """Admit one evaluation (idempotent by id), waiting out overload: while it waits,
        results keep being collected."""
        retrier = Retrier(self.unavailable_timeout_s, base_s=0.2, max_s=5.0)
        while True:
            try:
                self._admit(pending)
                break
            except InvalidRequest as exc:
                field = f"{exc.field}: " if exc.field else ""
                self._invalid(pending.number, f"{field}{exc}")
                return
            except (Overloaded, NoExecutors) as exc:
                self._collect(timeout_s=retrier.pause(exc))  # DeadlineExceeded when too long
            except (RayError, RuntimeError):  # the plane's entry point is down: find it again
                self._collect(timeout_s=retrier.pause(NoExecutors("the plane is unreachable")))
                self._reconnect()
        self._track(pending)

    def _admit(self, pending: Pending) -> None:
        """Raises the refusal's exception (``raise_for_refusal``) if it is not admitted."""
        item = pending.item
        context = {**self._context, "code_sha256": hashlib.sha256(item.code.encode()).hexdigest()}
        raise_for_refusal(ray.get(self.dispatcher.submit.remote(pending.eval_id, item.request(),
                                                                context, item.kind)))  # fmt: skip

    def _reconnect(self) -> None:
        self.dispatcher = get_dispatcher()

    def _track(self, pending: Pending) -> None:
        self._inflight[self.dispatcher.wait.remote(pending.eval_id, WAIT_S)] = pending

    def _collect(self, timeout_s: float) -> None:
        """Write every result that is final within ``timeout_s`` (or sleep that long)."""
        if not self._inflight:
            time.sleep(timeout_s)
            return
        refs = list(self._inflight)
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout_s)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        for ref in ready:
            pending = self._inflight.pop(ref)
            try:
                answer = ray.get(ref)
            except RayError:  # the dispatcher died with it: submit again (same id)
                self._resubmit.append(pending)
                continue
            if answer is None:  # a restarted dispatcher never saw it
                self._resubmit.append(pending)
            elif not EvalStatus(answer["status"]).is_final:
                self._inflight[self.dispatcher.wait.remote(pending.eval_id, WAIT_S)] = pending
            else:
                self._write(pending, answer)

    def _write(self, pending: Pending, answer: dict[str, Any]) -> None:
        result = {k: v for k, v in answer.items() if k != "id"}
        self.results.write({"id": pending.item.id, **result, "eval_id": answer["id"],
                            "metadata": pending.item.metadata})  # fmt: skip
        outcome = answer.get("verdict") or answer["status"]  # a judgement's verdict
        self.summary.counts[outcome] += 1
        self._tally.advance(outcome)

    def _invalid(self, number: int, message: str) -> None:
        self.summary.invalid += 1
        if len(self.summary.invalid_lines) < INVALID_KEPT:
            self.summary.invalid_lines.append({"line": number, "error": message})
        self.on_invalid(number, message)
        self._tally.advance("invalid")
