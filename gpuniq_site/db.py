"""Database work from async code, without the one-thread funnel of thread_sensitive=True.

Work runs on a dedicated pool of threads sized like the database connection pool; each call
hands its connection back afterwards (to psycopg's pool on PostgreSQL, or keeps a healthy
persistent one), so no thread sits on a connection between requests.
"""

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection

from .loops import on_loop_close

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

P = ParamSpec("P")
T = TypeVar("T")

log = logging.getLogger("gpuniq.db")
_executor: ThreadPoolExecutor | None = None


class Sizes:
    """Pool sizes of this process: DB_POOL_MAX for an app process; a Celery worker replaces them
    with ones derived from its concurrency (size_for_worker) before its first query."""

    executor_threads: int | None = None  # None: from DB_POOL_MAX
    async_pool_max: int | None = None  # per event loop


sizes = Sizes()


def _pooled() -> bool:
    return "pool" in settings.DATABASES["default"].get("OPTIONS", {})


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        size = sizes.executor_threads or (max(4, settings.DB_POOL_MAX) if _pooled() else 8)
        _executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="db")
    return _executor


def size_for_worker(concurrency: int) -> int:
    """Size this worker process's database pools from its own concurrency; answer the sync pool size.

    Each of the `concurrency` job threads holds a connection only for short ORM calls (claim,
    outcome), never while its job waits on a vendor (loops.run_isolated gives it back); the job's
    own database work runs on `concurrency` executor threads. So 2 x concurrency connections (+2
    for the heartbeats' slack) mean no thread ever waits for one, whatever DB_POOL_MAX says —
    with DB_POOL_MAX = -c, jobs used to wait 30 s and fail ("couldn't get a connection").
    GPUNIQ_WORKER_DB_POOL overrides the figure. Each job's event loop gets an async pool of 2."""
    from django.db import connections
    from django.db.backends.postgresql.base import DatabaseWrapper

    size = settings.GPUNIQ_WORKER_DB_POOL or 2 * concurrency + 2
    sizes.executor_threads, sizes.async_pool_max = max(concurrency, 1), 2
    wrapper = connections["default"]
    options = wrapper.settings_dict.get("OPTIONS", {})
    if isinstance(options.get("pool"), dict) and isinstance(wrapper, DatabaseWrapper):
        wrapper.close_pool()  # none is open yet; a pool made earlier would keep its size
        options["pool"] = {**options["pool"], "max_size": size}
    log.info("worker database pool: %d connections for %d threads", size, concurrency)
    return size


def _call(fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    try:
        return fn(*args, **kwargs)
    finally:
        if _pooled():
            connection.close()  # back to the pool, not a disconnect
        else:
            connection.close_if_unusable_or_obsolete()


async def run_db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a sync function that uses the ORM, off the event loop."""
    return await sync_to_async(_call, thread_sensitive=False, executor=executor())(fn, args, kwargs)


# --- PostgreSQL from the event loop -------------------------------------------------------
# The hot path's money statements run on a psycopg async pool (one per process and event loop):
# no thread hop, no ORM. Everything else keeps using the ORM through run_db.

_async_pools: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]]" = (
    weakref.WeakKeyDictionary()
)


def uses_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def _conninfo() -> str:
    from psycopg.conninfo import make_conninfo

    db = settings.DATABASES["default"]
    extra = {k: v for k, v in db.get("OPTIONS", {}).items() if isinstance(v, str)}  # e.g. application_name
    return make_conninfo(
        dbname=db["NAME"],
        user=db.get("USER") or None,
        password=db.get("PASSWORD") or None,
        host=db.get("HOST") or None,
        port=str(db["PORT"]) if db.get("PORT") else None,
        **extra,
    )


async def pg_pool() -> "AsyncConnectionPool[Any]":
    """The async pool of the running event loop (each loop has its own; see gpuniq_site.loops)."""
    from psycopg_pool import AsyncConnectionPool

    loop = asyncio.get_running_loop()
    pool = _async_pools.get(loop)
    if pool is None:
        size = sizes.async_pool_max or max(4, settings.DB_POOL_MAX)
        pool = AsyncConnectionPool(
            _conninfo(), min_size=1, max_size=size, kwargs={"autocommit": True}, open=False, timeout=30
        )
        _async_pools[loop] = pool
        await pool.open()
        global _autovacuum_checked
        if not _autovacuum_checked:  # once per process: Celery opens a pool per job's loop
            _autovacuum_checked = True
            await _warn_if_autovacuum_off(pool)
    return pool


_autovacuum_checked = False


AUTOVACUUM_OFF = (
    "PostgreSQL's autovacuum is off: the ledger's prepared statements keep the plans they were first "
    "given until their tables are analyzed, and plans made while billing_hold was small scan it whole "
    "on every settle. Turn autovacuum on, or ANALYZE billing_hold as it grows (docs/performance.md)"
)


async def _warn_if_autovacuum_off(pool: "AsyncConnectionPool[Any]") -> bool:
    """Say so in the log when the database does not analyze its tables itself."""
    try:
        async with pool.connection() as conn:
            row = await (await conn.execute("SELECT current_setting('autovacuum') = 'off'")).fetchone()
    except Exception:  # a warning is not worth failing the request that opened the pool
        return False
    if row and row[0]:
        log.warning(AUTOVACUUM_OFF)
        return True
    return False


@on_loop_close
async def close_pg_pool() -> None:
    pool = _async_pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()


async def pg_run(attempt: "Callable[[AsyncConnection[Any]], Awaitable[T]]") -> T:
    """Run `await attempt(connection)` on the async pool; if the connection turns out to be dead
    (the server restarted, a backend was terminated), once more on a fresh one. Only for
    statements that are safe to repeat."""
    from psycopg import OperationalError

    pool = await pg_pool()
    try:
        async with pool.connection() as conn:
            return await attempt(conn)
    except OperationalError:
        log.warning("database connection lost; retrying once on a fresh connection")
        await pool.check()
        async with pool.connection() as conn:
            return await attempt(conn)
