"""Hundreds of concurrent paid requests against a balance that covers only some of them."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection

from billing import ledger
from billing.models import Account, Hold

from .conftest import make_user

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
