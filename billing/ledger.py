"""Every operation that moves money. Each is one short transaction and idempotent by key.

Guarantees: no operation takes a balance below its held amount or below zero (the check
runs under a row lock, and the database constraints back it up); every hold ends exactly
once (settled or released); every entry is written in the same transaction as the cached
balance it changes.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from . import pg_ledger
from .models import Account, Hold, LedgerEntry
from .money import ZERO, usd

log = logging.getLogger("gpuniq.ledger")


class InsufficientBalance(Exception):
    def __init__(self, required: Decimal, available: Decimal):
        self.required = required
        self.available = available
        super().__init__(f"required {required}, available {available}")


@dataclass(frozen=True)
class HoldRef:
    """What a paid path keeps between hold and settle."""

    id: int
    account_id: int
    amount: Decimal


def account_for_user(user_id: int) -> Account:
    account, _ = Account.objects.get_or_create(user_id=user_id)
    return account


def _entry(account: Account, *, kind: str, amount: Decimal, held_delta: Decimal, key: str,
           hold: Hold | None = None, reason: str = "", created_by=None) -> LedgerEntry:
    return LedgerEntry.objects.create(
        account=account, kind=kind, amount=amount, held_delta=held_delta,
        balance_after=account.balance, held_after=account.held, idempotency_key=key,
        hold=hold, reason=reason[:500], created_by=created_by,
    )


def hold(*, account_id: int, amount, idempotency_key: str, purpose: str = "chat", request_id: str = "") -> HoldRef:
    """Reserve `amount`; raises InsufficientBalance if balance - held < amount. Same key → same hold."""
    amount = usd(amount)
    if amount < ZERO:
        raise ValueError("hold amount must not be negative")
    if connection.vendor == "postgresql":
        return _pg_hold(account_id, amount, idempotency_key, purpose, request_id)
    try:
        with transaction.atomic(durable=True):
            account = Account.objects.select_for_update().get(pk=account_id)
            if account.available < amount:
                raise InsufficientBalance(amount, account.available)
            account.held += amount
            account.save(update_fields=["held", "updated_at"])
            h = Hold.objects.create(account=account, amount=amount, idempotency_key=idempotency_key,
                                    purpose=purpose, request_id=request_id)
            _entry(account, kind=LedgerEntry.HOLD, amount=ZERO, held_delta=amount, key=f"hold:{idempotency_key}",
                   hold=h, reason=purpose)
    except IntegrityError:
        existing = Hold.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        h = existing
    return HoldRef(id=h.pk, account_id=h.account_id, amount=h.amount)


def settle(*, hold_id: int, actual, reason: str = "") -> Decimal | None:
    """Charge the actual cost and release the rest of the hold, once.

    The charge may exceed the hold only by what the account can still afford (it never goes
    below zero). Returns the amount charged, or None when the hold was already closed.
    """
    actual = usd(actual)
    if connection.vendor == "postgresql":
        return _pg_settle(hold_id, actual, reason)[0]
    if actual <= ZERO:
        release(hold_id=hold_id, reason=reason or "nothing delivered")
        return ZERO if actual == ZERO else None
    with transaction.atomic(durable=True):
        h = Hold.objects.select_for_update().get(pk=hold_id)
        if h.status != Hold.OPEN:
            return None
        account = Account.objects.select_for_update().get(pk=h.account_id)
        charge = min(actual, h.amount + account.available)
        if charge < actual:
            log.warning("hold %s under-reserved: actual %s, charged %s", hold_id, actual, charge)
        account.balance -= charge
        account.held -= h.amount
        account.save(update_fields=["balance", "held", "updated_at"])
        h.status, h.captured, h.closed_at = Hold.SETTLED, charge, timezone.now()
        h.save(update_fields=["status", "captured", "closed_at"])
        _entry(account, kind=LedgerEntry.CHARGE, amount=-charge, held_delta=-h.amount,
               key=f"settle:{h.idempotency_key}", hold=h, reason=reason or h.purpose)
    return charge


def release(*, hold_id: int, reason: str = "") -> bool:
    """Give the whole hold back, once. Returns False when it was already closed."""
    if connection.vendor == "postgresql":
        return _pg_settle(hold_id, ZERO, reason)[0] is not None
    with transaction.atomic(durable=True):
        h = Hold.objects.select_for_update().get(pk=hold_id)
        if h.status != Hold.OPEN:
            return False
        account = Account.objects.select_for_update().get(pk=h.account_id)
        account.held -= h.amount
        account.save(update_fields=["held", "updated_at"])
        h.status, h.closed_at = Hold.RELEASED, timezone.now()
        h.save(update_fields=["status", "closed_at"])
        _entry(account, kind=LedgerEntry.RELEASE, amount=ZERO, held_delta=-h.amount,
               key=f"release:{h.idempotency_key}", hold=h, reason=reason)
    return True


def _existing_hold(idempotency_key: str) -> HoldRef:
    h = Hold.objects.get(idempotency_key=idempotency_key)
    return HoldRef(id=h.pk, account_id=h.account_id, amount=h.amount)


def _pg_hold(account_id: int, amount: Decimal, key: str, purpose: str, request_id: str) -> HoldRef:
    params = pg_ledger.hold_params(account_id=account_id, amount=amount, key=key, purpose=purpose,
                                   request_id=request_id)
    try:
        with transaction.atomic() if connection.in_atomic_block else _no_block():
            with connection.cursor() as cursor:
                hold_id = pg_ledger.hold_with_cursor(cursor, params)
                if hold_id is None:
                    raise InsufficientBalance(amount, pg_ledger.available_with_cursor(cursor, account_id))
    except IntegrityError:
        return _existing_hold(key)
    return HoldRef(id=hold_id, account_id=account_id, amount=amount)


def _pg_settle(hold_id: int, actual: Decimal, reason: str) -> tuple[Decimal | None, Decimal | None]:
    with connection.cursor() as cursor:
        return pg_ledger.settle_with_cursor(cursor, pg_ledger.settle_params(hold_id=hold_id, actual=actual,
                                                                           reason=reason))


class _no_block:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# --- async (the hot path) -------------------------------------------------------------------

async def ahold(*, account_id: int, amount, idempotency_key: str, purpose: str = "chat",
                request_id: str = "", release_if_abandoned: bool = False) -> HoldRef:
    """hold() for the event loop: on PostgreSQL one statement, grouped with concurrent holds
    (billing/pg_async.py); elsewhere the sync path in a thread. `release_if_abandoned`: the key
    is this request's own, so a hold that lands after the caller was cancelled is released."""
    from gpuniq_site.db import run_db, uses_postgres

    amount = usd(amount)
    if not uses_postgres():
        return await run_db(hold, account_id=account_id, amount=amount, idempotency_key=idempotency_key,
                            purpose=purpose, request_id=request_id)
    from . import pg_async

    params = pg_ledger.hold_params(account_id=account_id, amount=amount, key=idempotency_key, purpose=purpose,
                                   request_id=request_id)
    outcome = await pg_async.hold({**params, "release_if_abandoned": release_if_abandoned})
    if isinstance(outcome, pg_async.Refused):
        raise InsufficientBalance(amount, outcome.available)
    return HoldRef(id=outcome, account_id=account_id, amount=amount)


async def asettle(*, hold_id: int, account_id: int, actual, reason: str = "", also: tuple[str, dict] | None = None,
                  also_cte: str | None = None) -> tuple[Decimal | None, Decimal | None]:
    """settle() for the event loop. Returns (charged or None if already closed, available after);
    available is None on SQLite, where callers read it separately.

    `also` is one more statement (SQL, params) run right after the settle in the same round trip
    — the usage row, which reads the charge from billing_hold.captured and writes only for a
    closed hold, so it is written once. `also_cte`, the same write as a CTE over the closed hold
    `h`, lets a lone settle carry it in its own statement (billing.pg_ledger.settle_sql).
    """
    from gpuniq_site.db import run_db, uses_postgres

    if not uses_postgres():
        return await run_db(settle, hold_id=hold_id, actual=actual, reason=reason), None
    from . import pg_async

    params = pg_ledger.settle_params(hold_id=hold_id, actual=actual, reason=reason)
    return await pg_async.settle(pg_async.SettleItem(params, account_id, also, also_cte))


def post(*, account_id: int, amount, kind: str, idempotency_key: str, reason: str = "",
         created_by=None) -> LedgerEntry:
    """Add (amount > 0) or take (amount < 0) money outside a hold: top-ups, refunds, adjustments.

    A debit never takes the balance below what is held; the shortfall is noted in the reason.
    Same key → the existing entry, nothing moved twice.
    """
    amount = usd(amount)
    if kind not in (LedgerEntry.TOPUP, LedgerEntry.REFUND, LedgerEntry.ADJUSTMENT):
        raise ValueError(f"post() does not write {kind} entries")
    existing = LedgerEntry.objects.filter(idempotency_key=idempotency_key).first()
    if existing:
        return existing
    try:
        with transaction.atomic(durable=True):
            account = Account.objects.select_for_update().get(pk=account_id)
            if amount < ZERO and -amount > account.available:
                reason = f"{reason} (debit {amount} capped at available {account.available})".strip()
                amount = -account.available
            account.balance += amount
            account.save(update_fields=["balance", "updated_at"])
            return _entry(account, kind=kind, amount=amount, held_delta=ZERO, key=idempotency_key,
                          reason=reason, created_by=created_by)
    except IntegrityError:
        return LedgerEntry.objects.get(idempotency_key=idempotency_key)


def release_stale_holds(*, older_than_seconds: int) -> int:
    """Release holds left open by a crashed process. Returns how many were released."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(Hold.objects.filter(status=Hold.OPEN, created_at__lt=cutoff).values_list("pk", flat=True))
    return sum(1 for hold_id in ids if release(hold_id=hold_id, reason="stale hold released"))


@dataclass(frozen=True)
class Mismatch:
    account_id: int
    field: str
    cached: Decimal
    from_entries: Decimal


def find_mismatches() -> list[Mismatch]:
    """Re-add every account's entries and open holds; any difference from the cached columns is a bug."""
    from django.db.models import Sum, Value
    from django.db.models.functions import Coalesce

    zero = Value(ZERO)
    sums = {
        row["account_id"]: row
        for row in LedgerEntry.objects.values("account_id").annotate(
            amount_sum=Coalesce(Sum("amount"), zero), held_sum=Coalesce(Sum("held_delta"), zero))
    }
    open_holds = {
        row["account_id"]: row["total"]
        for row in Hold.objects.filter(status=Hold.OPEN).values("account_id").annotate(total=Sum("amount"))
    }
    problems = []
    for account in Account.objects.all().order_by("pk"):
        row = sums.get(account.pk, {"amount_sum": ZERO, "held_sum": ZERO})
        checks = [("balance", account.balance, usd(row["amount_sum"])),
                  ("held", account.held, usd(row["held_sum"])),
                  ("open_holds", account.held, usd(open_holds.get(account.pk, ZERO)))]
        problems += [Mismatch(account.pk, f, c, e) for f, c, e in checks if usd(c) != e]
        if account.balance < ZERO or account.held < ZERO or account.balance < account.held:
            problems.append(Mismatch(account.pk, "negative", account.balance, account.held))
    return problems
