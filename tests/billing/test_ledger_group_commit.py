"""Group commit on the hot path: concurrent holds and settles share transactions, and the money
comes out exactly as if every statement had run on its own."""

import asyncio
import uuid
from decimal import Decimal

import pytest

from billing import ledger, pg_async
from billing.models import Account, Hold, LedgerEntry
from gpuniq_site import group_commit
from gpuniq_site.db import run_db
from billing import metering as usage_rows
from billing.models import UsageLog

from ..conftest import make_user

pytestmark = pytest.mark.postgres


def _lane(name):
    return group_commit._lanes[asyncio.get_running_loop()][name]


def _batches(name) -> int:
    lane = group_commit._lanes.get(asyncio.get_running_loop(), {}).get(name)
    return lane.batches if lane is not None else 0


def usage_row(user, request_id: str) -> dict:
    return usage_rows.row_params(
        user_id=user.pk,
        api_key_id=user.key.pk,
        request_id=request_id,
        endpoint="chat",
        model="m",
        prompt_tokens=1,
        cached_tokens=0,
        completion_tokens=1,
        reasoning_tokens=0,
        latency_ms=1,
        status="ok",
    )


async def _paid_request(user, amount: str, actual: str) -> str:
    request_id = uuid.uuid4().hex
    try:
        held = await ledger.ahold(
            account_id=user.account.pk,
            amount=amount,
            idempotency_key=f"gc:{request_id}",
            request_id=request_id,
        )
    except ledger.InsufficientBalance as short:
        assert short.available < Decimal(amount)
        return "refused"
    row = usage_row(user, request_id)
    outcome = await ledger.aclose(
        hold_id=held.id,
        account_id=user.account.pk,
        actual=actual,
        usage=row,
    )
    assert outcome == ledger.Closed(Decimal(actual), Decimal(0), outcome.available) and outcome.available >= 0
    return "charged"


def _broken_running_amounts(account_ids) -> list:
    """Entries whose balance_after / held_after are not the running sums of the entries before."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT id FROM (
              SELECT id, balance_after, held_after,
                     SUM(amount) OVER (PARTITION BY account_id ORDER BY id) AS balance_run,
                     SUM(held_delta) OVER (PARTITION BY account_id ORDER BY id) AS held_run
              FROM billing_ledgerentry WHERE account_id = ANY(%s)) t
            WHERE balance_after <> balance_run OR held_after <> held_run""",
            [account_ids],
        )
        return cursor.fetchall()


async def test_200_concurrent_requests_batch_and_never_overdraw(committed):
    # carol's $5 pays for 50 holds of $0.10 at once; dave's $100 for all of his
    carol, dave = await run_db(make_user, "carol", "5"), await run_db(make_user, "dave", "100")
    people = [carol, dave] * 100
    outcomes = await asyncio.gather(*[_paid_request(p, "0.10", "0.07") for p in people])

    paid = {p.pk: 0 for p in (carol, dave)}
    for person, outcome in zip(people, outcomes):
        paid[person.pk] += outcome == "charged"
    assert outcomes.count("refused") > 0 and paid[dave.pk] == 100  # only carol ran short
    for person, credit in ((carol, "5"), (dave, "100")):
        account = await run_db(Account.objects.get, pk=person.account.pk)
        assert account.held == 0
        assert account.balance == Decimal(credit) - Decimal("0.07") * paid[person.pk]
        rows = await run_db(
            lambda pk=person.pk: list(UsageLog.objects.filter(user_id=pk).values_list("cost_usd", flat=True))
        )
        assert len(rows) == paid[person.pk] and set(rows) == {
            Decimal("0.07")
        }  # one usage row each, cost filled in
    assert not await run_db(
        lambda: Hold.objects.filter(status=Hold.OPEN, account__user__in=[carol, dave]).exists()
    )
    assert [m for m in await run_db(ledger.find_mismatches) if m.account_id in paid] == []
    assert await run_db(_broken_running_amounts, [carol.account.pk, dave.account.pk]) == []
    holds, settles = _lane("ledger.hold"), _lane("ledger.settle")
    assert holds.batches < holds.items and settles.batches < settles.items, "requests were not grouped"


async def test_a_repeated_key_inside_one_batch_gives_the_same_hold(committed):
    erin = await run_db(make_user, "erin", "1")
    key = f"gc-same:{uuid.uuid4().hex}"
    refs = await asyncio.gather(
        *[ledger.ahold(account_id=erin.account.pk, amount="0.25", idempotency_key=key) for _ in range(3)],
        *[
            ledger.ahold(
                account_id=erin.account.pk, amount="0.25", idempotency_key=f"gc-other:{uuid.uuid4().hex}"
            )
            for _ in range(2)
        ],
    )
    assert len({r.id for r in refs[:3]}) == 1  # the batch broke on the duplicate and was redone one by one
    account = await run_db(Account.objects.get, pk=erin.account.pk)
    assert account.held == Decimal("0.75")  # three holds in all, not five
    assert await run_db(lambda: Hold.objects.filter(account_id=erin.account.pk).count()) == 3


async def test_a_settle_redone_after_an_unsure_commit_charges_and_logs_once(committed):
    """A batch whose connection dies during COMMIT is redone one by one with maybe_done=True."""
    fay = await run_db(make_user, "fay", "1")
    rows_before = await run_db(lambda: UsageLog.objects.filter(user_id=fay.pk).count())
    results = []
    for committed_before in (True, False):
        held = await ledger.ahold(account_id=fay.account.pk, amount="0.50", idempotency_key=uuid.uuid4().hex)
        row = usage_row(fay, uuid.uuid4().hex)
        item = pg_async.SettleItem(
            ledger.pg_ledger.settle_params(hold_id=held.id, actual=Decimal("0.2"), reason="r"),
            fay.account.pk,
            row,
        )
        if committed_before:
            await pg_async._settle_one(item)
        results.append(await pg_async._settle_one(item, maybe_done=True))
    # the first attempt closed it: the redo reports what it captured; the second closes it itself
    assert results == [
        ledger.AlreadyClosed(Decimal("0.2"), results[0].available),
        ledger.Closed(Decimal("0.2"), Decimal(0), results[1].available),
    ]
    assert await run_db(lambda: UsageLog.objects.filter(user_id=fay.pk).count()) == rows_before + 2
    account = await run_db(Account.objects.get, pk=fay.account.pk)
    assert (account.balance, account.held) == (Decimal("0.6"), 0)
    assert (
        await run_db(lambda: LedgerEntry.objects.filter(account_id=fay.account.pk, kind="charge").count())
        == 2
    )


async def test_one_failing_item_fails_alone_and_a_cancelled_caller_does_not_cancel_the_batch():
    seen = []

    async def flush(items):
        await asyncio.sleep(0.01)
        seen.append(list(items))
        return [ValueError(i) if i == "bad" else i.upper() for i in items]

    lane = group_commit.Lane(flush)
    first = asyncio.ensure_future(lane.submit("a"))  # flushed alone, at once
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(lane.submit(i)) for i in ("b", "bad", "c")]
    await asyncio.sleep(0)
    rest[2].cancel()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert results[:2] == ["A", "B"] and isinstance(results[2], ValueError)
    assert isinstance(results[3], asyncio.CancelledError)
    assert seen == [["a"], ["b", "bad", "c"]]  # "c" was still done with its batch


async def test_settles_the_batch_leaves_alone_still_write_their_usage_row_once(committed):
    """In one batch: a normal settle, one above its hold (capped by the single statement, redone
    alone) and one whose hold is already closed: each usage row is written exactly once."""
    gus = await run_db(make_user, "gus", "1")
    holds = [
        await ledger.ahold(account_id=gus.account.pk, amount="0.10", idempotency_key=uuid.uuid4().hex)
        for _ in range(3)
    ]
    await run_db(ledger.release, hold_id=holds[2].id)  # closed before anybody settles it

    def item(held, actual):
        row = usage_row(gus, f"gc-{held.id}")
        return ledger.aclose(
            hold_id=held.id,
            account_id=gus.account.pk,
            actual=actual,
            usage=row,
        )

    results = await asyncio.gather(item(holds[0], "0.04"), item(holds[1], "0.25"), item(holds[2], "0.05"))
    # the closed one reports what its hold captured (nothing): redone alone, it cannot tell who closed it
    assert [type(r) for r in results] == [ledger.Closed, ledger.Closed, ledger.AlreadyClosed]
    assert [r.charged for r in results[:2]] + [results[2].captured] == [Decimal("0.04"), Decimal("0.25"), 0]
    rows = await run_db(
        lambda: dict(UsageLog.objects.filter(user_id=gus.pk).values_list("request_id", "cost_usd"))
    )
    assert rows == {
        f"gc-{holds[0].id}": Decimal("0.04"),
        f"gc-{holds[1].id}": Decimal("0.25"),
        f"gc-{holds[2].id}": Decimal("0"),
    }
    account = await run_db(Account.objects.get, pk=gus.account.pk)
    assert (account.balance, account.held) == (Decimal("0.71"), 0)
    assert _lane("ledger.settle").batches < _lane("ledger.settle").items


async def test_a_lone_settle_writes_its_usage_row_in_the_same_statement_once(committed):
    hal = await run_db(make_user, "hal", "1")
    ids = []
    for release_first in (False, True):
        held = await ledger.ahold(account_id=hal.account.pk, amount="0.10", idempotency_key=uuid.uuid4().hex)
        if release_first:  # the stale-hold reaper got there first: the request is still logged, at no cost
            await run_db(ledger.release, hold_id=held.id)
        row = usage_row(hal, f"lone-{held.id}")
        outcome = await ledger.aclose(
            hold_id=held.id,
            account_id=hal.account.pk,
            actual="0.03",
            usage=row,
        )
        assert isinstance(outcome, ledger.AlreadyClosed if release_first else ledger.Closed)
        assert (outcome.captured if release_first else outcome.charged) == (
            0 if release_first else Decimal("0.03")
        )
        ids.append(held.id)
    rows = await run_db(
        lambda: dict(UsageLog.objects.filter(user_id=hal.pk).values_list("request_id", "cost_usd"))
    )
    assert rows == {f"lone-{ids[0]}": Decimal("0.03"), f"lone-{ids[1]}": Decimal("0")}


async def test_a_hold_that_lands_after_its_request_was_cancelled_is_released(committed):
    ida = await run_db(make_user, "ida", "1")
    other = asyncio.ensure_future(
        ledger.ahold(account_id=ida.account.pk, amount="0.10", idempotency_key=uuid.uuid4().hex)
    )  # keeps the lane busy
    await asyncio.sleep(0)
    key = uuid.uuid4().hex
    waiting = asyncio.ensure_future(
        ledger.ahold(account_id=ida.account.pk, amount="0.30", idempotency_key=key, release_if_abandoned=True)
    )
    await asyncio.sleep(0)
    waiting.cancel()  # the client went away while its hold was queued
    await other
    for _ in range(100):
        hold = await run_db(lambda: Hold.objects.filter(idempotency_key=key).first())
        if hold is not None and hold.status != Hold.OPEN:
            break
        await asyncio.sleep(0.02)
    assert hold is not None and hold.status == Hold.RELEASED
    account = await run_db(Account.objects.get, pk=ida.account.pk)
    assert account.held == Decimal("0.10")  # only the other request's hold is still held


async def test_a_hold_closed_while_its_batch_waits_for_the_account_is_logged_once(committed):
    """Another session (the stale-hold reaper, say) closes a hold after the batch's statement began
    and before it got the account's lock: the batch neither closes nor logs it, the item is redone
    alone, and its usage row is written once, at what that hold captured (nothing)."""
    from psycopg import AsyncConnection

    from billing import pg_ledger
    from gpuniq_site.db import _conninfo

    ivy = await run_db(make_user, "ivy", "1")
    holds = [
        await ledger.ahold(account_id=ivy.account.pk, amount="0.10", idempotency_key=uuid.uuid4().hex)
        for _ in range(2)
    ]
    batches_before = _batches("ledger.settle")
    async with await AsyncConnection.connect(_conninfo()) as reaper:
        async with reaper.transaction():
            await reaper.execute("SELECT id FROM billing_account WHERE id = %s FOR UPDATE", [ivy.account.pk])
            settling = asyncio.gather(
                *[
                    ledger.aclose(
                        hold_id=held.id,
                        account_id=ivy.account.pk,
                        actual="0.04",
                        usage=usage_row(ivy, f"race-{held.id}"),
                    )
                    for held in holds
                ]
            )
            while not await _waits_for_a_lock(reaper):  # the batch's statement has begun
                await asyncio.sleep(0.02)
            await reaper.execute(
                pg_ledger.SETTLE_SQL,
                pg_ledger.settle_params(hold_id=holds[1].id, actual=0, reason="stale"),
            )
        results = await settling

    assert _batches("ledger.settle") == batches_before + 1  # both settles went out as one batch
    assert [type(r) for r in results] == [ledger.Closed, ledger.AlreadyClosed]
    assert (results[0].charged, results[1].captured) == (Decimal("0.04"), 0)
    rows = await run_db(
        lambda: sorted(UsageLog.objects.filter(user_id=ivy.pk).values_list("request_id", "cost_usd"))
    )
    assert rows == sorted([(f"race-{holds[0].id}", Decimal("0.04")), (f"race-{holds[1].id}", Decimal("0"))])
    account = await run_db(Account.objects.get, pk=ivy.account.pk)
    assert (account.balance, account.held) == (Decimal("0.96"), 0)


async def _waits_for_a_lock(conn) -> bool:
    cursor = await conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    )
    return (await cursor.fetchone())[0] > 0
