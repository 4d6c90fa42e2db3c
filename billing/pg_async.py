"""The ledger's hot path on PostgreSQL, from the event loop: holds and settles go through group
commit (gpuniq_site.group_commit), so concurrent requests share one statement, one commit and
one lock of their account row instead of fighting for that row one statement at a time.

A batch of one is the plain single statement (billing/pg_ledger.py). A larger batch is one
set-wise statement (HOLD_MANY_SQL / SETTLE_MANY_SQL) that locks accounts in id order (no
deadlock between batches) and leaves the same rows and running amounts as the single statements
in sequence; what it does not take (a hold that does not fit, a settle above its hold or of a
closed hold) is redone alone with the single statement, which has the exact rules. When a batch
fails, all its items are redone alone: holds are idempotent by key, and a settle whose batch may
have committed before its connection died finds its hold closed and reports what was charged.
A settle's usage row is written by the statement that closes its hold: its own settle statement
when it runs alone (pg_ledger.SETTLE_WITH_USAGE_SQL), the batch's (SETTLE_MANY_SQL, for the holds
that statement closed), or the redo of an item the batch did not take: once either way.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from psycopg import AsyncConnection

from gpuniq_site import group_commit
from gpuniq_site.db import pg_pool, pg_run

from . import metering, pg_ledger
from .outcomes import AlreadyClosed, Closed, CloseOutcome, HoldLost, Refused
from .pg_ledger import Params, Row

log = logging.getLogger("gpuniq.ledger")
Item = TypeVar("Item")
Outcome = TypeVar("Outcome")
Connection = AsyncConnection[Any]


@dataclass(frozen=True)
class SettleItem:
    params: Params
    account_id: int
    # the request's usage row (metering.row_params), written once, by whichever statement closes the
    # hold: a lone settle's own statement (SETTLE_WITH_USAGE_SQL), a batch's (SETTLE_MANY_SQL), or
    # the redo of an item the batch did not take
    usage: Params | None = None

    def usage_statement(self) -> tuple[str, Params]:
        return metering.INSERT_FROM_HOLD_SQL, {**(self.usage or {}), **self.params}


async def hold(params: Params) -> int | Refused:
    """The new (or, for a repeated key, existing) hold's id, or Refused with why and what is left."""
    return await start_hold(params)


def start_hold(params: Params) -> "asyncio.Future[int | Refused]":
    """hold(), sent without waiting. Cancel the future to abandon the hold: with
    release_if_abandoned it is then released once it lands (or at once if it has)."""
    lane: group_commit.Lane[Params, int | Refused]
    lane = group_commit.lane("ledger.hold", _flush_holds, orphan=_release_orphan)
    return lane.enqueue(params)


def abandon_hold(params: Params, started: "asyncio.Future[int | Refused]") -> None:
    """Nobody will use this hold: release it whether it has landed already or lands later."""
    if started.done() and not started.cancelled() and started.exception() is None:
        _release_orphan(params, started.result())
    else:
        started.cancel()


_orphans: set[asyncio.Task[CloseOutcome]] = set()


def _release_orphan(params: Params, outcome: int | Refused) -> None:
    """A hold taken after its request was cancelled (client gone): nobody will settle it, so it is
    released now rather than by the stale-hold reaper — when the caller said its key is its own
    (release_if_abandoned), since a repeated key returns a hold somebody else may be using."""
    if isinstance(outcome, Refused) or not params.get("release_if_abandoned"):
        return
    item = SettleItem(
        pg_ledger.settle_params(hold_id=outcome, actual=0, reason="request cancelled", key=params["key"]),
        params["account"],
    )
    task = asyncio.ensure_future(settle(item))
    _orphans.add(task)
    task.add_done_callback(_orphans.discard)


async def settle(item: SettleItem) -> CloseOutcome:
    """Closed (charged, shortfall, available after) or AlreadyClosed (what it captured)."""
    lane: group_commit.Lane[SettleItem, CloseOutcome] = group_commit.lane("ledger.settle", _flush_settles)
    return await lane.submit(item)


# --- one at a time ---------------------------------------------------------------------------


async def _hold_one(params: Params) -> int | Refused:
    from psycopg.errors import UniqueViolation

    statements = pg_ledger.hold_statements(params, flush=False)  # the settle flushes it (NO_FLUSH)

    async def attempt(conn: Connection) -> int | Refused:
        try:
            for sql in statements:
                cursor = await conn.execute(sql, params)
        except UniqueViolation:  # this key was already held (also: an earlier attempt did commit)
            cursor = await conn.execute(pg_ledger.EXISTING_HOLD_SQL, params)
        row = await cursor.fetchone()
        available = None
        if row is None or row[0] is None:
            available = _only(await (await conn.execute(pg_ledger.AVAILABLE_SQL, params)).fetchone())[0]
        return pg_ledger.hold_outcome(row, params, available)

    for _ in range(3):
        outcome = await pg_run(attempt)
        # refused, but concurrent settles freed enough in the meantime: try again rather than
        # refuse a request with an error that says the money is there
        if not (isinstance(outcome, Refused) and outcome.available >= params["amount"]):
            return outcome
    return outcome


async def _settle_one(item: SettleItem, maybe_done: bool = False) -> CloseOutcome:
    """`maybe_done`: an earlier attempt or batch may have closed the hold and written the usage
    row (its connection died on the way, or the batch left this item to be redone)."""
    tries: list[int] = []
    actual = item.params["actual"]

    async def attempt(conn: Connection) -> CloseOutcome:
        unsure = maybe_done or bool(tries)
        tries.append(1)
        if item.usage is not None and not unsure:  # one statement, one commit
            cursor = await conn.execute(pg_ledger.SETTLE_WITH_USAGE_SQL, {**item.usage, **item.params})
            settled = _only(await cursor.fetchone())
            if settled[0] is None:  # closed already (by the stale-hold reaper): the request is still logged
                await conn.execute(*item.usage_statement())
                return await _closed(conn, item)
            return pg_ledger.settle_outcome(settled, actual, None)
        cursor = await conn.execute(pg_ledger.SETTLE_SQL, item.params)
        row = await cursor.fetchone()
        if row is None or row[0] is None:  # closed already (most likely by that earlier attempt)
            return await _closed(conn, item)
        if item.usage is not None:  # this attempt closed it, so the earlier one wrote nothing
            await conn.execute(*item.usage_statement())
        return pg_ledger.settle_outcome(row, actual, None)

    return await pg_run(attempt)


async def _closed(conn: Connection, item: SettleItem) -> AlreadyClosed:
    row = await (await conn.execute(pg_ledger.CLOSED_HOLD_SQL, item.params)).fetchone()
    if row is None:  # no such hold: the database lost it in a crash (pg_ledger.NO_FLUSH)
        raise HoldLost(item.params["hold"])
    return pg_ledger.already_closed(row)


def _only(row: Row | None) -> Row:
    """The row of a statement that always answers exactly one."""
    if row is None:
        raise RuntimeError("the statement answered no row")
    return row


async def _one_by_one(
    items: Sequence[Item], run: Callable[[Item], Awaitable[Outcome]]
) -> list[Outcome | BaseException]:
    outcomes: list[Outcome | BaseException] = []
    for item in items:
        try:
            outcomes.append(await run(item))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


# --- batches ---------------------------------------------------------------------------------


async def _flush_holds(items: list[Params]) -> list[int | Refused | BaseException]:
    batch = [(n, item) for n, item in enumerate(items, 1) if item.get("cap") is None]  # capped: alone
    if len(batch) <= 1:
        return await _one_by_one(items, _hold_one)
    taken: dict[int, int]  # position -> id
    try:
        async with (await pg_pool()).connection() as conn:
            cursor = await conn.execute(
                pg_ledger.HOLD_MANY_SQL, pg_ledger.hold_many_params([i for _, i in batch])
            )
            taken = {batch[ord_ - 1][0]: hold_id for ord_, hold_id in await cursor.fetchall()}
    except asyncio.CancelledError:
        raise
    except Exception:  # rolled back (a repeated key, say) or unknown: holds are idempotent by key
        taken = {}
    left = [item for n, item in enumerate(items, 1) if n not in taken]
    redone = iter(await _one_by_one(left, _hold_one))
    return [taken[n] if n in taken else next(redone) for n in range(1, len(items) + 1)]


async def _flush_settles(items: list[SettleItem]) -> list[CloseOutcome | BaseException]:
    if len(items) == 1:
        return await _one_by_one(items, _settle_one)
    done: dict[int, CloseOutcome] = {}
    logged: set[int] = set()  # items whose usage rows the batch wrote
    unsure = False  # whether the batch committed is unknown
    try:
        params = pg_ledger.settle_many_params([item.params for item in items], [item.usage for item in items])
        async with (await pg_pool()).connection() as conn:
            # one statement, one commit: the settles, their entries, and the usage rows of the items
            # whose holds are closed (by it, or before it by the stale-hold reaper)
            rows = await (await conn.execute(pg_ledger.SETTLE_MANY_SQL, params)).fetchall()
        for n, captured, available in rows:
            logged.add(n)
            if captured is not None:  # else closed before the batch: redone below, to say what it captured
                done[n] = Closed(captured, items[n - 1].params["actual"] - captured, available)
    except asyncio.CancelledError:
        raise
    except Exception:  # rolled back, or unknown whether it committed: each item is redone knowing that
        log.warning("a batch of %d settles failed; redoing them one by one", len(items), exc_info=True)
        done, unsure = {}, True
    # what the batch did not take is redone alone, its usage row written by whoever closes the hold (a
    # hold closed between the batch's snapshot and its lock on the account was not logged by the batch)
    left = [(n, item) for n, item in enumerate(items, 1) if n not in done]
    redone = iter(await _one_by_one(left, lambda pair: _settle_one(pair[1], unsure or pair[0] in logged)))
    return [done[n] if n in done else next(redone) for n in range(1, len(items) + 1)]
