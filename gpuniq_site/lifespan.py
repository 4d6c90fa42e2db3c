"""ASGI lifespan: warm a worker process before its first request, and close its pools at the end.

Without it the first requests of every process pay for importing every view (the URLconf is
lazy), building the catalog snapshot and opening the database and Redis connections — seen as
latency spikes of tens of milliseconds right after a deploy, and in every benchmark's first second.

After warming, everything loaded so far is moved out of the garbage collector's sight
(gc.freeze): those objects live as long as the process, and the collector no longer walks them
on each of its passes over the old generation. The young generation is then collected after
GPUNIQ_GC_YOUNG_THRESHOLD new objects instead of Python's 700: with hundreds of streams open, a
collection every few milliseconds walked all their live objects each time (at 500 one-second
streams, about 2.5% of a worker's time in pauses of up to 30 ms).
"""

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable

from django.conf import settings

log = logging.getLogger("gpuniq.lifespan")
SETTLE_SECONDS = 15.0  # after the drain period: how long cut requests get to record what they cost


class InFlight:
    """Requests this process is serving (gpuniq_site.asgi counts them)."""

    open = 0


in_flight = InFlight()


async def warm() -> None:
    from django.urls import get_resolver

    from llm.catalog import asnapshot

    from . import shared_state
    from .db import pg_pool, uses_postgres

    from llm.tokens import o200k

    get_resolver().url_patterns  # noqa: B018 — imports every view now
    # the tokenizer the holds of OpenAI models count with: ~1 s to load, not on a first request
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("catalog", asnapshot),
        ("tokenizer", lambda: asyncio.to_thread(o200k)),
    ]
    if uses_postgres():
        steps.append(("database pool", pg_pool))
    client = shared_state.async_redis()
    if client is not None:
        steps.append(("redis", client.ping))
    for name, step in steps:
        try:
            await step()
        except Exception as exc:  # a service that is down now is handled per request, as documented
            log.warning("warming %s failed: %s", name, exc)
    gc.collect()
    gc.freeze()
    young_gc_threshold(settings.GPUNIQ_GC_YOUNG_THRESHOLD)


def young_gc_threshold(objects: int) -> None:
    """Collect the young generation after `objects` new container objects (0: Python's default);
    the older generations' thresholds stay as they are."""
    if objects > 0:
        gc.set_threshold(objects, *gc.get_threshold()[1:])


async def settle_in_flight(limit: float = SETTLE_SECONDS) -> int:
    """Wait until no request is in flight, at most `limit` seconds; answer how many still are.

    uvicorn shuts down in this order: stop accepting, let requests run for the drain period
    (--timeout-graceful-shutdown, GPUNIQ_DRAIN_SECONDS under gpuniq-web), cancel the rest, then send
    lifespan.shutdown. A cancelled stream settles its hold on its way out (llm.streaming bills what
    was produced); closing the pools before that would leave the hold open until the stale-hold
    task, and the user unbilled."""
    ends = time.monotonic() + limit
    while in_flight.open and time.monotonic() < ends:
        await asyncio.sleep(0.02)
    if in_flight.open:
        log.error("shutting down with %d request(s) still settling", in_flight.open)
    return in_flight.open


async def serve(receive, send) -> None:
    """The lifespan protocol: warm on startup; on shutdown let requests in flight settle, then close
    this loop's resources."""
    from .loops import close_loop_resources

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await warm()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await settle_in_flight()
            await close_loop_resources()
            await send({"type": "lifespan.shutdown.complete"})
            return
