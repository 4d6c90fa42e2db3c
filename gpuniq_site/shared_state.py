"""State shared across processes: Redis when REDIS_URL is set, else process memory.

The hot path uses these instead of Django's cache framework, whose async methods hop
through a thread. Clients are created lazily, once per process (and per event loop).
"""

import asyncio
import json
import logging
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from django.conf import settings

from .loops import on_loop_close

log = logging.getLogger("gpuniq.shared_state")
_lock = threading.Lock()
_sync_client: redis.Redis | None = None
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)
Pool = TypeVar("Pool", redis.BlockingConnectionPool, aioredis.BlockingConnectionPool)


def redis_url() -> str:
    return settings.REDIS_URL


class _RedisHealth:
    """This process's view of Redis: after a connection failure it is "down" until a call
    succeeds again; meanwhile callers skip it and retry only every GPUNIQ_REDIS_RETRY_SECONDS,
    so an outage costs one failed attempt per interval, not a timeout per request."""

    def __init__(self) -> None:
        self.down = False
        self.retry_at = 0.0


_health = _RedisHealth()
# called with True when Redis goes down and False when it is back (gpuniq_site.metrics sets a gauge)
health_listeners: list[Callable[[bool], None]] = []


def _tell_listeners(down: bool) -> None:
    for listener in health_listeners:
        listener(down)


def redis_down() -> bool:
    """True while callers should not try Redis (it failed recently)."""
    return _health.down and time.monotonic() < _health.retry_at


def redis_degraded() -> bool:
    """True from a Redis failure until the next successful call."""
    return _health.down


def mark_redis_down(exc: BaseException) -> None:
    if not _health.down:
        log.warning("redis unreachable (%s): rate limits fall back to this process", exc)
    _health.down = True
    _health.retry_at = time.monotonic() + settings.GPUNIQ_REDIS_RETRY_SECONDS
    _tell_listeners(True)


def mark_redis_up() -> None:
    if _health.down:
        _health.down = False
        _tell_listeners(False)
        log.warning("redis reachable again")


def _pool(pool_class: type[Pool]) -> Pool:
    """At most GPUNIQ_REDIS_MAX_CONNECTIONS connections per client; a burst beyond that waits
    (up to 2 s) for a free one instead of opening more."""
    return pool_class.from_url(
        settings.REDIS_URL,
        max_connections=settings.GPUNIQ_REDIS_MAX_CONNECTIONS,
        timeout=2,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=30,
    )


def sync_redis() -> redis.Redis | None:
    global _sync_client
    if not settings.REDIS_URL:
        return None
    if _sync_client is None:
        with _lock:
            if _sync_client is None:
                _sync_client = redis.Redis(connection_pool=_pool(redis.BlockingConnectionPool))
    return _sync_client


def async_redis() -> aioredis.Redis | None:
    """The asyncio client of the running event loop (each loop has its own; see gpuniq_site.loops)."""
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = aioredis.Redis(connection_pool=_pool(aioredis.BlockingConnectionPool))
    return client


@on_loop_close
async def close_async_redis() -> None:
    client = _async_clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


class _LocalStore:
    """A tiny TTL dict for the embedded default (no Redis).

    Its entries are copies of database facts (principals). Every process on the machine shares one
    stamp file under GPUNIQ_VAR_DIR: a delete (revocation, a key's new limits) replaces it, and a
    process whose last seen stamp differs drops its whole dict before its next read. So a key
    revoked in another process (the dashboard's server, `manage.py shell`, a worker) is refused by
    every process at once; the cost is one stat() per read."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None

    def _stamp_path(self) -> Path:
        return settings.VAR_DIR / "local-cache.stamp"

    def _stamp(self) -> tuple[int, int] | None:
        try:
            found = os.stat(self._stamp_path())
        except OSError:
            return None
        return found.st_ino, found.st_mtime_ns

    def _fresh(self) -> None:
        stamp = self._stamp()
        if stamp != self._seen:
            with self._lock:
                self._data.clear()
                self._seen = stamp

    def _bump(self) -> None:
        path = self._stamp_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".stamp-")
        os.close(fd)
        os.replace(tmp, path)  # a new inode each time: no two bumps look alike

    def get(self, key: str) -> str | None:
        self._fresh()
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires < time.monotonic():
            self._data.pop(key, None)
            return None
        return value

    def set(self, key: str, value: str, ttl: float) -> None:
        with self._lock:
            if len(self._data) > 50_000:
                self._data.clear()
            self._data[key] = (time.monotonic() + ttl, value)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)
        self._bump()  # also with Redis here: a process without it may share this machine


local_store = _LocalStore()


# A cache read that fails is a miss and a cache write that fails is skipped: while Redis is down
# the gateway keeps serving from the database (rate limits follow GPUNIQ_RATE_LIMIT_FAIL_OPEN).
# Deletes (revocation) must not be lost silently, so they raise.


def cache_get_json(key: str) -> Any:
    client = sync_redis()
    if client is not None and redis_down():
        return None
    try:
        raw = client.get(key) if client else local_store.get(key)
    except redis.RedisError as exc:
        log.warning("cache read failed: %s", exc)
        mark_redis_down(exc)
        return None
    return json.loads(raw) if raw else None


def cache_set_json(key: str, value: Any, ttl: float) -> None:
    raw = json.dumps(value, separators=(",", ":"))
    client = sync_redis()
    if not client:
        local_store.set(key, raw, ttl)
        return
    if redis_down():
        return
    try:
        client.set(key, raw, ex=max(1, int(ttl)))
    except redis.RedisError as exc:
        log.warning("cache write failed: %s", exc)


def cache_delete(key: str) -> None:
    client = sync_redis()
    if client:
        client.delete(key)
    local_store.delete(key)


def cache_discard(key: str) -> None:
    """Drop a cached copy whose staleness is harmless for its short TTL (a job poll's shared
    read): unlike cache_delete, a Redis outage is logged, not raised."""
    try:
        cache_delete(key)
    except redis.RedisError as exc:
        log.warning("cache delete of %s failed: %s", key, exc)


async def acache_get_json(key: str) -> Any:
    client = async_redis()
    if client is not None and redis_down():
        return None
    try:
        raw = await client.get(key) if client else local_store.get(key)
    except redis.RedisError as exc:
        log.warning("cache read failed: %s", exc)
        mark_redis_down(exc)
        return None
    return json.loads(raw) if raw else None


async def acache_set_json(key: str, value: Any, ttl: float) -> None:
    raw = json.dumps(value, separators=(",", ":"))
    client = async_redis()
    if not client:
        local_store.set(key, raw, ttl)
        return
    if redis_down():
        return
    try:
        await client.set(key, raw, ex=max(1, int(ttl)))
    except redis.RedisError as exc:
        log.warning("cache write failed: %s", exc)
