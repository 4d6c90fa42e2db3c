"""Hundreds of concurrent paid requests against a balance that covers only some of them."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from billing import ledger
from billing.models import Account, Hold

from ..conftest import make_user

pytestmark = pytest.mark.postgres


def _one_request(account_id: int, barrier: threading.Barrier) -> str:
    barrier.wait()
    try:
        try:
            h = ledger.hold(account_id=account_id, amount="0.10", idempotency_key=f"c-{uuid.uuid4().hex}")
        except ledger.InsufficientBalance:
            return "refused"
        # a quarter of the accepted requests fail upstream and are released, the rest pay 0.07
        if h.id % 4 == 0:
            ledger.release(hold_id=h.id)
            return "released"
        ledger.settle(hold_id=h.id, actual="0.07")
        return "charged"
    finally:
        connection.close()


def test_200_concurrent_holds_never_overdraw_and_all_close(committed):
    user = make_user("carol", "5")  # pays for at most 50 holds of $0.10 at once
    workers = 200
    barrier = threading.Barrier(workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(lambda _: _one_request(user.account.pk, barrier), range(workers)))

    account = Account.objects.get(pk=user.account.pk)
    charged = outcomes.count("charged")
    assert outcomes.count("refused") > 0, "the balance should not cover every request"
    assert charged > 0
    assert account.held == Decimal("0")
    assert account.balance == Decimal("5") - Decimal("0.07") * charged
    assert account.balance >= 0
    assert not Hold.objects.filter(account=account, status=Hold.OPEN).exists()
    assert Hold.objects.filter(account=account).count() == workers - outcomes.count("refused")
    assert [m for m in ledger.find_mismatches() if m.account_id == account.pk] == []


def _capped_request(user, barrier: threading.Barrier, cap: Decimal, actual: str) -> str:
    barrier.wait()
    try:
        try:
            h = ledger.hold(
                account_id=user.account.pk,
                amount="0.03",
                idempotency_key=f"k-{uuid.uuid4().hex}",
                api_key_id=user.key.pk,
                cap=cap,
            )
        except ledger.SpendCapReached:
            return "capped"
        ledger.settle(hold_id=h.id, actual=actual)
        return "charged"
    finally:
        connection.close()


def test_a_monthly_cap_holds_exactly_under_200_concurrent_requests_on_two_paths(committed):
    """Threads on Django's connections and tasks on the async group-commit pool, at once: the key's
    settled spend never passes its cap, and its spend row ends with nothing held."""
    import asyncio

    from billing.models import KeySpend

    user = make_user("capper", "50")
    cap = Decimal("1.00")  # 33 holds of $0.03 fit at once; each pays its whole hold
    barrier = threading.Barrier(101)

    async def async_side() -> list[str]:
        async def one() -> str:
            try:
                h = await ledger.ahold(
                    account_id=user.account.pk,
                    amount="0.03",
                    api_key_id=user.key.pk,
                    cap=cap,
                    idempotency_key=f"a-{uuid.uuid4().hex}",
                )
            except ledger.SpendCapReached:
                return "capped"
            await ledger.asettle(hold_id=h.id, account_id=user.account.pk, actual="0.03")
            return "charged"

        await asyncio.to_thread(barrier.wait)
        return list(await asyncio.gather(*(one() for _ in range(100))))

    with ThreadPoolExecutor(max_workers=101) as pool:
        threads = [pool.submit(_capped_request, user, barrier, cap, "0.03") for _ in range(100)]
        outcomes = asyncio.run(async_side()) + [t.result() for t in threads]

    spend = KeySpend.objects.get(pk=user.key.pk)
    charged = outcomes.count("charged")
    assert outcomes.count("capped") > 0 and charged == 33  # $0.99 spent: a 34th would pass $1.00
    assert spend.spent == Decimal("0.03") * charged <= cap and spend.held == 0
    assert Account.objects.get(pk=user.account.pk).balance == Decimal("50") - spend.spent
    assert [m for m in ledger.find_mismatches() if m.account_id == user.account.pk] == []
