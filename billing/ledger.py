"""Every operation that moves money, for every caller. The rules are billing/outcomes.py's; the
storage adapter is the PostgreSQL statements (billing/pg_ledger.py, billing/pg_async.py) on
PostgreSQL and the ORM (billing/ledger_orm.py) elsewhere.

Guarantees: no hold is taken past the available balance or a key's monthly cap; every hold ends
exactly once (settled or released), charging at most what was held plus what the balance still
covers, the rest written as a loss; every entry is written in the same transaction as the cached
amounts it changes; only refund and dispute debits can take a balance below zero.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from . import ledger_orm, pg_ledger
from .models import STALE_SWEEP, STRUCTURAL_REFERENCES, Account, Hold, LedgerEntry
from .money import ZERO, Amount, usd
from .outcomes import (
    AlreadyClosed,
    Closed,
    CloseOutcome,
    HoldLost,
    HoldRef,
    HoldRequest,
    InsufficientBalance,
    Refused,
    SpendCapReached,
    refusal_error,
)

if TYPE_CHECKING:
    from accounts.models import User

log = logging.getLogger("gpuniq.ledger")

__all__ = [
    "AlreadyClosed",
    "Closed",
    "HoldLost",
    "HoldRef",
    "InsufficientBalance",
    "SpendCapReached",
    "account_for_user",
    "hold",
    "close",
    "settle",
    "release",
    "post",
    "ahold",
    "start_ahold",
    "StartedHold",
    "aclose",
    "asettle",
    "release_stale_holds",
    "find_mismatches",
]


def account_for_user(user_id: int) -> Account:
    account, _ = Account.objects.get_or_create(user_id=user_id)
    return account


def _on_postgres() -> bool:
    return connection.vendor == "postgresql"


def hold(
    *,
    account_id: int,
    amount: Amount,
    idempotency_key: str,
    purpose: str = "chat",
    request_id: str = "",
    api_key_id: int | None = None,
    cap: Decimal | None = None,
) -> HoldRef:
    """Reserve `amount`; raises InsufficientBalance, or SpendCapReached when the key's monthly
    `cap` (settled spend + open holds + amount) would be passed. Same key → same hold."""
    return _hold(_hold_request(account_id, amount, idempotency_key, purpose, request_id, api_key_id, cap))


def _hold(request: HoldRequest) -> HoldRef:
    if _on_postgres():
        try:
            with transaction.atomic(), connection.cursor() as cursor:  # a savepoint inside a caller's block
                outcome = pg_ledger.hold(cursor, request)
        except IntegrityError:
            with connection.cursor() as cursor:
                existing = pg_ledger.existing_hold(cursor, request.key)
            if existing is None:  # the violation was not this key's: there is no hold to return
                raise
            outcome = existing
    else:
        outcome = ledger_orm.hold(request)
    if isinstance(outcome, Refused):
        raise refusal_error(request, outcome)
    return outcome


def _hold_request(
    account_id: int,
    amount: Amount,
    key: str,
    purpose: str,
    request_id: str,
    api_key_id: int | None,
    cap: Decimal | None,
) -> HoldRequest:
    amount = usd(amount)
    if amount < ZERO:
        raise ValueError("hold amount must not be negative")
    return HoldRequest(
        account_id=account_id,
        amount=amount,
        key=key,
        purpose=purpose,
        request_id=request_id,
        api_key_id=api_key_id,
        cap=usd(cap) if cap is not None else None,
    )


def close(*, hold_id: int, actual: Amount, reason: str = "") -> CloseOutcome:
    """Close the hold once: Closed (charged, shortfall written as a loss) or AlreadyClosed."""
    if _on_postgres():
        with connection.cursor() as cursor:
            return pg_ledger.close(cursor, hold_id, actual, reason)
    return ledger_orm.close(hold_id, actual, reason)


def settle(*, hold_id: int, actual: Amount, reason: str = "") -> Decimal | None:
    """close() for callers that need only the charge: None when the hold was already closed."""
    outcome = close(hold_id=hold_id, actual=actual, reason=reason)
    return outcome.charged if isinstance(outcome, Closed) else None


def release(*, hold_id: int, reason: str = "") -> bool:
    """Give the whole hold back, once. Returns False when it was already closed."""
    return isinstance(close(hold_id=hold_id, actual=ZERO, reason=reason), Closed)


# --- async (the hot path) -------------------------------------------------------------------


async def ahold(
    *,
    account_id: int,
    amount: Amount,
    idempotency_key: str,
    purpose: str = "chat",
    request_id: str = "",
    api_key_id: int | None = None,
    cap: Decimal | None = None,
    release_if_abandoned: bool = False,
) -> HoldRef:
    """hold() for the event loop: on PostgreSQL one statement, grouped with concurrent holds
    (billing/pg_async.py); elsewhere the ORM in a thread. `release_if_abandoned`: the key is this
    request's own, so a hold that lands after the caller was cancelled is released."""
    from gpuniq_site.db import run_db, uses_postgres

    request = _hold_request(account_id, amount, idempotency_key, purpose, request_id, api_key_id, cap)
    if not uses_postgres():
        return await run_db(_hold, request)
    return await _start(request, release_if_abandoned).result()


@dataclass
class StartedHold:
    """A hold sent to PostgreSQL (grouped with concurrent ones) whose answer nobody awaited yet."""

    request: HoldRequest
    params: dict[str, Any]
    future: "asyncio.Future[int | Refused]"

    async def result(self) -> HoldRef:
        """The hold, or the refusal (InsufficientBalance, SpendCapReached)."""
        outcome = await self.future
        if isinstance(outcome, Refused):
            raise refusal_error(self.request, outcome)
        return HoldRef(id=outcome, account_id=self.request.account_id, amount=self.request.amount)

    def abandon(self) -> None:
        """Nobody will use the hold: it is released whenever it lands (release_if_abandoned)."""
        from . import pg_async

        pg_async.abandon_hold(self.params, self.future)


def start_ahold(
    *,
    account_id: int,
    amount: Amount,
    idempotency_key: str,
    purpose: str = "chat",
    request_id: str = "",
    api_key_id: int | None = None,
    cap: Decimal | None = None,
    release_if_abandoned: bool = False,
) -> StartedHold:
    """ahold() on PostgreSQL, sent in this step without waiting for its answer, so the caller can
    wait for something else meanwhile (llm.chat.hold_for: the request's admission)."""
    request = _hold_request(account_id, amount, idempotency_key, purpose, request_id, api_key_id, cap)
    return _start(request, release_if_abandoned)


def _start(request: HoldRequest, release_if_abandoned: bool) -> StartedHold:
    from . import pg_async

    params = {**pg_ledger.hold_params(request), "release_if_abandoned": release_if_abandoned}
    return StartedHold(request, params, pg_async.start_hold(params))


async def aclose(
    *,
    hold_id: int,
    account_id: int,
    actual: Amount,
    reason: str = "",
    usage: dict[str, Any] | None = None,
    hold_key: str | None = None,
) -> CloseOutcome:
    """close() for the event loop. On PostgreSQL `usage` (billing.metering.row_params, its cost
    what the hold captured) is the request's usage row, written with the settle in the same
    statement or round trip, once, by whichever statement closes the hold; elsewhere the caller
    writes it (metering.awrite). `hold_key`: the hold's idempotency key; with it, a hold the
    database lost (HoldLost) is told from another hold that was given its id since
    (pg_ledger.THIS_HOLD)."""
    from gpuniq_site.db import run_db, uses_postgres

    if not uses_postgres():
        return await run_db(close, hold_id=hold_id, actual=actual, reason=reason)
    from . import pg_async

    params = pg_ledger.settle_params(hold_id=hold_id, actual=actual, reason=reason, key=hold_key)
    return await pg_async.settle(pg_async.SettleItem(params, account_id, usage))


async def asettle(*, hold_id: int, account_id: int, actual: Amount, reason: str = "") -> Decimal | None:
    outcome = await aclose(hold_id=hold_id, account_id=account_id, actual=actual, reason=reason)
    return outcome.charged if isinstance(outcome, Closed) else None


def post(
    *,
    account_id: int,
    amount: Amount,
    kind: str,
    idempotency_key: str,
    reason: str = "",
    created_by: "User | None" = None,
) -> LedgerEntry:
    """Add (amount > 0) or take (amount < 0) money outside a hold: top-ups, refunds, disputes,
    adjustments. A refund or dispute debit takes its full amount, even while money is held (the
    balance may go below zero: new holds are then refused); an adjustment debit stops at what is
    available, the rest noted in the reason. Same key → the existing entry, nothing moved twice.
    Runs on the ORM on every database: it is never on the hot path."""
    amount = usd(amount)
    if kind not in ledger_orm.POSTABLE:
        raise ValueError(f"post() does not write {kind} entries")
    return ledger_orm.post(
        account_id=account_id,
        amount=amount,
        kind=kind,
        idempotency_key=idempotency_key,
        reason=reason,
        created_by=created_by,
    )


def release_stale_holds(*, older_than_seconds: int) -> int:
    """Release holds left open by a crashed process. Returns how many were released. Job holds
    are not touched: their job owns them (billing.job_holds). Each request whose process died is
    logged once, as an interrupted usage row at no cost, so the user and the operator see it."""
    from . import hold_sweep, metering

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    released = 0

    def close(rows: list[hold_sweep.OpenRow]) -> list[int]:
        nonlocal released
        young = []  # their requests may still be running; the rest are closed after this
        for row in rows:
            if row["created_at"] >= cutoff:
                young.append(row["pk"])
            elif release(hold_id=row["pk"], reason="stale hold released"):  # else closed meanwhile
                released += 1
                metering.write(
                    user_id=row["account__user_id"],
                    api_key_id=row["api_key_id"],
                    request_id=row["request_id"],
                    endpoint=row["purpose"],
                    model="",
                    cost_usd=0,
                    status="interrupted",
                    error_code="internal_error",
                    latency_ms=0,
                )
        return young

    hold_sweep.sweep(STALE_SWEEP, close)
    return released


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
            amount_sum=Coalesce(Sum("amount"), zero), held_sum=Coalesce(Sum("held_delta"), zero)
        )
    }
    open_holds = {
        row["account_id"]: row["total"]
        for row in Hold.objects.filter(status=Hold.OPEN).values("account_id").annotate(total=Sum("amount"))
    }
    clawed_back = set(
        LedgerEntry.objects.filter(kind__in=ledger_orm.DEBIT_IN_FULL, amount__lt=0).values_list(
            "account_id", flat=True
        )
    )
    problems = []
    for account in Account.objects.all().order_by("pk"):
        row = sums.get(account.pk, {"amount_sum": ZERO, "held_sum": ZERO})
        checks = [
            ("balance", account.balance, usd(row["amount_sum"])),
            ("held", account.held, usd(row["held_sum"])),
            ("open_holds", account.held, usd(open_holds.get(account.pk, ZERO))),
        ]
        problems += [Mismatch(account.pk, f, c, e) for f, c, e in checks if usd(c) != e]
        overdrawn = account.balance < ZERO or account.balance < account.held
        if account.held < ZERO or (overdrawn and account.pk not in clawed_back):  # only a claw-back may
            problems.append(Mismatch(account.pk, "negative", account.balance, account.held))
    return problems


@dataclass(frozen=True)
class Orphan:
    table: str
    row_id: int
    field: str
    points_to: int


def find_orphans(limit: int = 100) -> list[Orphan]:
    """Rows whose reference the database does not check (models.STRUCTURAL_REFERENCES) that point
    at no row: each would be a bug of the statement that wrote it. At most `limit` per reference."""
    from django.apps import apps
    from django.db.models import Exists, OuterRef

    found = []
    for model_name, field_name in STRUCTURAL_REFERENCES:
        model = apps.get_model("billing", model_name)
        column = model._meta.get_field(field_name)
        # NOT EXISTS, an anti-join: NOT IN (SELECT ...) is re-scanned per row once the ids outgrow work_mem
        target = column.related_model._default_manager.filter(pk=OuterRef(column.attname))
        rows = model._default_manager.filter(**{f"{column.attname}__isnull": False})
        rows = rows.filter(~Exists(target)).order_by("pk")
        found += [
            Orphan(model._meta.db_table, pk, field_name, ref)
            for pk, ref in rows.values_list("pk", column.attname)[:limit]
        ]
    return found
