"""Resources that belong to one event loop (the async database pool, the Redis client, HTTP
connection pools), and running a coroutine in a loop of its own.

uvicorn runs one loop per process for its whole life. Celery workers run each job with
`run_isolated`, a fresh loop per job (several at once in the threads pool): every module keeps its
resources per loop, registers a closer here, and `run_isolated` closes them all when the job's loop
ends — otherwise each job would leave database and Redis connections behind.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("gpuniq.loops")
_closers: list[Callable[[], Awaitable[None]]] = []


def on_loop_close(closer: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """Register `await closer()` to run in a loop that is about to end (decorator-friendly)."""
    _closers.append(closer)
    return closer


async def close_loop_resources() -> None:
    for closer in _closers:
        try:
            await closer()
        except Exception:
            log.exception("closing %s failed", getattr(closer, "__qualname__", closer))


def run_isolated(coro_factory: Callable[[], Awaitable[T]], /) -> T:
    """asyncio.run(coro_factory()) in a new loop, closing the loop's resources afterwards.

    The calling thread first gives back its database connection: a job waits minutes on a
    vendor, and a thread sitting on a pooled connection meanwhile starves the job's own database
    calls (gpuniq_site.db runs them on other threads, from the same pool)."""
    _release_thread_connection()

    async def main() -> T:
        try:
            return await coro_factory()
        finally:
            await close_loop_resources()

    return asyncio.run(main())


def _release_thread_connection() -> None:
    from django.db import connection

    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        connection.close()  # pooled: back to the pool; otherwise reopened on the next query
