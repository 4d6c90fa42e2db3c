"""A user's money history as they see it: every ledger movement that concerns them.

Top-ups, refunds, disputes and operator adjustments are one row each, with their reason; API
charges are one row per local calendar day (their total and count), since a day can hold thousands.
Holds and releases move no money and are left out. Read-only: built from ledger entries only.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Max, Sum
from django.db.models.functions import TruncDate

from .models import Account, LedgerEntry
from .money import ZERO

MOVEMENTS = ("topup", "refund", "dispute", "adjustment")
LABELS = {
    "topup": "Top-up",
    "refund": "Refund",
    "dispute": "Dispute",
    "adjustment": "Adjustment by an operator",
    "charge": "API usage",
}


@dataclass(frozen=True)
class Row:
    when: datetime | date
    kind: str
    amount: Decimal
    balance_after: Decimal | None
    description: str

    @property
    def label(self) -> str:
        if self.kind == "dispute" and self.amount > 0:
            return "Dispute won"
        if self.kind == "refund" and self.amount > 0:
            return "Refund reversed"
        return LABELS.get(self.kind, self.kind)


def rows(user_id: int, zone: ZoneInfo, limit: int | None = None) -> list[Row]:
    """Newest first. With `limit`, at most that many of each sort (enough for a page)."""
    entries = LedgerEntry.objects.filter(account__user_id=user_id)
    moves = (
        entries.filter(kind__in=MOVEMENTS)
        .order_by("-id")
        .values("created_at", "kind", "amount", "balance_after", "reason")
    )
    days = (
        entries.filter(kind="charge")
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day")
        .annotate(total=Sum("amount"), n=Count("id"), last=Max("created_at"))
        .order_by("-day")
    )
    if limit:
        moves, days = moves[:limit], days[:limit]
    out = [Row(m["created_at"], m["kind"], m["amount"], m["balance_after"], m["reason"]) for m in moves]
    out += [
        Row(
            d["day"],
            "charge",
            d["total"],
            None,
            f"{d['n']} charge{'s' if d['n'] != 1 else ''} for requests and jobs",
        )
        for d in days
    ]
    out.sort(key=lambda r: _sort_key(r, zone), reverse=True)
    return out[:limit] if limit else out


def _sort_key(row: Row, zone: ZoneInfo) -> datetime:
    if isinstance(row.when, datetime):
        return row.when
    return datetime.combine(row.when, datetime.max.time(), tzinfo=zone)  # a day's charges after its events


def negative_balance(user_id: int) -> dict[str, Any] | None:
    """Why the balance is below zero (a refund or lost dispute taken in full while money was held),
    or None when it is not."""
    account = Account.objects.filter(user_id=user_id).only("balance", "held").first()
    if account is None or account.balance >= ZERO:
        return None
    taken_by = (
        LedgerEntry.objects.filter(account=account, kind__in=("refund", "dispute"), amount__lt=0)
        .order_by("-id")
        .values("kind", "amount", "reason", "created_at")
        .first()
    )
    cause = {**taken_by, "taken": -taken_by["amount"]} if taken_by else None
    return {"balance": account.balance, "owed": -account.balance, "cause": cause}
