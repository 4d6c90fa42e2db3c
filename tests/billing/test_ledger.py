"""The ledger: holds, settlements, releases, postings, and the check that re-adds them."""

from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing import ledger
from billing.models import Account, Hold, LedgerEntry

pytestmark = pytest.mark.django_db


def balance_of(user) -> tuple[Decimal, Decimal]:
    account = Account.objects.get(pk=user.account.pk)
    return account.balance, account.held


def test_hold_reserves_and_settle_charges_actual_and_releases_rest(alice):
    h = ledger.hold(account_id=alice.account.pk, amount="1.5", idempotency_key="req-1")
    assert balance_of(alice) == (Decimal("10"), Decimal("1.5"))

    charged = ledger.settle(hold_id=h.id, actual="0.25")

    assert charged == Decimal("0.25")
    assert balance_of(alice) == (Decimal("9.75"), Decimal("0"))
    kinds = list(
        LedgerEntry.objects.filter(account=alice.account).order_by("id").values_list("kind", "amount")
    )
    assert kinds == [("topup", Decimal("10")), ("hold", Decimal("0")), ("charge", Decimal("-0.25"))]
    assert ledger.find_mismatches() == []


def test_hold_refused_when_available_balance_is_short(alice):
    ledger.hold(account_id=alice.account.pk, amount="9", idempotency_key="big")
    with pytest.raises(ledger.InsufficientBalance) as caught:
        ledger.hold(account_id=alice.account.pk, amount="1.00000001", idempotency_key="too-much")
    assert caught.value.available == Decimal("1")
    assert not Hold.objects.filter(idempotency_key="too-much").exists()
    assert balance_of(alice) == (Decimal("10"), Decimal("9"))


def test_same_idempotency_key_returns_the_same_hold(alice):
    first = ledger.hold(account_id=alice.account.pk, amount="2", idempotency_key="retry-me")
    again = ledger.hold(account_id=alice.account.pk, amount="2", idempotency_key="retry-me")
    assert first == again
    assert balance_of(alice) == (Decimal("10"), Decimal("2"))


def test_settle_and_release_happen_once(alice):
    h = ledger.hold(account_id=alice.account.pk, amount="1", idempotency_key="once")
    assert ledger.settle(hold_id=h.id, actual="0.5") == Decimal("0.5")
    assert ledger.settle(hold_id=h.id, actual="0.5") is None
    assert ledger.release(hold_id=h.id) is False
    assert balance_of(alice) == (Decimal("9.5"), Decimal("0"))


def test_zero_cost_settles_as_a_release_and_charges_nothing(alice):
    h = ledger.hold(account_id=alice.account.pk, amount="1", idempotency_key="nothing-delivered")
    assert ledger.settle(hold_id=h.id, actual="0") == Decimal("0")
    assert Hold.objects.get(pk=h.id).status == Hold.RELEASED
    assert balance_of(alice) == (Decimal("10"), Decimal("0"))


def test_a_bill_above_the_hold_is_charged_while_the_balance_covers_it_and_the_rest_is_a_loss(alice):
    h = ledger.hold(account_id=alice.account.pk, amount="1", idempotency_key="under-reserved")
    ledger.post(
        account_id=alice.account.pk, amount="-8.5", kind=LedgerEntry.ADJUSTMENT, idempotency_key="spend"
    )
    # balance 1.5, held 1: the hold plus the 0.5 available is charged; the other 1.5 is the platform's loss
    outcome = ledger.close(hold_id=h.id, actual="3")
    assert outcome == ledger.Closed(charged=Decimal("1.5"), shortfall=Decimal("1.5"), available=Decimal("0"))
    assert balance_of(alice) == (Decimal("0"), Decimal("0"))
    loss = LedgerEntry.objects.get(account=alice.account, kind=LedgerEntry.LOSS)
    assert (loss.amount, loss.held_delta, loss.shortfall, loss.hold_id) == (0, 0, Decimal("1.5"), h.id)
    assert ledger.find_mismatches() == []


def test_a_refund_debits_in_full_while_money_is_held_and_then_holds_are_refused(alice):
    ledger.hold(account_id=alice.account.pk, amount="4", idempotency_key="in-flight")
    entry = ledger.post(
        account_id=alice.account.pk, amount="-10", kind=LedgerEntry.REFUND, idempotency_key="stripe-refund"
    )
    assert entry.amount == Decimal("-10") and "capped" not in entry.reason
    assert balance_of(alice) == (Decimal("0"), Decimal("4"))
    with pytest.raises(ledger.InsufficientBalance) as refused:
        ledger.hold(account_id=alice.account.pk, amount="0.01", idempotency_key="after-refund")
    assert refused.value.available == Decimal("-4")
    assert ledger.find_mismatches() == []  # below held, but only because a refund took it back


def test_a_lost_dispute_can_take_the_balance_below_zero_and_a_won_one_gives_it_back(alice):
    ledger.post(
        account_id=alice.account.pk, amount="-6", kind=LedgerEntry.ADJUSTMENT, idempotency_key="spent"
    )
    ledger.post(
        account_id=alice.account.pk, amount="-10", kind=LedgerEntry.DISPUTE, idempotency_key="dp_1:lost"
    )
    assert balance_of(alice) == (Decimal("-6"), Decimal("0"))
    assert ledger.find_mismatches() == []
    ledger.post(
        account_id=alice.account.pk, amount="10", kind=LedgerEntry.DISPUTE, idempotency_key="dp_1:won"
    )
    assert balance_of(alice) == (Decimal("4"), Decimal("0"))


def test_an_adjustment_debit_stops_at_what_is_available(alice):
    ledger.hold(account_id=alice.account.pk, amount="4", idempotency_key="in-flight")
    entry = ledger.post(
        account_id=alice.account.pk,
        amount="-100",
        kind=LedgerEntry.ADJUSTMENT,
        idempotency_key="operator-debit",
    )
    assert entry.amount == Decimal("-6") and "capped" in entry.reason
    assert balance_of(alice) == (Decimal("4"), Decimal("4"))


def test_a_balance_below_held_without_a_claw_back_is_reported(alice):
    Account.objects.filter(pk=alice.account.pk).update(balance=Decimal("-1"))
    LedgerEntry.objects.create(
        account=alice.account,
        kind=LedgerEntry.ADJUSTMENT,
        amount=Decimal("-11"),
        balance_after=Decimal("-1"),
        held_after=0,
        idempotency_key="forged",
    )
    assert [m.field for m in ledger.find_mismatches() if m.account_id == alice.account.pk] == ["negative"]


def test_posting_twice_with_one_key_moves_money_once(alice):
    ledger.post(account_id=alice.account.pk, amount="5", kind=LedgerEntry.TOPUP, idempotency_key="evt_1")
    ledger.post(account_id=alice.account.pk, amount="5", kind=LedgerEntry.TOPUP, idempotency_key="evt_1")
    assert balance_of(alice)[0] == Decimal("15")


def test_entries_are_immutable(alice):
    entry = LedgerEntry.objects.filter(account=alice.account).first()
    entry.reason = "rewritten"
    with pytest.raises(ValueError):
        entry.save()
    with pytest.raises(ValueError):
        entry.delete()


def test_stale_holds_are_released_and_their_requests_logged_as_interrupted(alice):
    from billing.models import UsageLog

    h = ledger.hold(
        account_id=alice.account.pk,
        amount="3",
        idempotency_key="crashed",
        purpose="chat",
        request_id="req_killed_process",
    )
    Hold.objects.filter(pk=h.id).update(created_at="2020-01-01T00:00:00Z")
    fresh = ledger.hold(account_id=alice.account.pk, amount="1", idempotency_key="fresh")
    call_command("release_stale_holds", "--older-than", "60")
    call_command("release_stale_holds", "--older-than", "60")  # a second sweep finds nothing more to log
    assert Hold.objects.get(pk=h.id).status == Hold.RELEASED
    assert Hold.objects.get(pk=fresh.id).status == Hold.OPEN
    assert balance_of(alice) == (Decimal("10"), Decimal("1"))
    [row] = UsageLog.objects.filter(user_id=alice.pk)
    assert (row.request_id, row.endpoint, row.status, row.cost_usd) == (
        "req_killed_process",
        "chat",
        "interrupted",
        0,
    )


def test_check_ledger_passes_then_reports_a_tampered_balance(alice, bob, capsys):
    call_command("check_ledger")
    assert "ledger OK" in capsys.readouterr().out
    Account.objects.filter(pk=bob.account.pk).update(balance=Decimal("11"))
    with pytest.raises(CommandError):
        call_command("check_ledger")
    out = capsys.readouterr().out
    assert f"account {bob.account.pk}: balance cached=11" in out
    assert f"account {alice.account.pk}" not in out


def test_usd_rounds_half_up_to_eight_places():
    from billing.money import usd

    assert usd("0.000000005") == Decimal("0.00000001")
    assert usd("0.0000000049") == Decimal("0")
    assert usd(0.1) == Decimal("0.1")
