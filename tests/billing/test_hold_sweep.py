"""Open holds without an index on their status (billing/hold_sweep.py): closing a hold rewrites no
index, yet every stale hold is still released, however its id sits against the sweep's mark, and
the count of open holds stays exact."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from billing import job_holds, ledger
from billing.models import STALE_SWEEP, Hold, SweepMark, job_sweep
from billing.outcomes import HoldRequest
from gpuniq_site.db import _conninfo

from ..conftest import balance_of, make_user


def _hold(user, amount: str = "0.10", purpose: str = "chat") -> int:
    return ledger.hold(
        account_id=user.account.pk, amount=amount, idempotency_key=uuid.uuid4().hex, purpose=purpose
    ).id


def _age(hold_id: int, seconds: float = 3600) -> None:
    Hold.objects.filter(pk=hold_id).update(created_at=timezone.now() - timedelta(seconds=seconds))


def _status(hold_id: int) -> str:
    return Hold.objects.get(pk=hold_id).status


def _below(kind: str) -> int:
    return SweepMark.objects.get(name=kind).below


def _sweep(older_than_seconds: int = 900) -> int:
    """The stale-hold sweep; with 0, every open hold it reads is stale (other tests' too)."""
    return ledger.release_stale_holds(older_than_seconds=older_than_seconds)


@pytest.mark.postgres
def test_closing_a_hold_writes_no_index_entry(alice):
    """The settle's update of the hold is HOT: an index on status (or captured, closed_at) would
    make PostgreSQL write a new entry in every index of the table for each paid request."""
    with transaction.atomic():
        holds = [_hold(alice) for _ in range(3)]
        ledger.settle(hold_id=holds[0], actual="0.04")
        ledger.release(hold_id=holds[1])
        ledger.settle(hold_id=holds[2], actual="0.25")  # above the hold: a loss entry too
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_stat_get_xact_tuples_updated(t), pg_stat_get_xact_tuples_hot_updated(t)"
                " FROM (SELECT 'billing_hold'::regclass AS t) AS hold_table"
            )
            updated, hot = cursor.fetchone()
    assert (updated, hot) == (3, 3)
    assert [_status(h) for h in holds] == [Hold.SETTLED, Hold.RELEASED, Hold.SETTLED]


def test_stale_holds_are_released_across_sweeps_and_the_mark_follows_the_oldest_open_one(alice):
    young, old = _hold(alice), _hold(alice)
    _age(old)
    done = _hold(alice)
    ledger.settle(hold_id=done, actual="0.01")

    assert _sweep() >= 1
    assert (_status(old), _status(young)) == (Hold.RELEASED, Hold.OPEN)
    _sweep()  # the second sweep may move the mark, never past the young hold its request holds
    assert _below(STALE_SWEEP) <= young

    _age(young)  # its process died after all
    later = _hold(alice)
    _age(later, 10 * 86400)  # however old its time says it is, its id is above the mark
    _sweep()
    assert (_status(young), _status(later)) == (Hold.RELEASED, Hold.RELEASED)
    _sweep(0)
    _sweep(0)
    assert _below(STALE_SWEEP) > later  # nothing open is left behind it
    assert balance_of(alice) == Decimal("9.99")
    assert ledger.find_mismatches() == []


@pytest.mark.postgres
def test_a_hold_committed_after_a_sweep_read_is_still_released(alice):
    """A hold whose statement drew its id before later holds committed, but committed after them:
    the sweeps that ran meanwhile could not see it, so the mark stays below it until it is seen."""
    import psycopg

    from billing import pg_ledger

    bob = make_user("bob", "1")
    with psycopg.connect(_conninfo()) as slow:  # a request whose hold statement takes its time
        with slow.transaction():
            request = HoldRequest(account_id=alice.account.pk, amount=Decimal("0.50"), key=uuid.uuid4().hex)
            [late] = slow.execute(pg_ledger.HOLD_SQL, pg_ledger.hold_params(request)).fetchone()
            after = _hold(bob)  # a later id, committed first
            ledger.settle(hold_id=after, actual="0.01")
            _sweep(0)
            _sweep(0)  # without the wait for older transactions, this mark would pass `late`
            assert _below(STALE_SWEEP) <= late
    _sweep(0)
    assert _status(late) == Hold.RELEASED
    _sweep(0)
    assert _below(STALE_SWEEP) > after  # with nothing in flight, the mark moves on
    assert balance_of(alice) == Decimal("10")
    assert ledger.find_mismatches() == []


def test_a_job_hold_owned_by_its_job_holds_the_job_mark_and_an_orphan_is_released(committed):
    from llm.models import ChatJob

    olga = make_user("olga", "5")
    owned, orphan = _hold(olga, purpose="chat_job"), _hold(olga, purpose="chat_job")
    ChatJob.objects.create(user=olga, hold_id=owned, request={}, request_id="job-owner")
    _age(owned), _age(orphan)
    owners = ChatJob.objects.values("hold_id")

    for _ in range(2):
        job_holds.release_unowned(purposes=("chat_job",), owned_hold_ids=owners)
    assert (_status(owned), _status(orphan)) == (Hold.OPEN, Hold.RELEASED)
    assert _below(job_sweep("chat_job")) <= owned  # an unread job may keep its money long
    _sweep(0)
    assert _status(owned) == Hold.OPEN  # the generic sweep never touches it


def test_the_count_of_open_holds_is_exact_whatever_the_marks(committed):
    pia = make_user("pia", "5")
    holds = [_hold(pia, purpose=p) for p in ("chat", "chat", "image_job", "video_job", "chat_job")]
    ledger.release(hold_id=holds[1])
    for _ in range(2):
        _sweep()
        for purpose in Hold.JOB_PURPOSES:
            job_holds.release_unowned(purposes=(purpose,), owned_hold_ids=Hold.objects.values("pk"))
        assert Hold.objects.count_open() == Hold.objects.filter(status=Hold.OPEN).count()
    for hold_id in holds:
        ledger.release(hold_id=hold_id)
    assert Hold.objects.count_open() == Hold.objects.filter(status=Hold.OPEN).count()
