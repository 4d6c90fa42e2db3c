"""Route cool-down: a route that fails FAILURES_TO_TRIP times within WINDOW seconds is skipped
for COOLDOWN seconds. Shared through Redis when configured, process memory otherwise."""

import logging
import time

from gpuniq_site import redis_pipe, shared_state

log = logging.getLogger("gpuniq.routes")

FAILURES_TO_TRIP = 3
WINDOW = 60
COOLDOWN = 30

_local_failures: dict[str, list[float]] = {}
_local_down: dict[str, float] = {}


def _down_key(route: str) -> str:
    return f"gpuniq:route:down:{route}"


def _fail_key(route: str) -> str:
    return f"gpuniq:route:fail:{route}"


async def cooling(routes: list[str]) -> set[str]:
    """The routes currently in cool-down: one MGET on the lean pipe (gpuniq_site.redis_pipe), which
    every request of a model with a fallback route sends; none while Redis is failing."""
    if len(routes) < 2:
        return set()  # a single route is always tried: failing fast helps nobody
    client = shared_state.async_redis()
    if client is None:
        now = time.monotonic()
        return {r for r in routes if _local_down.get(r, 0) > now}
    if shared_state.redis_down():
        return set()
    keys = [_down_key(r) for r in routes]
    pipe = redis_pipe.pipe()
    try:
        flags = await (pipe.call("MGET", *keys) if pipe is not None else client.mget(keys))
    except Exception as exc:
        log.warning("route health unavailable: %s", exc)
        return set()
    return {r for r, flag in zip(routes, flags) if flag}


async def record_failure(route: str) -> None:
    client = shared_state.async_redis()
    if client is None:
        now = time.monotonic()
        recent = [t for t in _local_failures.get(route, []) if t > now - WINDOW] + [now]
        _local_failures[route] = recent
        if len(recent) >= FAILURES_TO_TRIP:
            _local_down[route] = now + COOLDOWN
            _local_failures[route] = []
            log.warning("route %s cooling down for %ss", route, COOLDOWN)
        return
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.incr(_fail_key(route))
            pipe.expire(_fail_key(route), WINDOW)
            count, _ = await pipe.execute()
        if count >= FAILURES_TO_TRIP:
            await client.set(_down_key(route), "1", ex=COOLDOWN)
            await client.delete(_fail_key(route))
            log.warning("route %s cooling down for %ss", route, COOLDOWN)
    except Exception as exc:
        log.warning("route health unavailable: %s", exc)


def reset_local() -> None:
    _local_failures.clear()
    _local_down.clear()
