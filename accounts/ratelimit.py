"""Per-key sliding-window rate limit: one atomic Redis round trip, or process memory.

The window is a log of request times (a sorted set in Redis), so the limit holds over any
60-second span, not per calendar minute. Redis' own clock is used so every process agrees.
"""

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from django.conf import settings

from gpuniq_site import shared_state
from gpuniq_site.errors import ApiError
from gpuniq_site.ids import unique_hex

log = logging.getLogger("gpuniq.ratelimit")
WINDOW_MS = 60_000

# KEYS[1] = window key; ARGV = window_ms, limit, unique member. Returns {allowed, remaining, reset_ms}.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, limit - count - 1, tonumber(oldest[2]) + window - now}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_ms: int

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{max(self.reset_ms, 0) / 1000:.3f}s",
        }

    def raise_if_denied(self) -> None:
        if self.allowed:
            return
        retry_after = max(1, -(-self.reset_ms // 1000))
        raise ApiError("rate_limit_per_key", limit=self.limit, retry_after=retry_after,
                       headers={**self.headers(), "Retry-After": str(retry_after)},
                       meta={"limit": self.limit, "window_seconds": WINDOW_MS // 1000, "retry_after": retry_after})


class _LocalWindows:
    def __init__(self):
        self._windows: dict[int, deque] = {}
        self._lock = threading.Lock()

    def hit(self, key_id: int, limit: int) -> Decision:
        now = time.monotonic() * 1000
        with self._lock:
            window = self._windows.setdefault(key_id, deque())
            while window and window[0] <= now - WINDOW_MS:
                window.popleft()
            if len(window) < limit:
                window.append(now)
                return Decision(True, limit, limit - len(window), int(window[0] + WINDOW_MS - now))
            return Decision(False, limit, 0, int(window[0] + WINDOW_MS - now))


_local = _LocalWindows()
_script_sha: str | None = None


def _redis_key(key_id: int) -> str:
    return f"gpuniq:rl:{key_id}"


def _unavailable(limit: int, exc: Exception) -> Decision:
    log.warning("rate limiter unavailable (%s); failing %s", exc,
                "open" if settings.GPUNIQ_RATE_LIMIT_FAIL_OPEN else "closed")
    if settings.GPUNIQ_RATE_LIMIT_FAIL_OPEN:
        return Decision(True, limit, limit, WINDOW_MS)
    raise ApiError("service_unavailable", reason="Rate limiting is unavailable.")


def hit(key_id: int, limit: int) -> Decision:
    client = shared_state.sync_redis()
    if client is None:
        return _local.hit(key_id, limit)
    try:
        allowed, remaining, reset = client.eval(_LUA, 1, _redis_key(key_id), WINDOW_MS, limit, unique_hex(64))
    except Exception as exc:  # redis down: documented fail-open/closed setting decides
        return _unavailable(limit, exc)
    return Decision(bool(allowed), limit, int(remaining), int(reset))


async def ahit(key_id: int, limit: int) -> Decision:
    global _script_sha
    client = shared_state.async_redis()
    if client is None:
        return _local.hit(key_id, limit)
    args = (_redis_key(key_id), WINDOW_MS, limit, unique_hex(64))
    try:
        if _script_sha is None:
            _script_sha = await client.script_load(_LUA)
        try:
            allowed, remaining, reset = await client.evalsha(_script_sha, 1, *args)
        except Exception as exc:
            if "NOSCRIPT" not in str(exc):
                raise
            allowed, remaining, reset = await client.eval(_LUA, 1, *args)
    except ApiError:
        raise
    except Exception as exc:
        return _unavailable(limit, exc)
    return Decision(bool(allowed), limit, int(remaining), int(reset))
