"""Usage page: daily spend and tokens by model (SVG), recent requests with filters, CSV export."""

import csv
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.db.models import F, QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.keys import DASHBOARD_KEY_NAME
from accounts.web import MemberRequest, member_page, user_zone, wants_fragment
from gpuniq_site.db import run_db

from . import charts, usage_stats
from .forms import UsageFilterForm, chart_range

PAGE_ROWS = 50
CSV_CHUNK = 2000
CSV_COLUMNS = [
    "created_at",
    "request_id",
    "model",
    "endpoint",
    "api_key",
    "status",
    "error_code",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "images",
    "video_seconds",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "stream",
]


def _filter_form(request: MemberRequest) -> UsageFilterForm:
    keys = request.user.api_keys.order_by(F("revoked_at").asc(nulls_first=True), "-created_at")
    return UsageFilterForm(request.GET, models=usage_stats.models_used(request.user.pk), keys=keys)


def _charts_context(request: MemberRequest) -> dict[str, Any]:
    zone, days = user_zone(request.user), chart_range(request.GET.get("range"))
    win = usage_stats.window(days, zone)
    rows = usage_stats.daily_by_model(request.user.pk, win, zone)
    series = charts.series_order(rows, "cost")  # one colour per model on both charts
    size: dict[str, Any] = {"series": series, "width": 560, "height": 240}
    filters = request.GET.copy()
    for name in ("range", "page"):
        filters.pop(name, None)
    return {
        "range": days,
        "ranges": usage_stats.RANGES,
        "filter_query": filters.urlencode(),
        "DASHBOARD_KEY_NAME": DASHBOARD_KEY_NAME,
        "totals": usage_stats.summary(request.user.pk, win.start),
        "spend_chart": charts.stacked_daily("Daily spend", win.days, rows, "cost", charts.money, **size),
        "tokens_chart": charts.stacked_daily("Daily tokens", win.days, rows, "tokens", charts.count, **size),
    }


def _table_context(request: MemberRequest) -> dict[str, Any]:
    form = _filter_form(request)
    rows = usage_stats.requests_for(request.user.pk, zone=user_zone(request.user), **form.filters())
    page = Paginator(rows, PAGE_ROWS).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "filter_form": form,
        "page": page,
        "query": query.urlencode(),
        "DASHBOARD_KEY_NAME": DASHBOARD_KEY_NAME,
    }


@member_page
@require_GET
def usage(request: MemberRequest) -> HttpResponse:
    if wants_fragment(request) and request.htmx.target == "usage-charts":
        return render(request, "billing/_usage_charts.html", _charts_context(request))
    if wants_fragment(request) and request.htmx.target == "usage-table":
        return render(request, "billing/_usage_table.html", _table_context(request))
    return render(request, "billing/usage.html", {**_charts_context(request), **_table_context(request)})


class _Echo:
    def write(self, value: str) -> str:
        return value


_CSV = csv.writer(_Echo())


def _csv_chunk(rows: QuerySet[Any], before_id: int | None, zone: ZoneInfo) -> tuple[str, int | None]:
    """The next CSV_CHUNK rows below `before_id` (keyset pagination on id, newest first)."""
    batch = list((rows.filter(id__lt=before_id) if before_id else rows).order_by("-id")[:CSV_CHUNK])
    lines = [
        _CSV.writerow(
            [
                timezone.localtime(row.created_at, zone).isoformat(),
                row.request_id,
                row.model,
                row.endpoint,
                row.api_key.display if row.api_key else "",
                row.status,
                row.error_code,
                row.prompt_tokens,
                row.cached_tokens,
                row.completion_tokens,
                row.reasoning_tokens,
                row.images,
                row.video_seconds,
                f"{row.cost_usd:.8f}",
                row.latency_ms,
                "" if row.ttft_ms is None else row.ttft_ms,
                "true" if row.stream else "false",
            ]
        )
        for row in batch
    ]
    return "".join(lines), batch[-1].pk if batch else None


async def _csv_stream(rows: QuerySet[Any], zone: ZoneInfo) -> AsyncIterator[str]:
    """An async iterator, so the ASGI server streams it chunk by chunk (a sync one is buffered whole)."""
    yield _CSV.writerow(CSV_COLUMNS)
    before = None
    while True:
        text, before = await run_db(_csv_chunk, rows, before, zone)
        if not text:
            return
        yield text


@member_page
@require_GET
def usage_csv(request: MemberRequest) -> StreamingHttpResponse:
    """Every row matching the filters, streamed (the whole history never sits in memory)."""
    zone = user_zone(request.user)
    rows = usage_stats.requests_for(request.user.pk, zone=zone, **_filter_form(request).filters())
    response = StreamingHttpResponse(_csv_stream(rows, zone), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(timezone.now(), zone).strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="gpuniq-usage-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
