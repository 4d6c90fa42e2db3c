"""Database work from async code, without the one-thread funnel of thread_sensitive=True.

Work runs on a dedicated pool of threads sized like the database connection pool; each call
hands its connection back afterwards (to psycopg's pool on PostgreSQL, or keeps a healthy
persistent one), so no thread sits on a connection between requests.
"""

from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

_executor: ThreadPoolExecutor | None = None


def _pooled() -> bool:
    return "pool" in settings.DATABASES["default"].get("OPTIONS", {})


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        size = max(4, settings.DB_POOL_MAX) if _pooled() else 8
        _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="db")
    return _executor


def _call(fn, args, kwargs):
    try:
        return fn(*args, **kwargs)
    finally:
        if _pooled():
            connection.close()  # back to the pool, not a disconnect
        else:
            connection.close_if_unusable_or_obsolete()


async def run_db(fn, *args, **kwargs):
    """Run a sync function that uses the ORM, off the event loop."""
    return await sync_to_async(_call, thread_sensitive=False, executor=executor())(fn, args, kwargs)
