"""Long answers streamed a page at a time: the caller's export (a JSON array) and a batch's
results (JSON Lines). The store reads each page in a short session of its own, so neither the
whole answer in memory nor a database connection is held while a slow client reads."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterable, Iterator

from crucible_ray.models import EvalResult

CHUNK = 200  # results per read from the store, and per chunk written


async def first_chunk(results: Iterable[EvalResult]) -> tuple[list[EvalResult], Iterator]:
    """Read the first chunk before answering: a store that is down is a 503, not a 200 cut
    short."""
    iterator = iter(results)
    return await _next(iterator), iterator


async def _next(iterator: Iterator[EvalResult]) -> list[EvalResult]:
    return await asyncio.to_thread(lambda: list(itertools.islice(iterator, CHUNK)))


async def _chunks(first: list[EvalResult], rest: Iterator[EvalResult]) -> AsyncIterator[list]:
    chunk = first
    while chunk:
        yield chunk
        chunk = await _next(rest)


def _json(result: EvalResult) -> str:
    return json.dumps(result.model_dump(mode="json"))


async def json_lines(first: list[EvalResult], rest: Iterator[EvalResult]) -> AsyncIterator[bytes]:
    async for chunk in _chunks(first, rest):
        yield "".join(_json(r) + "\n" for r in chunk).encode()


async def json_array(first: list[EvalResult], rest: Iterator[EvalResult]) -> AsyncIterator[bytes]:
    yield b"["
    separator = ""
    async for chunk in _chunks(first, rest):
        yield (separator + ",".join(_json(r) for r in chunk)).encode()
        separator = ","
    yield b"]"
