"""Usage numbers for the dashboard, aggregated in SQL.

Days are the user's calendar days (`User.time_zone`): the database truncates timestamps in that
zone, so a request at 23:30 in Tokyo counts for Tokyo's date, not UTC's.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from .models import UsageLog
from .money import ZERO

RANGES = (7, 30, 90)
STATUSES = ("ok", "error", "cancelled")
# Dates a filter may bound by: a local midnight a day from Python's date range may not exist in UTC
# (OverflowError); a bound out there is no bound (no row is that old, or that new).
FIRST_BOUND, LAST_BOUND = date.min + timedelta(days=2), date.max - timedelta(days=3)


@dataclass(frozen=True)
class Window:
    start: datetime  # aware: local midnight of the first day
    days: list[date]


def window(days: int, zone: ZoneInfo, now: datetime | None = None) -> Window:
    """The last `days` calendar days in `zone`, today included."""
    today = timezone.localtime(now or timezone.now(), zone).date()
    first = today - timedelta(days=days - 1)
    return Window(
        datetime.combine(first, time.min, tzinfo=zone), [first + timedelta(days=d) for d in range(days)]
    )


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone)


def daily_by_model(user_id: int, win: Window, zone: ZoneInfo) -> list[Mapping[str, Any]]:
    """One row per (local day, model): cost, tokens (prompt + completion) and requests."""
    return list(
        UsageLog.objects.filter(user_id=user_id, created_at__gte=win.start)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "model")
        .annotate(
            cost=Sum("cost_usd"),
            tokens=Sum(F("prompt_tokens") + F("completion_tokens")),
            requests=Count("id"),
        )
        .order_by("day", "model")
    )


def summary(user_id: int, since: datetime) -> dict[str, Any]:
    """Totals since a moment: spend, tokens, requests and failed requests."""
    totals = UsageLog.objects.filter(user_id=user_id, created_at__gte=since).aggregate(
        cost=Coalesce(Sum("cost_usd"), ZERO),
        requests=Count("id"),
        tokens=Coalesce(Sum(F("prompt_tokens") + F("completion_tokens")), 0),
        errors=Count("id", filter=Q(status="error")),
    )
    totals["error_rate"] = totals["errors"] / totals["requests"] if totals["requests"] else 0.0
    totals["avg_cost"] = totals["cost"] / totals["requests"] if totals["requests"] else ZERO
    return totals


def requests_for(
    user_id: int,
    *,
    zone: ZoneInfo,
    model: str = "",
    key_id: int | None = None,
    status: str = "",
    date_from: date | None = None,
    date_to: date | None = None,
) -> "QuerySet[UsageLog]":
    """The user's usage rows, newest first, narrowed by the table's filters (dates are local, inclusive)."""
    rows = UsageLog.objects.filter(user_id=user_id).select_related("api_key").order_by("-created_at", "-id")
    if model:
        rows = rows.filter(model=model)
    if key_id:
        rows = rows.filter(api_key_id=key_id)
    if status:
        rows = rows.filter(status=status)
    if date_from and date_from >= FIRST_BOUND:
        rows = rows.filter(created_at__gte=local_midnight(date_from, zone))
    if date_to and date_to <= LAST_BOUND:
        rows = rows.filter(created_at__lt=local_midnight(date_to + timedelta(days=1), zone))
    return rows


def models_used(user_id: int) -> list[str]:
    return list(
        UsageLog.objects.filter(user_id=user_id).order_by("model").values_list("model", flat=True).distinct()
    )
