"""Client: the blocking Python client of the crucible-ray HTTP API."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from threading import Event
from typing import Any

import httpx

from crucible_ray.api.schemas import EvalSubmission
from crucible_ray.client import protocol
from crucible_ray.client.base import ClientBase
from crucible_ray.client.config import ClientConfig
from crucible_ray.client.judging import JudgeCalls
from crucible_ray.client.retry import Retrier
from crucible_ray.client.window import SubmitWindow
from crucible_ray.errors import CrucibleError, DeadlineExceeded
from crucible_ray.models import EvalResult, LanguageInfo
from crucible_ray.progress import progress_bar

LONG_POLL_S = 55.0  # below the server's 60 s limit and the client's request timeout
Item = EvalSubmission | dict[str, Any]


class Client(JudgeCalls, ClientBase):
    """``Client(url, token)``, or from ``CRUCIBLE_URL`` / ``CRUCIBLE_TOKEN``.

    Retries 429 and 503 (honouring ``Retry-After``), 5xx and connection failures, with
    exponential backoff and jitter, until the config's ``deadline_s``. Errors are the
    ``crucible_ray.errors`` hierarchy; results are the shared typed ``EvalResult``.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        config: ClientConfig | None = None,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        self._http = httpx.Client(
            **self._configure(url, token, config, options), transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # single evaluations ----------------------------------------------------------------------

    def evaluate(self, code: str, *, language: str = "python", image: str | None = None,
                 stdin: str = "", timeout_s: float | None = None,
                 metadata: dict[str, Any] | None = None) -> EvalResult:  # fmt: skip
        """Run one program and return its final result."""
        body = protocol.body(code, language, stdin, timeout_s, metadata, image)
        retrier = self._retrier()
        answer = self._send("POST", "/api/eval", retrier, body=body, params={"wait": "true"},
                            key=protocol.new_key())  # fmt: skip
        result = EvalResult.model_validate(answer.json())
        if answer.status_code == 200:
            return result
        return self._final(result.id, retrier)

    def submit(self, code: str, *, language: str = "python", image: str | None = None,
               stdin: str = "", timeout_s: float | None = None,
               metadata: dict[str, Any] | None = None) -> str:  # fmt: skip
        """Queue one program; returns its id at once."""
        body = protocol.body(code, language, stdin, timeout_s, metadata, image)
        answer = self._send("POST", "/api/eval", self._retrier(), body=body, key=protocol.new_key())
        return answer.json()["id"]

    def result(self, eval_id: str, *, wait: bool | float = False) -> EvalResult:
        """The evaluation's state; with ``wait`` (True: the deadline, or seconds), its final
        result if it finishes in time, else its state at the end of the wait."""
        if not wait:
            return EvalResult.model_validate(self._get(f"/api/eval/{eval_id}", self._retrier()))
        retrier = self._retrier(None if wait is True else float(wait))
        try:
            return self._final(eval_id, retrier)
        except DeadlineExceeded:
            return EvalResult.model_validate(self._get(f"/api/eval/{eval_id}", self._retrier()))

    def cancel(self, eval_id: str) -> EvalResult:
        """Cancel a queued or running evaluation; a finished one is returned unchanged."""
        answer = self._send("DELETE", f"/api/eval/{eval_id}", self._retrier(), accept=(409,))
        if answer.status_code == 409:
            return self.result(eval_id)
        return EvalResult.model_validate(answer.json())

    def health(self) -> dict[str, Any]:
        answer = self._send("GET", "/healthz", self._retrier(), accept=(503,))
        return answer.json()

    def languages(self) -> list[LanguageInfo]:
        """The server's languages: versions, compile commands and each stage's limits."""
        return [LanguageInfo.model_validate(item)
                for item in self._get("/api/languages", self._retrier())]  # fmt: skip

    # many evaluations ------------------------------------------------------------------------

    def submit_batch(self, items: Iterable[Item]) -> tuple[str, list[str]]:
        """Queue up to the server's batch limit as one request: ``(batch_id, ids)``."""
        body = {"items": [protocol.submission(i).model_dump(mode="json") for i in items]}
        answer = self._send(
            "POST", "/api/batch", self._retrier(), body=body, key=protocol.new_key()
        )
        data = answer.json()
        return data["batch_id"], data["ids"]

    def batch_results(self, batch_id: str) -> Iterator[EvalResult]:
        """Every result of a batch, in submission order, streamed."""
        for data in self._batch_lines(batch_id):
            yield EvalResult.model_validate(data)

    def _batch_lines(self, batch_id: str) -> Iterator[dict[str, Any]]:
        with self._http.stream("GET", f"/api/batch/{batch_id}/results") as answer:
            if answer.status_code >= 400:
                answer.read()
                raise protocol.error_for(answer)
            for line in answer.iter_lines():
                if line.strip():
                    yield json.loads(line)

    def evaluate_many(
        self,
        items: Iterable[Item],
        *,
        concurrency: int = 16,
        progress: bool | None = None,
        total: int | None = None,
    ) -> Iterator[EvalResult]:
        """Run many programs, at most ``concurrency`` at a time, yielding results as they
        finish (match them by the ``metadata`` you give each item: it is echoed back).

        Items are read lazily, so the input may be a generator of any length. They are sent
        in batches (one rate-limit charge each) that shrink when the server is nearly full.
        An evaluation it cannot follow to the end (its deadline passed) comes back as an
        ``error`` result naming its id; an invalid item raises InvalidRequest.
        """
        window = SubmitWindow((protocol.submission(item) for item in items), concurrency)
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        stop = Event()
        pool = ThreadPoolExecutor(concurrency, thread_name_prefix="crucible-wait")
        waiting: set[Future[EvalResult]] = set()
        try:
            with progress_bar(total, enabled=progress) as tally:
                while waiting or window.more:
                    chunk = window.next_chunk(len(waiting))
                    if chunk:
                        ids = self._submit_some(chunk, defer=bool(waiting))
                        waiting |= {pool.submit(self._follow, i, item.language, stop)
                                    for i, item in zip(ids, chunk, strict=False)}  # fmt: skip
                        window.submitted(chunk, len(ids), len(waiting))
                    if not waiting:
                        continue
                    done, waiting = wait(waiting, return_when=FIRST_COMPLETED)
                    for future in done:
                        result = future.result()
                        tally.advance(result.status.value)
                        yield result
        finally:
            stop.set()
            pool.shutdown(wait=False, cancel_futures=True)

    def _submit_some(self, chunk: list[EvalSubmission], defer: bool) -> list[str]:
        """Submit as large a prefix of ``chunk`` as the server admits; returns its ids. With
        ``defer``, a full server returns [] at once (results in flight will free room)."""
        retrier, size, key = self._retrier(), len(chunk), protocol.new_key()
        while True:
            try:  # the same items are resent with the same key: never admitted twice
                return self._post_batch(chunk[:size], f"{key}-{size}")
            except CrucibleError as error:
                smaller = protocol.retry_batch_with(error, size, defer)
                if smaller == 0:
                    return []
                if smaller is None:
                    time.sleep(retrier.pause(error))
                else:
                    size = smaller

    def _post_batch(self, chunk: list[EvalSubmission], key: str) -> list[str]:
        body = {"items": [item.model_dump(mode="json") for item in chunk]}
        return self._send("POST", "/api/batch", None, body=body, key=key).json()["ids"]

    # plumbing --------------------------------------------------------------------------------

    def _final(self, eval_id: str, retrier: Retrier, stop: Event | None = None) -> EvalResult:
        """Long-poll until the result is final; DeadlineExceeded when the retrier's time ends."""
        while True:
            remaining = retrier.remaining_s
            if remaining <= 0 or (stop is not None and stop.is_set()):
                raise DeadlineExceeded(f"evaluation {eval_id} not finished in time")
            params = {"wait": f"{min(LONG_POLL_S, max(remaining, 0.1)):.1f}"}
            data = self._get(f"/api/eval/{eval_id}", retrier, params=params)
            result = EvalResult.model_validate(data)
            if result.status.is_final:
                return result

    def _follow(self, eval_id: str, language: str, stop: Event) -> EvalResult:
        try:
            return self._final(eval_id, self._retrier(), stop)
        except CrucibleError as error:  # one lost wait must not lose the others
            return self._unfinished(eval_id, language, error)

    def _get(self, path: str, retrier: Retrier, **kwargs: Any) -> Any:
        return self._send("GET", path, retrier, **kwargs).json()

    def _send(
        self,
        method: str,
        path: str,
        retrier: Retrier | None,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        accept: tuple[int, ...] = (),
        key: str | None = None,
    ) -> httpx.Response:
        """One request, retried per ``retrier`` (None: not retried). A POST (it creates
        something) is resent only if it never reached the server, unless it carries an
        idempotency ``key``: the server then never runs it twice."""
        headers = protocol.key_headers(key)
        resendable = method != "POST" or key is not None  # a POST creates: only keyed ones
        while True:
            try:
                answer = self._http.request(method, path, json=body, params=params, headers=headers)
            except httpx.TransportError as exc:
                error = protocol.transport_error(exc, self.config.url, resendable)
            else:
                if answer.status_code < 400 or answer.status_code in accept:
                    return answer
                error = protocol.error_for(answer, has_token=self.config.token is not None)
            if retrier is None or (not resendable and protocol.final_for_submission(error)):
                raise error
            time.sleep(retrier.pause(error))
