"""Pages a paying user keeps: a printable receipt per top-up and the transaction history (with CSV)."""

import csv
import io

from datetime import datetime

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.web import MemberRequest, member_page, user_zone

from . import history, rails
from .models import TopUp

PAGE_ROWS = 200


@member_page
@require_GET
def receipt(request: MemberRequest, ref: str) -> HttpResponse:
    """One of my top-ups; anyone else's is a 404, never a 403 (ids are not confirmed to exist)."""
    topup = TopUp.objects.filter(user=request.user, ref=ref).first()
    if topup is None:
        raise Http404("no such top-up")
    rail = rails.RAILS.get(topup.rail)
    return render(
        request,
        "billing/receipt.html",
        {
            "topup": topup,
            "rail_label": rail.label if rail else topup.rail,
            "net": topup.credited - topup.refunded - topup.disputed,
        },
    )


@member_page
@require_GET
def transactions(request: MemberRequest) -> HttpResponse:
    zone = user_zone(request.user)
    return render(
        request,
        "billing/transactions.html",
        {
            "rows": history.rows(request.user.pk, zone, limit=PAGE_ROWS),
            "zone": zone,
            "negative": history.negative_balance(request.user.pk),
            "page_rows": PAGE_ROWS,
        },
    )


def _cell(text: str) -> str:
    """A reason typed by an operator must not run as a formula when the file is opened in a spreadsheet."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@member_page
@require_GET
def transactions_csv(request: MemberRequest) -> HttpResponse:
    zone = user_zone(request.user)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["date", "kind", "amount_usd", "balance_after_usd", "description"])
    for row in history.rows(request.user.pk, zone):
        when = (
            timezone.localtime(row.when, zone).isoformat(timespec="seconds")
            if isinstance(row.when, datetime)
            else row.when.isoformat()
        )
        writer.writerow(
            [
                when,
                row.label,
                f"{row.amount:.8f}",
                "" if row.balance_after is None else f"{row.balance_after:.8f}",
                _cell(row.description),
            ]
        )
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime(timezone.now(), zone).strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="gpuniq-transactions-{stamp}.csv"'
    return response
