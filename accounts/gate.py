"""Admission for the async hot path: API key → Principal and the per-key rate limit, in ONE
Redis round trip when the key's principal is cached (the common case), on the lean pipelined
client (gpuniq_site.redis_pipe). A cache miss loads the principal (once per key and process) and
runs the script again; without Redis, the principal is loaded (keys.aauthenticate) and the rate
limit counted in this process."""

import asyncio
import contextvars
import functools
import hashlib
import json
import logging
import time
from dataclasses import replace
from typing import Any

import redis
from django.conf import settings

from gpuniq_site import redis_pipe, shared_state
from gpuniq_site.errors import ApiError
from gpuniq_site.ids import unique_hex

from . import ratelimit
from .models import KEY_PREFIX, hash_key
from .keys import (
    LAST_USED_EVERY_SECONDS,
    Principal,
    principal_cache_key,
    key_hash_of,
    principal_from,
    aauthenticate,
    touch_once,
    reload_principal,
)

# KEYS[1] = the principal's cache key; ARGV = window ms, unique member.
# Returns {0} on a cache miss, {2, error code} for a cached refusal (keys._refuse), else
# {1, principal json, allowed, remaining, reset ms, ms the cached principal has left}.
_ADMIT_LUA = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {0} end
local p = cjson.decode(raw)
if p['refused'] then return {2, p['refused']} end
local key = 'gpuniq:rl:' .. tostring(p['key_id'])
local limit = tonumber(p['rpm'])
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local allowed = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, window)
  allowed = 1
  count = count + 1
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {1, raw, allowed, limit - count, tonumber(oldest[2]) + window - now, redis.call('PTTL', KEYS[1])}
"""
_SHA = hashlib.sha1(_ADMIT_LUA.encode()).hexdigest()
log = logging.getLogger("gpuniq.keys")


def _admit_args(key_hash: str) -> tuple:
    return (1, principal_cache_key(key_hash), ratelimit.WINDOW_MS, unique_hex(64))


async def _admit_cached(key_hash: str, sent: redis_pipe.Sent | None = None):
    """The admission script's reply; `sent`: the script already on its way (begin())."""
    pipe = redis_pipe.pipe()
    if pipe is not None:
        call = pipe.call
    else:
        client = shared_state.async_redis()
        assert client is not None  # admit() comes here only with REDIS_URL set
        call = client.execute_command
    try:
        return await (sent.reply() if sent is not None else call("EVALSHA", _SHA, *_admit_args(key_hash)))
    except redis.ResponseError as exc:
        if not redis_pipe.is_noscript(exc):
            raise
        return await call("EVAL", _ADMIT_LUA, *_admit_args(key_hash))


async def admit(
    raw_key: str | None, sent: redis_pipe.Sent | None = None
) -> tuple[Principal, ratelimit.Decision]:
    """Authenticate and count the request against the key's limit (raises ApiError). `sent`: the
    admission script already on its way for this key (begin())."""
    key_hash = key_hash_of(raw_key)
    if sent is not None or (shared_state.redis_url() and not shared_state.redis_down()):
        reply = await _script(key_hash, sent)
        if reply is not None and reply[0] == 0:
            # In no cache (a key's first request in a while, a flushed Redis): one load per key and
            # process, shared by a burst, caches it; then the script again, which counts the limit.
            # Each request stays one call on the pipelined client, not a GET and a rate-limit call.
            _recent.pop(key_hash, None)
            await reload_principal(key_hash)  # raises for an unknown or revoked key (and caches that)
            reply = await _script(key_hash, None)
        if reply is not None and reply[0] != 0:
            return await _answered(key_hash, reply)
    _recent.pop(key_hash, None)
    principal = await aauthenticate(raw_key)
    return principal, await ratelimit.ahit(principal.key_id, principal.rpm)


async def _script(key_hash: str, sent: redis_pipe.Sent | None) -> list | None:
    """The admission script's reply, or None when Redis is in trouble (the slow path degrades as
    documented)."""
    try:
        reply = await _admit_cached(key_hash, sent)
    except Exception as exc:
        if isinstance(exc, (redis.RedisError, OSError)):
            shared_state.mark_redis_down(exc)
        return None
    shared_state.mark_redis_up()
    return reply


async def _answered(key_hash: str, reply: list) -> tuple[Principal, ratelimit.Decision]:
    """A cached refusal (raised) or the principal and its rate-limit decision."""
    if reply[0] == 2:
        _recent.pop(key_hash, None)
        raise ApiError(reply[1].decode() if isinstance(reply[1], bytes) else reply[1])
    data = json.loads(reply[1])
    if time.time() - data["last_used"] > LAST_USED_EVERY_SECONDS:
        await touch_once(data["key_id"], key_hash, data)
    decision = ratelimit.Decision(bool(reply[2]), int(data["rpm"]), max(int(reply[3]), 0), int(reply[4]))
    principal = principal_from(data)
    _remember(key_hash, principal, decision)
    _refresh_ahead(key_hash, int(reply[5]) if len(reply) > 5 else -1)
    return principal, decision


# --- the cached principal, reloaded before it expires ---------------------------------------
# A key in use would otherwise find its principal gone once a minute: every request of that moment,
# in every process, takes the slow path (the database load, the rate limit on its own). With a
# quarter of its lifetime left, the first request that sees it starts one reload (per process)
# and goes on with the cached principal.

_reloads: dict[str, asyncio.Task[Any]] = {}  # key hash -> its reload in flight


def _refresh_ahead(key_hash: str, ms_left: int) -> None:
    if ms_left < 0 or ms_left > settings.GPUNIQ_KEY_CACHE_SECONDS * 250 or key_hash in _reloads:
        return  # no expiry, plenty of time left, or this key's reload is already on its way
    task = _reloads[key_hash] = asyncio.ensure_future(reload_principal(key_hash))
    task.add_done_callback(functools.partial(_reloaded, key_hash))


def _reloaded(key_hash: str, task: asyncio.Task[Any]) -> None:
    _reloads.pop(key_hash, None)
    if not task.cancelled() and task.exception() is not None:  # the entry expires; the next miss loads it
        log.warning("reloading a cached principal failed: %s", task.exception())


# --- admission overlapped with the hold ---------------------------------------------------------
# A request of a key this process admitted moments ago, with room left in its rate limit, need not
# wait for Redis before its hold: the hold is sent with the principal admitted last time, and the
# admission's answer is awaited before anything reaches a vendor (Early.admitted). One round trip
# and two turns of the event loop fewer before a stream's first byte.

RECENT_SECONDS = 30.0
_RECENT_MAX = 10_000
_recent: dict[str, tuple[Principal, float]] = {}


def _remember(key_hash: str, principal: Principal, decision: ratelimit.Decision) -> None:
    if not (decision.allowed and decision.remaining > 0):
        _recent.pop(key_hash, None)  # at its limit: the next requests wait for their answer
        return
    if len(_recent) >= _RECENT_MAX and key_hash not in _recent:
        _recent.clear()
    _recent[key_hash] = (principal, time.monotonic())


class Stale(Exception):
    """The key's principal changed since this process last admitted it: what the view did with the
    old one is dropped (nothing reached a vendor or the ledger) and the view runs again."""


def _facts(principal: Principal) -> Principal:
    return replace(principal, last_used=0.0)


class Early:
    """An admission on its way, and the principal the key had when this process last admitted it."""

    def __init__(self, raw_key: str, principal: Principal, sent: redis_pipe.Sent):
        self.raw_key, self.principal, self.sent = raw_key, principal, sent
        self.answer: tuple[Principal, ratelimit.Decision] | None = None
        self.refusal: ApiError | None = None

    async def confirm(self) -> tuple[Principal, ratelimit.Decision]:
        """The admission's answer (raises its ApiError); awaited once, remembered for later calls
        in the same request."""
        if self.refusal is not None:
            raise self.refusal
        if self.answer is None:
            try:
                self.answer = await admit(self.raw_key, self.sent)
            except ApiError as refusal:
                self.refusal = refusal
                raise
        return self.answer

    async def admitted(self) -> Principal:
        """The principal, once the admission let the request in with the facts it was served with."""
        principal, decision = await self.confirm()
        decision.raise_if_denied()
        if _facts(principal) != _facts(self.principal):
            raise Stale()
        return principal


pending: contextvars.ContextVar[Early | None] = contextvars.ContextVar("pending_admission", default=None)


def begin(raw_key: str | None) -> Early | None:
    """Send this request's admission and return it unanswered, when the key was admitted here
    moments ago with room in its limit (and Redis answers on the lean pipe); else None."""
    if raw_key is None or not raw_key.startswith(KEY_PREFIX) or shared_state.redis_down():
        return None
    key_hash = hash_key(raw_key)
    recent = _recent.get(key_hash)
    if recent is None or time.monotonic() - recent[1] > RECENT_SECONDS:
        return None
    pipe = redis_pipe.pipe()
    sent = pipe.send_now("EVALSHA", _SHA, *_admit_args(key_hash)) if pipe is not None else None
    if sent is None:
        return None
    return Early(raw_key, recent[0], sent)


async def confirm_pending() -> None:
    """Before a request's first side effect (a hold, a usage row): if its admission is still on
    its way, wait for it; raises what admission refuses with, or Stale."""
    early = pending.get()
    if early is not None:
        await early.admitted()
