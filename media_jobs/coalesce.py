"""Polls of one job that arrive within GPUNIQ_MEDIA_COALESCE_SECONDS of each other share one
rendered payload: in-process single flight for concurrent polls, plus a short cache (Redis
when configured, so every web process shares it; process memory otherwise). With Redis, a
SET NX lock makes concurrent polls in other processes wait for the first one's result.
The worker deletes the cached entry when the job changes state (seen at once with Redis; in the
embedded default a poll may show the previous state for up to the window)."""

import asyncio

from django.conf import settings

from gpuniq_site import shared_state

_inflight: dict[str, asyncio.Future] = {}
LOCK_SECONDS = 5
WAIT_FOR_PEER = 2.0


async def coalesced(key: str, owner: int, compute):
    """(value, coalesced?) for `key`, computing it with `compute()` only when nobody just did.

    Entries remember their owner: another user's poll never reads them (it computes, and 404s).
    """
    cached = await shared_state.acache_get_json(key)
    if cached and cached.get("owner") == owner:
        return cached["value"], True
    flight_key = f"{key}:{owner}"
    running = _inflight.get(flight_key)
    if running is not None:
        return await asyncio.shield(running), True
    future = asyncio.get_running_loop().create_future()
    _inflight[flight_key] = future
    try:
        value, shared = await _compute_once(key, owner, compute)
        future.set_result(value)
        return value, shared
    except BaseException as exc:
        future.set_exception(exc)
        future.exception()  # mark retrieved: nobody may be waiting
        raise
    finally:
        _inflight.pop(flight_key, None)


async def _compute_once(key: str, owner: int, compute):
    client = shared_state.async_redis()
    locked = False
    if client is not None:
        try:
            locked = bool(await client.set(f"{key}:lock", "1", nx=True, ex=LOCK_SECONDS))
        except Exception:
            locked = True  # Redis trouble: just compute
        if not locked:
            peer = await _wait_for_peer(client, key, owner)
            if peer is not None:
                return peer, True
    try:
        value = await compute()
        await shared_state.acache_set_json(
            key, {"owner": owner, "value": value}, settings.GPUNIQ_MEDIA_COALESCE_SECONDS
        )
        return value, False
    finally:
        if client is not None and locked:
            try:
                await client.delete(f"{key}:lock")
            except Exception:
                pass


async def _wait_for_peer(client, key: str, owner: int):
    """The value another process is computing, once it lands in the cache (None: compute it here)."""
    loop = asyncio.get_running_loop()
    until = loop.time() + WAIT_FOR_PEER
    while loop.time() < until:
        await asyncio.sleep(0.025)
        cached = await shared_state.acache_get_json(key)
        if cached and cached.get("owner") == owner:
            return cached["value"]
        try:
            if not await client.exists(f"{key}:lock"):
                return None  # the peer finished without a result for us (an error, another owner)
        except Exception:
            return None
    return None
