"""AsyncClient: the asyncio twin of Client (same methods, same errors, same retries)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx

from crucible_ray.api.schemas import EvalSubmission
from crucible_ray.client import protocol
from crucible_ray.client.aio_judging import AsyncJudgeCalls
from crucible_ray.client.base import ClientBase
from crucible_ray.client.config import ClientConfig
from crucible_ray.client.retry import Retrier
from crucible_ray.client.sync import LONG_POLL_S, Item
from crucible_ray.client.window import SubmitWindow
from crucible_ray.errors import CrucibleError, DeadlineExceeded
from crucible_ray.models import EvalResult, LanguageInfo
from crucible_ray.progress import progress_bar


class AsyncClient(AsyncJudgeCalls, ClientBase):
    """``async with AsyncClient(url, token) as client: await client.evaluate("print(1)")``"""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        config: ClientConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        self._http = httpx.AsyncClient(
            **self._configure(url, token, config, options), transport=transport
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def evaluate(self, code: str, *, language: str = "python", image: str | None = None,
                       stdin: str = "", timeout_s: float | None = None,
                       metadata: dict[str, Any] | None = None) -> EvalResult:  # fmt: skip
        body = protocol.body(code, language, stdin, timeout_s, metadata, image)
        retrier = self._retrier()
        answer = await self._send("POST", "/api/eval", retrier, body=body,
                                  params={"wait": "true"},
                                  key=protocol.new_key())  # fmt: skip
        result = EvalResult.model_validate(answer.json())
        if answer.status_code == 200:
            return result
        return await self._final(result.id, retrier)

    async def submit(self, code: str, *, language: str = "python", image: str | None = None,
                     stdin: str = "", timeout_s: float | None = None,
                     metadata: dict[str, Any] | None = None) -> str:  # fmt: skip
        body = protocol.body(code, language, stdin, timeout_s, metadata, image)
        answer = await self._send("POST", "/api/eval", self._retrier(), body=body,
                                  key=protocol.new_key())  # fmt: skip
        return answer.json()["id"]

    async def result(self, eval_id: str, *, wait: bool | float = False) -> EvalResult:
        path = f"/api/eval/{eval_id}"
        if not wait:
            return EvalResult.model_validate(await self._get(path, self._retrier()))
        retrier = self._retrier(None if wait is True else float(wait))
        try:
            return await self._final(eval_id, retrier)
        except DeadlineExceeded:
            return EvalResult.model_validate(await self._get(path, self._retrier()))

    async def cancel(self, eval_id: str) -> EvalResult:
        answer = await self._send("DELETE", f"/api/eval/{eval_id}", self._retrier(),
                                  accept=(409,))  # fmt: skip
        if answer.status_code == 409:
            return await self.result(eval_id)
        return EvalResult.model_validate(answer.json())

    async def health(self) -> dict[str, Any]:
        return (await self._send("GET", "/healthz", self._retrier(), accept=(503,))).json()

    async def languages(self) -> list[LanguageInfo]:
        """The server's languages: versions, compile commands and each stage's limits."""
        items = await self._get("/api/languages", self._retrier())
        return [LanguageInfo.model_validate(item) for item in items]

    async def submit_batch(self, items: Iterable[Item]) -> tuple[str, list[str]]:
        body = {"items": [protocol.submission(i).model_dump(mode="json") for i in items]}
        answer = await self._send("POST", "/api/batch", self._retrier(), body=body,
                                  key=protocol.new_key())  # fmt: skip
        data = answer.json()
        return data["batch_id"], data["ids"]

    async def evaluate_many(
        self,
        items: Iterable[Item],
        *,
        concurrency: int = 16,
        progress: bool | None = None,
        total: int | None = None,
    ) -> AsyncIterator[EvalResult]:
        """As ``Client.evaluate_many``: lazily read, batched, results as they finish."""
        window = SubmitWindow((protocol.submission(item) for item in items), concurrency)
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        waiting: set[asyncio.Task[EvalResult]] = set()
        try:
            with progress_bar(total, enabled=progress) as tally:
                while waiting or window.more:
                    chunk = window.next_chunk(len(waiting))
                    if chunk:
                        ids = await self._submit_some(chunk, defer=bool(waiting))
                        waiting |= {asyncio.create_task(self._follow(i, item.language))
                                    for i, item in zip(ids, chunk, strict=False)}  # fmt: skip
                        window.submitted(chunk, len(ids), len(waiting))
                    if not waiting:
                        continue
                    done, waiting = await asyncio.wait(waiting, return_when="FIRST_COMPLETED")
                    for task in done:
                        result = task.result()
                        tally.advance(result.status.value)
                        yield result
        finally:
            for task in waiting:
                task.cancel()

    async def _submit_some(self, chunk: list[EvalSubmission], defer: bool) -> list[str]:
        retrier, size, key = self._retrier(), len(chunk), protocol.new_key()
        while True:
            body = {"items": [item.model_dump(mode="json") for item in chunk[:size]]}
            try:  # the same items are resent with the same key: never admitted twice
                answer = await self._send("POST", "/api/batch", None, body=body,
                                          key=f"{key}-{size}")  # fmt: skip
                return answer.json()["ids"]
            except CrucibleError as error:
                smaller = protocol.retry_batch_with(error, size, defer)
                if smaller == 0:
                    return []
                if smaller is None:
                    await asyncio.sleep(retrier.pause(error))
                else:
                    size = smaller

    async def _follow(self, eval_id: str, language: str) -> EvalResult:
        try:
            return await self._final(eval_id, self._retrier())
        except CrucibleError as error:  # one lost wait must not lose the others
            return self._unfinished(eval_id, language, error)

    async def _final(self, eval_id: str, retrier: Retrier) -> EvalResult:
        while True:
            remaining = retrier.remaining_s
            if remaining <= 0:
                raise DeadlineExceeded(f"evaluation {eval_id} not finished in time")
            params = {"wait": f"{min(LONG_POLL_S, max(remaining, 0.1)):.1f}"}
            data = await self._get(f"/api/eval/{eval_id}", retrier, params=params)
            result = EvalResult.model_validate(data)
            if result.status.is_final:
                return result

    async def _get(self, path: str, retrier: Retrier, **kwargs: Any) -> Any:
        return (await self._send("GET", path, retrier, **kwargs)).json()

    async def _send(
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
        headers = protocol.key_headers(key)
        resendable = method != "POST" or key is not None  # a POST creates: only keyed ones
        while True:
            try:
                answer = await self._http.request(
                    method, path, json=body, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                error = protocol.transport_error(exc, self.config.url, resendable)
            else:
                if answer.status_code < 400 or answer.status_code in accept:
                    return answer
                error = protocol.error_for(answer, has_token=self.config.token is not None)
            if retrier is None or (not resendable and protocol.final_for_submission(error)):
                raise error
            await asyncio.sleep(retrier.pause(error))
