"""Money moves of a top-up, shared by every rail (Stripe, YooKassa, BTCPay).

Every function here is idempotent by the ledger key it is given (the rail's own id for the payment,
refund or dispute), so a replayed, duplicated or reordered event never moves money twice. Status
changes are conditional updates that only move a top-up forwards.
"""

import logging
from decimal import Decimal

from django.db.models import F, Q, Sum
from django.utils import timezone

from . import ledger
from .models import LedgerEntry, TopUp
from .money import ZERO, Amount, usd

log = logging.getLogger("gpuniq.payments")
# The `purpose` in the metadata of every payment we create, on every rail: an event for a payment
# whose row we lost is rebuilt only when it carries this mark.
TOPUP_PURPOSE = "gpuniq_topup"


class UnusableEvent(Exception):
    """The event cannot be applied as it stands (say, a currency we do not sell in)."""


def topup_key(topup: TopUp) -> str:
    """The ledger key of a top-up's credit; a rail that credits in parts appends ":<part id>"."""
    return f"{topup.rail}-topup:{topup.session_id}"


def _account_id(topup: TopUp) -> int:
    return ledger.account_for_user(topup.user_id).pk


def credit(topup: TopUp, *, amount: Amount, key: str, reason: str) -> TopUp:
    """Credit `amount` USD once under `key` and mark the top-up paid. A zero or negative amount
    never becomes a top-up entry: it raises UnusableEvent instead."""
    amount = usd(amount)
    if amount <= ZERO:
        raise UnusableEvent(f"{topup.rail} top-up {topup.session_id}: refusing to credit {amount}")
    ledger.post(
        account_id=_account_id(topup),
        amount=amount,
        kind=LedgerEntry.TOPUP,
        idempotency_key=key,
        reason=reason,
    )
    # Cancelled/expired/failed → paid too: if the rail says the money arrived, the credit stands.
    TopUp.objects.filter(pk=topup.pk, status__in=TopUp.OPEN_STATUSES).update(
        status=TopUp.PAID, paid_at=timezone.now()
    )
    recount_credited(topup)
    topup.refresh_from_db()
    return topup


def recount_credited(topup: TopUp) -> Decimal:
    """`credited` is what the ledger holds for this top-up (one entry, or one per settled part)."""
    prefix = topup_key(topup)
    total = ledger_total(topup, prefix + ":") + ledger_total(topup, prefix, exact=True)
    TopUp.objects.filter(pk=topup.pk).update(credited=total)
    return total


def ledger_total(topup: TopUp, key: str, *, exact: bool = False) -> Decimal:
    """The sum of the owner's entries keyed `key` (exact) or starting with it."""
    match = Q(idempotency_key=key) if exact else Q(idempotency_key__startswith=key)
    entries = LedgerEntry.objects.filter(match, account_id=_account_id(topup))
    return entries.aggregate(total=Sum("amount"))["total"] or ZERO


def debit(topup: TopUp, *, amount: Amount, kind: str, key: str, reason: str) -> LedgerEntry | None:
    """Take back `amount` USD once under `key` (a refund or a lost dispute): the full amount, even
    while money is held, so the balance may go below zero (billing.ledger allows that for these kinds)."""
    amount = usd(amount)
    if amount <= ZERO:
        log.warning("%s top-up %s: ignoring a %s of %s", topup.rail, topup.session_id, kind, amount)
        return None
    return ledger.post(
        account_id=_account_id(topup), amount=-amount, kind=kind, idempotency_key=key, reason=reason
    )


def give_back(topup: TopUp, *, amount: Amount, kind: str, debit_key: str, key: str, reason: str) -> None:
    """Undo a debit (a refund that failed, a dispute that was won) once.

    Order-independent: the debit is written first if it never was (its event may arrive later, or
    not at all), so a stale event for the same refund or dispute can never debit it again."""
    amount = usd(amount)
    if amount <= ZERO:
        return
    taken = debit(
        topup,
        amount=amount,
        kind=kind,
        key=debit_key,
        reason=f"{reason} (debit recorded before its reversal)",
    )
    assert taken is not None  # amount > 0: debit wrote its entry or found it
    # Give back exactly what the debit entry took, whatever its event said.
    ledger.post(
        account_id=_account_id(topup), amount=-taken.amount, kind=kind, idempotency_key=key, reason=reason
    )


def refunded_total(topup: TopUp, total: Amount) -> None:
    """The row shows the highest refunded total the rail has reported; the ledger holds the money."""
    total = usd(total)
    TopUp.objects.filter(Q(refunded__lt=total), pk=topup.pk).update(refunded=total)
    # Refunded once all that was credited went back (a partly paid crypto invoice: what settled).
    TopUp.objects.filter(pk=topup.pk, status=TopUp.PAID, credited__gt=0, refunded__gte=F("credited")).update(
        status=TopUp.REFUNDED
    )


def close(topup: TopUp, status: str) -> bool:
    """A pending top-up that will not be paid (failed, cancelled, expired); nothing was credited."""
    if status not in (TopUp.FAILED, TopUp.CANCELLED, TopUp.EXPIRED):
        raise ValueError(f"close() does not set {status}")
    return bool(TopUp.objects.filter(pk=topup.pk, status=TopUp.PENDING).update(status=status))
