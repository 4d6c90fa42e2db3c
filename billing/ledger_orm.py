"""The money engine on the ORM (any database; the embedded SQLite default). Rules: billing/outcomes.py.

Each operation is one durable transaction that locks the account row first (SQLite serialises
writers with BEGIN IMMEDIATE), then the key's spend row, the order every writer uses.
"""

from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import Account, Hold, KeySpend, LedgerEntry, UsageLog
from .money import ZERO, Amount, usd
from .outcomes import AlreadyClosed, Closed, HoldRef, HoldRequest, Refused, month_start

if TYPE_CHECKING:
    from accounts.models import User

DEBIT_IN_FULL = (LedgerEntry.REFUND, LedgerEntry.DISPUTE)
POSTABLE = (LedgerEntry.TOPUP, LedgerEntry.REFUND, LedgerEntry.ADJUSTMENT, LedgerEntry.DISPUTE)


def entry(
    account: Account,
    *,
    kind: str,
    amount: Decimal,
    held_delta: Decimal,
    key: str,
    hold: Hold | None = None,
    reason: str = "",
    created_by: "User | None" = None,
    shortfall: Decimal = ZERO,
) -> LedgerEntry:
    return LedgerEntry.objects.create(
        account=account,
        kind=kind,
        amount=amount,
        held_delta=held_delta,
        balance_after=account.balance,
        held_after=account.held,
        idempotency_key=key,
        hold=hold,
        reason=reason[:500],
        created_by=created_by,
        shortfall=shortfall,
    )


def _key_spend(key_id: int) -> KeySpend:
    """The key's spend row, locked; made on first use from this month's usage rows."""
    row = KeySpend.objects.select_for_update().filter(pk=key_id).first()
    if row is None:
        from django.db.models import Sum

        month = month_start()
        spent = (
            UsageLog.objects.filter(api_key_id=key_id, created_at__date__gte=month).aggregate(
                s=Sum("cost_usd")
            )["s"]
            or ZERO
        )
        row = KeySpend.objects.create(key_id=key_id, month=month, spent=usd(spent), held=ZERO)
    if row.month != month_start():
        row.month, row.spent = month_start(), ZERO
    return row


def hold(request: HoldRequest) -> HoldRef | Refused:
    existing = Hold.objects.filter(idempotency_key=request.key).first()
    if existing is not None:
        return HoldRef(existing.pk, existing.account_id, existing.amount)
    try:
        with transaction.atomic(durable=True):
            account = Account.objects.select_for_update().get(pk=request.account_id)
            cap, key_id = request.cap, request.api_key_id  # HoldRequest: a cap comes with its key
            spend = _key_spend(key_id) if cap is not None and key_id is not None else None
            if account.available < request.amount:
                return Refused("balance", account.available)
            if spend is not None and cap is not None and spend.spent + spend.held + request.amount > cap:
                return Refused("cap", max(cap - spend.spent - spend.held, ZERO))
            account.held += request.amount
            account.save(update_fields=["held", "updated_at"])
            if spend is not None:
                spend.held += request.amount
                spend.save()
            h = Hold.objects.create(
                account=account,
                amount=request.amount,
                idempotency_key=request.key,
                purpose=request.purpose,
                request_id=request.request_id,
                api_key_id=request.api_key_id if spend is not None else None,
            )
            entry(
                account,
                kind=LedgerEntry.HOLD,
                amount=ZERO,
                held_delta=request.amount,
                key=f"hold:{request.key}",
                hold=h,
                reason=request.purpose,
            )
    except IntegrityError:
        existing = Hold.objects.filter(idempotency_key=request.key).first()
        if existing is None:
            raise
        return HoldRef(existing.pk, existing.account_id, existing.amount)
    return HoldRef(h.pk, h.account_id, h.amount)


def charge_for(actual: Decimal, held: Decimal, available: Decimal) -> Decimal:
    """What a settle takes: the actual cost up to the hold, the excess while `available` (the
    account's balance - held, this hold included) covers it."""
    if actual <= held:
        return actual
    return held + min(actual - held, max(available, ZERO))


def close(hold_id: int, actual: Amount, reason: str = "") -> Closed | AlreadyClosed:
    actual = max(usd(actual), ZERO)
    with transaction.atomic(durable=True):
        account_id = Hold.objects.filter(pk=hold_id).values_list("account_id", flat=True).get()
        account = Account.objects.select_for_update().get(pk=account_id)  # the account first, as everywhere
        h = Hold.objects.select_for_update().get(pk=hold_id)
        if h.status != Hold.OPEN:
            return AlreadyClosed(h.captured, account.available)
        charge = charge_for(actual, h.amount, account.available)
        account.balance -= charge
        account.held -= h.amount
        account.save(update_fields=["balance", "held", "updated_at"])
        _release_key_spend(h, charge)
        settled = charge > ZERO
        h.status, h.captured, h.closed_at = (
            (Hold.SETTLED if settled else Hold.RELEASED),
            charge,
            timezone.now(),
        )
        h.save(update_fields=["status", "captured", "closed_at"])
        kind, prefix = (LedgerEntry.CHARGE, "settle") if settled else (LedgerEntry.RELEASE, "release")
        entry(
            account,
            kind=kind,
            amount=-charge,
            held_delta=-h.amount,
            key=f"{prefix}:{h.idempotency_key}",
            hold=h,
            reason=reason or h.purpose,
        )
        shortfall = actual - charge
        if shortfall > ZERO:
            entry(
                account,
                kind=LedgerEntry.LOSS,
                amount=ZERO,
                held_delta=ZERO,
                key=f"loss:{h.idempotency_key}",
                hold=h,
                reason=reason or h.purpose,
                shortfall=shortfall,
            )
    return Closed(charge, shortfall, account.available)


def _release_key_spend(h: Hold, charge: Decimal) -> None:
    if h.api_key_id is None:
        return
    spend = KeySpend.objects.select_for_update().filter(pk=h.api_key_id).first()
    if spend is None:
        return
    if spend.month != month_start():
        spend.month, spend.spent = month_start(), ZERO
    spend.held = max(spend.held - h.amount, ZERO)
    spend.spent += charge
    spend.save()


def post(
    *,
    account_id: int,
    amount: Decimal,
    kind: str,
    idempotency_key: str,
    reason: str = "",
    created_by: "User | None" = None,
) -> LedgerEntry:
    existing = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
    if existing:
        return existing
    try:
        with transaction.atomic(durable=True):
            account = Account.objects.select_for_update().get(pk=account_id)
            if amount < ZERO and kind not in DEBIT_IN_FULL and -amount > max(account.available, ZERO):
                capped = max(account.available, ZERO)
                reason = f"{reason} (debit {amount} capped at available {capped})".strip()
                amount = -capped
            account.balance += amount
            account.save(update_fields=["balance", "updated_at"])
            return entry(
                account,
                kind=kind,
                amount=amount,
                held_delta=ZERO,
                key=idempotency_key,
                reason=reason,
                created_by=created_by,
            )
    except IntegrityError:
        return LedgerEntry.objects.get(idempotency_key=idempotency_key)
