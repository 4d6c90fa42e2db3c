"""Login throttling: N failed sign-ins per (email, client IP) in a window block that pair only.

Keyed by both, so someone guessing Alice's password from one address neither locks Alice out
elsewhere nor slows Bob down on the same network. State lives in Django's cache (Redis when
configured, so every process agrees); a correct password during the block is refused too,
otherwise the block would leak which guess was right.
"""

import hashlib
import math
import time

from django.conf import settings
from django.core.cache import cache


def _keys(email: str, ip: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{email.strip().lower()}|{ip}".encode()).hexdigest()[:32]
    return f"gpuniq:login:fail:{digest}", f"gpuniq:login:first:{digest}"


def client_ip(request) -> str:
    """The peer address. X-Forwarded-For is not trusted: a client could pick its own throttle key."""
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def blocked_for(email: str, ip: str) -> int:
    """Seconds until this (email, ip) may try again; 0 when it is not blocked."""
    count_key, first_key = _keys(email, ip)
    if (cache.get(count_key) or 0) < settings.LOGIN_FAILURES_ALLOWED:
        return 0
    first = cache.get(first_key) or time.time()
    return max(1, math.ceil(first + settings.LOGIN_FAILURE_WINDOW_SECONDS - time.time()))


def record_failure(email: str, ip: str) -> None:
    """Count one failure; the window starts at the first failure and the counter expires with it."""
    count_key, first_key = _keys(email, ip)
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    cache.add(first_key, time.time(), timeout=window)
    if not cache.add(count_key, 1, timeout=window):
        try:
            cache.incr(count_key)
        except ValueError:  # expired between add() and incr()
            cache.add(count_key, 1, timeout=window)


def clear(email: str, ip: str) -> None:
    cache.delete_many(list(_keys(email, ip)))
