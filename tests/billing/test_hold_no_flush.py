"""A chat hold commits without waiting for the disk (billing.pg_ledger.NO_FLUSH); settles stay
durable. A crash of PostgreSQL can then lose the newest holds: the request whose hold was lost
is refused, nothing delivered and nothing charged."""

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from django.db import connection, transaction

from billing import ledger, pg_ledger
from billing.models import Account, Hold, LedgerEntry, UsageLog
from gpuniq_site.db import run_db

from ..conftest import balance_of, make_user, usage_rows
from .test_ledger_group_commit import usage_row

pytestmark = pytest.mark.postgres

# what a crash of PostgreSQL does to a hold committed without a flush: its whole transaction is gone
LOSE_HOLD_SQL = """
WITH h AS (DELETE FROM billing_hold WHERE id = %s AND status = 'open' RETURNING id, account_id, amount),
e AS (DELETE FROM billing_ledgerentry WHERE hold_id IN (SELECT id FROM h)),
a AS (UPDATE billing_account SET held = held - h.amount FROM h WHERE billing_account.id = h.account_id)
SELECT count(*) FROM h
"""


def lose_hold(hold_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(LOSE_HOLD_SQL, [hold_id])
        assert cursor.fetchone()[0] == 1, "the hold was not open any more: settled before it was lost"


def test_a_hold_turns_off_the_flush_for_its_own_transaction_only(committed):
    user = make_user("noflush", "1")
    params = {
        "account": user.account.pk,
        "amount": Decimal("0.10"),
        "key": f"noflush:{uuid.uuid4().hex}",
        "purpose": "chat",
        "request_id": "noflush-probe",
        "api_key": None,
        "cap": None,
    }
    [statement] = pg_ledger.hold_statements(params, flush=False)
    with connection.cursor() as cursor:
        with transaction.atomic():  # inside one transaction, to look at it before it commits
            cursor.execute(statement, params)
            assert cursor.fetchone()[0] is not None
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "off"
        # the next transaction on the same (pooled) connection, a settle say, is durable again
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
        [durable] = pg_ledger.hold_statements(params)
        with transaction.atomic():  # what job holds take keeps the default
            cursor.execute(durable, {**params, "key": f"noflush:{uuid.uuid4().hex}"})
            cursor.execute("SHOW synchronous_commit")
            assert cursor.fetchone()[0] == "on"
    assert Account.objects.get(pk=user.account.pk).held == Decimal("0.20")


async def test_settling_a_hold_the_database_lost_charges_nothing_and_says_so(committed):
    user = await run_db(make_user, "lost", "1")
    account_id = user.account.pk
    kept, lost = [
        await ledger.ahold(account_id=account_id, amount="0.10", idempotency_key=uuid.uuid4().hex)
        for _ in range(2)
    ]
    await run_db(lose_hold, lost.id)
    # settled together (one batch, which leaves the lost one to be redone alone) and then alone
    outcomes = await asyncio.gather(
        *[
            ledger.aclose(
                hold_id=ref.id, account_id=account_id, actual="0.04", usage=usage_row(user, f"r{ref.id}")
            )
            for ref in (kept, lost)
        ],
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], ledger.Closed) and outcomes[0].charged == Decimal("0.04")
    assert isinstance(outcomes[1], ledger.HoldLost) and outcomes[1].hold_id == lost.id
    with pytest.raises(ledger.HoldLost):
        await ledger.aclose(
            hold_id=lost.id, account_id=account_id, actual="0.04", usage=usage_row(user, "again")
        )
    account = await run_db(Account.objects.get, pk=account_id)
    assert (account.balance, account.held) == (Decimal("0.96"), 0)
    logged = await run_db(
        lambda: list(UsageLog.objects.filter(user_id=user.pk).values_list("request_id", flat=True))
    )
    assert logged == [f"r{kept.id}"]  # the lost request is not logged as delivered
    assert [m for m in await run_db(ledger.find_mismatches) if m.account_id == account_id] == []


def _hold_taking_id(account_id: int, hold_id: int) -> None:
    """Another request's hold given the id of a lost one: after a crash the id sequence may draw
    again the ids it gave the lost holds, its own record of them lost with them."""
    key = f"reused:{uuid.uuid4().hex}"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO billing_hold (id, account_id, amount, status, captured, idempotency_key, purpose,"
            " request_id, created_at) VALUES (%s, %s, 0.25, 'open', 0, %s, 'chat', 'other', now())",
            [hold_id, account_id, key],
        )
        cursor.execute("UPDATE billing_account SET held = held + 0.25 WHERE id = %s", [account_id])
        cursor.execute(
            "INSERT INTO billing_ledgerentry (account_id, kind, amount, held_delta, balance_after,"
            " held_after, idempotency_key, hold_id, reason, created_at) SELECT id, 'hold', 0, 0.25,"
            " balance, held, 'hold:' || %s, %s, 'chat', now() FROM billing_account WHERE id = %s",
            [key, hold_id, account_id],
        )


@pytest.mark.parametrize("same_account", [False, True])
async def test_a_lost_holds_settle_never_closes_the_hold_that_took_its_id(committed, same_account):
    lost_user = await run_db(make_user, "lostid", "1")
    other = lost_user if same_account else await run_db(make_user, "tookid", "1")
    key = uuid.uuid4().hex
    lost = await ledger.ahold(account_id=lost_user.account.pk, amount="0.10", idempotency_key=key)
    await run_db(lose_hold, lost.id)
    await run_db(_hold_taking_id, other.account.pk, lost.id)
    for together in (False, True):  # a settle alone, and one in a batch with another
        settles = [
            ledger.aclose(
                hold_id=lost.id,
                account_id=lost_user.account.pk,
                actual="0.04",
                usage=usage_row(lost_user, f"lost-{together}"),
                hold_key=key,
            )
        ]
        if together:
            kept = await ledger.ahold(
                account_id=other.account.pk, amount="0.05", idempotency_key=uuid.uuid4().hex
            )
            settles.append(
                ledger.aclose(hold_id=kept.id, account_id=other.account.pk, actual="0.05", hold_key=None)
            )
        outcomes = await asyncio.gather(*settles, return_exceptions=True)
        assert isinstance(outcomes[0], ledger.HoldLost), outcomes
    taken = await run_db(Hold.objects.get, pk=lost.id)
    assert (taken.status, taken.captured, taken.account_id) == (Hold.OPEN, 0, other.account.pk)
    account = await run_db(Account.objects.get, pk=other.account.pk)
    assert (account.balance, account.held) == (Decimal("0.95"), Decimal("0.25"))  # only its own settle
    logged = await run_db(lambda: list(UsageLog.objects.filter(request_id__startswith="lost-")))
    assert logged == []
    assert [m for m in await run_db(ledger.find_mismatches) if m.account_id == other.account.pk] == []


def test_a_reply_whose_hold_was_lost_is_refused_and_costs_nothing(api_server, committed, vendors):
    user = make_user("lostreply", "5")
    request_id = f"lost-{uuid.uuid4().hex[:12]}"
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "[[fault:slow_first_byte]] lose me"}]}
    headers = {"Authorization": f"Bearer {user.raw_key}", "x-request-id": request_id}
    usual, vendors["openai"].slow_seconds = vendors["openai"].slow_seconds, 5.0
    try:
        with ThreadPoolExecutor(1) as pool:
            call = pool.submit(
                httpx.post, f"{api_server}/v1/openai/chat/completions", json=body, headers=headers, timeout=60
            )
            deadline = time.monotonic() + 60
            while not vendors["openai"].requests:  # the hold is taken before the vendor is called
                assert time.monotonic() < deadline and not call.done(), "the request never reached the vendor"
                time.sleep(0.01)
            lose_hold(Hold.objects.get(request_id=request_id).pk)  # the database crashed meanwhile
            response = call.result()
    finally:
        vendors["openai"].slow_seconds = usual
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "service_unavailable" and "Echo" not in response.text
    account = Account.objects.get(pk=user.account.pk)
    assert (account.balance, account.held) == (Decimal("5"), 0)
    assert not LedgerEntry.objects.filter(account=user.account, kind="charge").exists()
    assert usage_rows(user) == []
    # the next request, its hold in place, is served and billed as ever
    ok = httpx.post(
        f"{api_server}/v1/openai/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello gateway"}]},
        headers={"Authorization": f"Bearer {user.raw_key}"},
        timeout=30,
    )
    assert ok.status_code == 200 and balance_of(user) < Decimal("5")
