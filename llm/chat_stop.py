"""Stop a web-chat reply from the page. The Stop button asks for it by request id; the reply's
stream sees the flag between events, ends the upstream call through llm.streaming's disconnect
path (billing what was produced, closing the hold at once) and keeps the turn, marked stopped.
The flag lives in the shared cache, so any app process may take the request."""

import time

from django.core.cache import cache

STOP_SECONDS = 600
CHECK_EVERY = 0.2  # seconds between cache reads while a reply streams


def _key(user_id: int, request_id: str) -> str:
    return f"gpuniq:chatstop:{user_id}:{request_id}"


async def request_stop(user_id: int, request_id: str) -> None:
    """Scoped to the user: nobody can stop another user's reply."""
    await cache.aset(_key(user_id, request_id[:64]), 1, STOP_SECONDS)


def checker(user_id: int, request_id: str):
    """An async () -> bool for the stream: has a stop been asked for? (reads at most 5 times a second)"""
    key, last = _key(user_id, request_id), [0.0]

    async def stop_requested() -> bool:
        now = time.monotonic()
        if now - last[0] < CHECK_EVERY:
            return False
        last[0] = now
        return bool(await cache.aget(key))

    return stop_requested
