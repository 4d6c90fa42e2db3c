"""Admission for the async hot path: API key → Principal and the per-key rate limit, in ONE
Redis round trip when the key's principal is cached (the common case), on the lean pipelined
client (gpuniq_site.redis_pipe). A cache miss falls back to loading the principal
(keys.aauthenticate) and a separate rate-limit call."""

import hashlib
import json
import time

import redis

from gpuniq_site import redis_pipe, shared_state
from gpuniq_site.errors import ApiError
from gpuniq_site.ids import unique_hex

from . import ratelimit
from .keys import (
    LAST_USED_EVERY_SECONDS,
    Principal,
    principal_cache_key,
    key_hash_of,
    principal_from,
    aauthenticate,
    touch_once,
)

# KEYS[1] = the principal's cache key; ARGV = window ms, unique member.
# Returns {0} on a cache miss, {2, error code} for a cached refusal (keys._refuse), else
# {1, principal json, allowed, remaining, reset ms}.
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
return {1, raw, allowed, limit - count, tonumber(oldest[2]) + window - now}
"""
_SHA = hashlib.sha1(_ADMIT_LUA.encode()).hexdigest()


async def _admit_cached(key_hash: str):
    args = (1, principal_cache_key(key_hash), ratelimit.WINDOW_MS, unique_hex(64))
    pipe = redis_pipe.pipe()
    if pipe is not None:
        call = pipe.call
    else:
        client = shared_state.async_redis()
        assert client is not None  # admit() comes here only with REDIS_URL set
        call = client.execute_command
    try:
        return await call("EVALSHA", _SHA, *args)
    except redis.ResponseError as exc:
        if "NOSCRIPT" not in str(exc):
            raise
        return await call("EVAL", _ADMIT_LUA, *args)


async def admit(raw_key: str | None) -> tuple[Principal, ratelimit.Decision]:
    """Authenticate and count the request against the key's limit (raises ApiError)."""
    key_hash = key_hash_of(raw_key)
    if shared_state.redis_url() and not shared_state.redis_down():
        try:
            reply = await _admit_cached(key_hash)
            shared_state.mark_redis_up()
        except Exception as exc:  # Redis trouble: the slow path degrades as documented
            if isinstance(exc, (redis.RedisError, OSError)):
                shared_state.mark_redis_down(exc)
            reply = [0]
        if reply[0] == 2:
            raise ApiError(reply[1].decode() if isinstance(reply[1], bytes) else reply[1])
        if reply[0] == 1:
            data = json.loads(reply[1])
            if time.time() - data["last_used"] > LAST_USED_EVERY_SECONDS:
                await touch_once(data["key_id"], key_hash, data)
            decision = ratelimit.Decision(
                bool(reply[2]), int(data["rpm"]), max(int(reply[3]), 0), int(reply[4])
            )
            return principal_from(data), decision
    principal = await aauthenticate(raw_key)
    return principal, await ratelimit.ahit(principal.key_id, principal.rpm)
