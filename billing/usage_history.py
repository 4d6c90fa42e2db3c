"""Statistics of the usage rows billing writes (billing.metering), for the native usage API:
the history (one row per request) and per-day / per-week aggregates, all computed in SQL.

The breakdown buckets rows by the local day or ISO week (Monday) of `created_at` in the caller's
time zone (TruncDay / TruncWeek with tzinfo), so a request at 23:30 UTC lands on the next day in
Berlin. Both queries are served by the (user, created_at) and (user, model, created_at) indexes.
route_health() is the operator's view: requests, errors and latency per upstream route (llm/admin.py).
"""

import zoneinfo
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Avg, Count, F, FloatField, Max, Q, Sum
from django.db.models.functions import Cast, TruncDay, TruncWeek
from django.utils import timezone

from .models import UsageLog
from gpuniq_site.errors import ApiError


LOG_FIELDS = (
    "id",
    "request_id",
    "endpoint",
    "model",
    "status",
    "error_code",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "images",
    "video_seconds",
    "cost_usd",
    "stream",
    "latency_ms",
    "created_at",
)
TRUNC = {"day": TruncDay, "week": TruncWeek}
DEFAULT_SPAN = {"day": timedelta(days=29), "week": timedelta(weeks=11)}
MAX_SPAN_DAYS = 731
MIN_YEAR, MAX_YEAR = 1970, 9000


def history(user_id: int, *, limit: int, offset: int) -> dict[str, Any]:
    rows = UsageLog.objects.filter(user_id=user_id)
    page = rows.order_by("-created_at", "-id").values(*LOG_FIELDS)[offset : offset + limit]
    logs = [
        {
            **row,
            "total_tokens": row["prompt_tokens"] + row["completion_tokens"],
            "cost_usd": float(row["cost_usd"]),
            "created_at": row["created_at"].isoformat(),
        }
        for row in page
    ]
    return {"logs": logs, "total": rows.count(), "limit": limit, "offset": offset}


def time_zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, KeyError, OSError, zoneinfo.ZoneInfoNotFoundError):
        raise ApiError(
            "invalid_parameter",
            field="tz",
            reason="must be an IANA time zone such as Europe/Berlin",
            meta={"field": "tz"},
        ) from None


def _check_year(value: date | None, name: str) -> None:
    if value is not None and not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ApiError(
            "invalid_parameter",
            field=name,
            reason=f"must be a date between {MIN_YEAR} and {MAX_YEAR}",
            meta={"field": name},
        )


def date_range(
    period: str, start: date | None, end: date | None, zone: zoneinfo.ZoneInfo
) -> tuple[date, date]:
    _check_year(start, "start")
    _check_year(end, "end")
    end = end or timezone.now().astimezone(zone).date()
    start = start or end - DEFAULT_SPAN[period]
    if start > end:
        raise ApiError(
            "invalid_parameter", field="start", reason="must not be after end", meta={"field": "start"}
        )
    if (end - start).days >= MAX_SPAN_DAYS:
        raise ApiError(
            "invalid_parameter",
            field="end",
            reason=f"the range may span at most {MAX_SPAN_DAYS} days",
            meta={"field": "end"},
        )
    return start, end


def _sums() -> dict[str, Any]:
    return {
        "requests": Count("id"),
        "sum_prompt": Sum("prompt_tokens"),
        "sum_completion": Sum("completion_tokens"),
        "sum_cached": Sum("cached_tokens"),
        "sum_reasoning": Sum("reasoning_tokens"),
        "sum_total": Sum(F("prompt_tokens") + F("completion_tokens")),
        "sum_cost": Sum("cost_usd"),
    }


def _totals(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "requests": row["requests"],
        "prompt_tokens": row["sum_prompt"] or 0,
        "completion_tokens": row["sum_completion"] or 0,
        "cached_tokens": row["sum_cached"] or 0,
        "reasoning_tokens": row["sum_reasoning"] or 0,
        "total_tokens": row["sum_total"] or 0,
        "cost_usd": float(row["sum_cost"] or 0),
    }


def _bucket(row: Mapping[str, Any], zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    start = row["bucket"]
    start = start.astimezone(zone).date() if isinstance(start, datetime) else start
    data = {"period_start": start.isoformat(), **_totals(row)}
    if "model" in row:
        data["model"] = row["model"]
    return data


def breakdown(
    user_id: int, *, period: str, start: date | None, end: date | None, tz: str, group_by: str | None
) -> dict[str, Any]:
    """Aggregates per local day or week (and model), between local dates start..end inclusive."""
    zone = time_zone(tz)
    start, end = date_range(period, start, end, zone)
    since = datetime.combine(start, time.min, tzinfo=zone)
    until = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone)
    rows = UsageLog.objects.filter(user_id=user_id, created_at__gte=since, created_at__lt=until)
    keys = ["bucket", "model"] if group_by == "model" else ["bucket"]
    buckets = (
        rows.annotate(bucket=TRUNC[period]("created_at", tzinfo=zone))
        .values(*keys)
        .annotate(**_sums())
        .order_by(*keys)
    )
    return {
        "period": period,
        "tz": tz,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "group_by": group_by or None,
        "buckets": [_bucket(row, zone) for row in buckets],
        "totals": _totals(rows.aggregate(**_sums())),
    }


def route_health(since: datetime) -> list[Mapping[str, Any]]:
    """Per upstream route since a moment: requests, error rate and latency (operator view)."""
    total = Count("id")
    errors = Count("id", filter=Q(status="error"))
    return list(
        UsageLog.objects.filter(created_at__gte=since)
        .values("route")
        .annotate(
            requests=total,
            errors=errors,
            error_rate=Cast(errors, FloatField()) / Cast(total, FloatField()),
            avg_latency_ms=Avg("latency_ms"),
            max_latency_ms=Max("latency_ms"),
            avg_ttft_ms=Avg("ttft_ms"),
            last_seen=Max("created_at"),
        )
        .order_by("-error_rate", "-requests", "route")
    )
