"""Static analysis for the API in a process of its own. Parsing is CPU-bound and holds the
GIL: in a thread of the replica it would still slow every request the replica serves (a
batch of large sources stalled it for seconds), in another process it costs the replica
nothing. Bounded in size (``analysis.MAX_REQUEST_BYTES``) and in time."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from crucible_ray.analysis import warnings_for_all

ANALYSIS_TIMEOUT_S = 5.0
TIMED_OUT = "not analysed: timed out"
log = logging.getLogger(__name__)
_pool: ProcessPoolExecutor | None = None


def _executor() -> ProcessPoolExecutor:
    global _pool
    if _pool is None:  # spawn: forking a process with Ray's threads is unsafe
        _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    return _pool


def warm() -> None:
    """Start the process now (it imports the replica's main module: seconds under load), so
    that the first submission is analysed too."""
    _executor().submit(warnings_for_all, [])


async def analyse(sources: list[tuple[str, str]]) -> list[list[str]]:
    """Advisory warnings for each (language, code); never fails a submission."""
    global _pool
    if not any(language == "python" for language, _ in sources):
        return [[] for _ in sources]
    loop = asyncio.get_running_loop()
    try:
        work = loop.run_in_executor(_executor(), warnings_for_all, sources)
        return await asyncio.wait_for(work, ANALYSIS_TIMEOUT_S)
    except (TimeoutError, BrokenProcessPool) as exc:
        if isinstance(exc, BrokenProcessPool):
            _pool = None  # a new process next time
        log.warning("static analysis skipped: %s", type(exc).__name__)
        return [[TIMED_OUT] if language == "python" else [] for language, _ in sources]
