"""Per-key sliding-window rate limit: one atomic Redis round trip, or process memory.

Without Redis configured (the embedded default, one process) the window lives in process memory.
With Redis configured but unreachable, each process falls back to a local window holding its
share of the limit (limit / GPUNIQ_APP_PROCESSES), says so in `x-ratelimit-mode: local`, /healthz
and /metrics, and goes back to Redis once it answers again (GPUNIQ_RATE_LIMIT_FAIL_OPEN=0 refuses
instead, with 503).

The window is a log of request times (a sorted set in Redis), so the limit holds over any
60-second span, not per calendar minute. Redis' own clock is used so every process agrees.
"""

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from django.conf import settings

from gpuniq_site import metrics, redis_pipe, shared_state
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
    mode: str = ""  # "local" when Redis was unreachable and this process decided alone

    def headers(self) -> dict[str, str]:
        headers = {
            "x-ratelimit-limit-requests": str(self.limit),
            "x-ratelimit-remaining-requests": str(self.remaining),
            "x-ratelimit-reset-requests": f"{max(self.reset_ms, 0) / 1000:.3f}s",
        }
        if self.mode:
            headers["x-ratelimit-mode"] = self.mode
        return headers

    def raise_if_denied(self) -> None:
        if self.allowed:
            return
        retry_after = max(1, -(-self.reset_ms // 1000))
        raise ApiError(
            "rate_limit_per_key",
            limit=self.limit,
            retry_after=retry_after,
            headers={**self.headers(), "Retry-After": str(retry_after)},
            meta={"limit": self.limit, "window_seconds": WINDOW_MS // 1000, "retry_after": retry_after},
        )


class _LocalWindows:
    def __init__(self) -> None:
        self._windows: dict[int, deque] = {}
        self._lock = threading.Lock()

    def hit(self, key_id: int, limit: int, mode: str = "") -> Decision:
        now = time.monotonic() * 1000
        with self._lock:
            window = self._windows.setdefault(key_id, deque())
            while window and window[0] <= now - WINDOW_MS:
                window.popleft()
            if len(window) < limit:
                window.append(now)
                return Decision(True, limit, limit - len(window), int(window[0] + WINDOW_MS - now), mode)
            return Decision(False, limit, 0, int(window[0] + WINDOW_MS - now), mode)


_local = _LocalWindows()
_fallback = _LocalWindows()  # used only while Redis is unreachable, with this process's share


def local_share(limit: int) -> int:
    """This process's part of a key's limit when it cannot count with the others (Redis down)."""
    return max(1, -(-limit // max(1, settings.GPUNIQ_APP_PROCESSES)))


def mode() -> str:
    """How this process limits right now: redis, local (Redis unreachable: fallback) or memory."""
    if not settings.REDIS_URL:
        return "memory"
    return "local" if shared_state.redis_degraded() else "redis"


_script_sha: str | None = None


def _redis_key(key_id: int) -> str:
    return f"gpuniq:rl:{key_id}"


def _unavailable(key_id: int, limit: int, exc: Exception | None = None) -> Decision:
    """Redis is unreachable. Fail open (the default) is not "unlimited": the key gets this
    process's share of its limit from a process-local window, and the answer says so."""
    if exc is not None:
        shared_state.mark_redis_down(exc)
        log.warning(
            "rate limiter: redis unavailable (%s); %s",
            exc,
            "limiting locally" if settings.GPUNIQ_RATE_LIMIT_FAIL_OPEN else "refusing requests",
        )
    if not settings.GPUNIQ_RATE_LIMIT_FAIL_OPEN:
        raise ApiError("service_unavailable", reason="Rate limiting is unavailable.")
    metrics.RATELIMIT_FALLBACKS.inc()
    return _fallback.hit(key_id, local_share(limit), "local")


def hit(key_id: int, limit: int) -> Decision:
    client = shared_state.sync_redis()
    if client is None:
        return _local.hit(key_id, limit)
    if shared_state.redis_down():
        return _unavailable(key_id, limit)
    try:
        allowed, remaining, reset = client.eval(_LUA, 1, _redis_key(key_id), WINDOW_MS, limit, unique_hex(64))
    except Exception as exc:  # redis down: the local fallback (or fail-closed) decides
        return _unavailable(key_id, limit, exc)
    shared_state.mark_redis_up()
    return Decision(bool(allowed), limit, int(remaining), int(reset))


async def ahit(key_id: int, limit: int) -> Decision:
    global _script_sha
    client = shared_state.async_redis()
    if client is None:
        return _local.hit(key_id, limit)
    if shared_state.redis_down():
        return _unavailable(key_id, limit)
    args = (_redis_key(key_id), WINDOW_MS, limit, unique_hex(64))
    try:
        if _script_sha is None:
            _script_sha = await client.script_load(_LUA)
        try:
            allowed, remaining, reset = await client.evalsha(_script_sha, 1, *args)
        except Exception as exc:
            if not redis_pipe.is_noscript(exc):
                raise
            allowed, remaining, reset = await client.eval(_LUA, 1, *args)
    except ApiError:
        raise
    except Exception as exc:
        return _unavailable(key_id, limit, exc)
    shared_state.mark_redis_up()
    return Decision(bool(allowed), limit, int(remaining), int(reset))
