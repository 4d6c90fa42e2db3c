"""ASGI lifespan: warm a worker process before its first request, and close its pools at the end.

Without it the first requests of every process pay for importing every view (the URLconf is
lazy), building the catalog snapshot and opening the database and Redis connections — seen as
latency spikes of tens of milliseconds right after a deploy, and in every benchmark's first second.

After warming, everything loaded so far is moved out of the garbage collector's sight
(gc.freeze): those objects live as long as the process, and the collector no longer walks them
on each of its passes over the old generation.
"""

import asyncio
import gc
import logging

log = logging.getLogger("gpuniq.lifespan")


async def warm() -> None:
    from django.urls import get_resolver

    from llm.catalog import asnapshot

    from . import shared_state
    from .db import pg_pool, uses_postgres

    from llm.tokens import o200k

    get_resolver().url_patterns  # noqa: B018 — imports every view now
    # the tokenizer the holds of OpenAI models count with: ~1 s to load, not on a first request
    steps = [("catalog", asnapshot), ("tokenizer", lambda: asyncio.to_thread(o200k))]
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


async def serve(receive, send) -> None:
    """The lifespan protocol: warm on startup, close this loop's resources on shutdown."""
    from .loops import close_loop_resources

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await warm()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close_loop_resources()
            await send({"type": "lifespan.shutdown.complete"})
            return
