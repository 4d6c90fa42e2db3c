"""The ledger's hot path on PostgreSQL, from the event loop: holds and settles go through group
commit (gpuniq_site.group_commit), so concurrent requests share one statement, one commit and
one lock of their account row instead of fighting for that row one statement at a time.

A batch of one is the plain single statement (billing/pg_ledger.py). A larger batch is one
set-wise statement (HOLD_MANY_SQL / SETTLE_MANY_SQL) that locks accounts in id order (no
deadlock between batches) and leaves the same rows and running amounts as the single statements
in sequence; what it does not take (a hold that does not fit, a settle above its hold or of a
closed hold) is redone alone with the single statement, which has the exact rules. When a batch
fails, all its items are redone alone: holds are idempotent by key, and a settle whose batch may
have committed before its connection died finds its hold closed and reports what was charged,
writing its usage row only once.
"""

import asyncio
import logging
from dataclasses import dataclass
from decimal import Decimal

from gpuniq_site import group_commit
from gpuniq_site.db import pg_pool, pg_run

from . import pg_ledger

log = logging.getLogger("gpuniq.ledger")

@dataclass(frozen=True)
class Refused:
    available: Decimal


@dataclass(frozen=True)
class SettleItem:
    params: dict
    account_id: int
    also: tuple[str, dict] | None  # one more statement right after the settle (the usage row)


async def hold(params: dict) -> int | Refused:
    """The new (or, for a repeated key, existing) hold's id, or Refused with what is available."""
    return await group_commit.lane("ledger.hold", _flush_holds).submit(params)


async def settle(item: SettleItem) -> tuple[Decimal | None, Decimal | None]:
    """(charged, or None when the hold was already closed; available after)."""
    return await group_commit.lane("ledger.settle", _flush_settles).submit(item)


# --- one at a time ---------------------------------------------------------------------------

async def _hold_one(params: dict) -> int | Refused:
    from psycopg.errors import UniqueViolation

    async def attempt(conn):
        try:
            cursor = await conn.execute(pg_ledger.HOLD_SQL, params)
        except UniqueViolation:  # this key was already held (also: an earlier attempt did commit)
            cursor = await conn.execute("SELECT id FROM billing_hold WHERE idempotency_key = %(key)s", params)
        row = await cursor.fetchone()
        if row is None:
            cursor = await conn.execute(pg_ledger.AVAILABLE_SQL, params)
            return Refused((await cursor.fetchone())[0])
        return row[0]

    for _ in range(3):
        outcome = await pg_run(attempt)
        # refused, but concurrent settles freed enough in the meantime: try again rather than
        # refuse a request with an error that says the money is there
        if not (isinstance(outcome, Refused) and outcome.available >= params["amount"]):
            return outcome
    return outcome


async def _settle_one(item: SettleItem, maybe_done: bool = False) -> tuple[Decimal | None, Decimal | None]:
    """`maybe_done`: an earlier attempt may have committed (its connection died on the way)."""
    tries = []

    async def attempt(conn):
        unsure = maybe_done or bool(tries)
        tries.append(1)
        async with conn.pipeline():
            cursor = await conn.execute(pg_ledger.SETTLE_SQL, item.params)
            if item.also and not unsure:
                await conn.execute(*item.also)
        row = await cursor.fetchone()
        if unsure and row[0] is None:  # closed already, most likely by that attempt: report it
            row = await (await conn.execute(pg_ledger.CLOSED_HOLD_SQL, item.params)).fetchone()
        elif unsure and item.also:  # this attempt closed it, so the earlier one wrote nothing
            await conn.execute(*item.also)
        return (row[0], row[1]) if row else (None, None)

    return await pg_run(attempt)


async def _one_by_one(items, run) -> list:
    outcomes = []
    for item in items:
        try:
            outcomes.append(await run(item))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


# --- batches ---------------------------------------------------------------------------------

async def _flush_holds(items: list[dict]) -> list:
    if len(items) == 1:
        return await _one_by_one(items, _hold_one)
    try:
        async with (await pg_pool()).connection() as conn:
            cursor = await conn.execute(pg_ledger.HOLD_MANY_SQL, pg_ledger.hold_many_params(items))
            taken = dict(await cursor.fetchall())  # position (from 1) -> hold id
    except asyncio.CancelledError:
        raise
    except Exception:  # rolled back (a repeated key, say) or unknown: holds are idempotent by key
        taken = {}
    left = [item for n, item in enumerate(items, 1) if n not in taken]
    redone = iter(await _one_by_one(left, _hold_one))
    return [taken[n] if n in taken else next(redone) for n in range(1, len(items) + 1)]


async def _flush_settles(items: list[SettleItem]) -> list:
    if len(items) == 1:
        return await _one_by_one(items, _settle_one)
    from psycopg import OperationalError

    maybe_done = False
    try:
        async with (await pg_pool()).connection() as conn:
            # autocommit: the account rows stay locked only inside this one statement
            cursor = await conn.execute(pg_ledger.SETTLE_MANY_SQL,
                                        pg_ledger.settle_many_params([item.params for item in items]))
            done = {row[0]: (row[1], row[2]) for row in await cursor.fetchall()}
    except asyncio.CancelledError:
        raise
    except OperationalError:  # the statement may or may not have committed
        done, maybe_done = {}, True
    except Exception:  # rolled back
        done = {}
    if done:
        await _also(items[n - 1] for n in sorted(done))
    left = [item for n, item in enumerate(items, 1) if n not in done]
    redone = iter(await _one_by_one(left, lambda item: _settle_one(item, maybe_done)))
    return [done[n] if n in done else next(redone) for n in range(1, len(items) + 1)]


async def _also(items) -> None:
    """The settled items' own statements (usage rows), after the money is committed; like the
    single path, a lost connection here loses these rows, never money."""
    groups: dict[str, list[dict]] = {}
    for item in items:
        if item.also:
            groups.setdefault(item.also[0], []).append(item.also[1])
    if not groups:
        return
    try:
        async with (await pg_pool()).connection() as conn, conn.pipeline():
            for sql, params in groups.items():
                await conn.cursor().executemany(sql, params)
    except Exception:  # the money is settled and each caller gets its result; say what was lost
        log.exception("writing %d rows after a settled batch failed", sum(map(len, groups.values())))
