"""Dashboard overview and the balance / top-up pages."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.keys import user_keys
from accounts.web import MemberRequest, member_page, page_or_fragment, user_zone
from gpuniq_site.ids import could_be_id

from . import charts, history, ledger, onboarding, rails, usage_stats, yookassa_rail
from .forms import TopUpForm
from .models import TopUp
from .rails import Rail
from .stripe_topups import PaymentProviderError, cancel_checkout, refresh_from_stripe

HISTORY_ROWS = 25
POLL_PENDING_FOR = timedelta(minutes=15)  # an abandoned checkout stays pending until its rail expires it
SHOWN_ON_OVERVIEW = (TopUp.PAID, TopUp.REFUNDED)  # open or abandoned checkouts never push these off


def _rail_offers(configured: list[Rail]) -> list[dict[str, Any]]:
    """Each configured rail with its presets; YooKassa's show the RUB price at today's rate."""
    rate = yookassa_rail.usd_rate()
    offers = []
    for rail in configured:
        rub_rate = rate if rail.name == TopUp.YOOKASSA and rate else None
        presets = [
            {"usd": p, "rub": yookassa_rail.quote(Decimal(p), rub_rate) if rub_rate else None}
            for p in settings.TOPUP_PRESETS_USD
        ]
        offers.append({"rail": rail, "presets": presets, "rate": rub_rate})
    return offers


def _billing_context(request: MemberRequest, form: TopUpForm | None = None, **extra: Any) -> dict[str, Any]:
    topups = list(TopUp.objects.filter(user=request.user)[:HISTORY_ROWS])
    recent = timezone.now() - POLL_PENDING_FOR
    configured = rails.configured_rails()
    return {
        "account": ledger.account_for_user(request.user.pk),
        "topups": topups,
        "polling": any(t.status == TopUp.PENDING and t.created_at > recent for t in topups),
        "form": form or TopUpForm(rails=configured),
        "offers": _rail_offers(configured),
        "presets": settings.TOPUP_PRESETS_USD,
        "configured": bool(configured),
        "negative": history.negative_balance(request.user.pk),
        "min_usd": settings.TOPUP_MIN_USD,
        "max_usd": settings.TOPUP_MAX_USD,
        **extra,
    }


@member_page
@require_GET
def dashboard(request: MemberRequest) -> HttpResponse:
    zone = user_zone(request.user)
    win = usage_stats.window(14, zone)
    rows = usage_stats.daily_by_model(request.user.pk, win, zone)
    month = usage_stats.summary(request.user.pk, timezone.now() - timedelta(days=30))
    account = ledger.account_for_user(request.user.pk)
    context = {
        "account": account,
        "onboarding": onboarding.steps(request.user, account),
        "month": month,
        "month_tokens": charts.count(month["tokens"]),
        "today": usage_stats.summary(request.user.pk, win.start + timedelta(days=13)),
        "spend_chart": charts.stacked_daily("Spend, last 14 days", win.days, rows, "cost", charts.money),
        "live_keys": user_keys(request.user).filter(revoked_at__isnull=True).count(),
        "topups": TopUp.objects.filter(user=request.user, status__in=SHOWN_ON_OVERVIEW)[:3],
        "configured": bool(rails.configured_rails()),
        "negative": history.negative_balance(request.user.pk),
    }
    return render(request, "billing/dashboard.html", context)


@member_page
@require_GET
def billing(request: MemberRequest) -> HttpResponse:
    returned, checkout, session_id = None, request.GET.get("checkout"), _session_id(request)
    if checkout == "success" and session_id:
        returned = refresh_from_stripe(user=request.user, session_id=session_id)
    elif checkout in ("return", "cancelled"):
        returned = _own_topup(request, request.GET.get("ref"))
        if returned is not None:
            cancel = checkout == "cancelled" and returned.rail == TopUp.STRIPE
            returned = cancel_checkout(topup=returned) if cancel else rails.refresh(returned)
    cancelled = checkout == "cancelled" or (returned is not None and returned.status == TopUp.CANCELLED)
    return render(
        request, "billing/billing.html", _billing_context(request, returned=returned, cancelled=cancelled)
    )


def _session_id(request: MemberRequest) -> str | None:
    """The rail's session id the buyer came back with, if it can be one (a NUL would be a 500 on
    PostgreSQL); anything else is treated like an unknown session."""
    session_id = request.GET.get("session_id", "")
    return session_id if could_be_id(session_id, max_length=255) else None


def _own_topup(request: MemberRequest, ref: str | None) -> TopUp | None:
    """The signed-in user's top-up by our reference; anyone else's (or a malformed one) is None."""
    try:
        return TopUp.objects.filter(user=request.user, ref=ref).first() if ref else None
    except (ValueError, ValidationError):
        return None


@member_page
@require_POST
def topup(request: MemberRequest) -> HttpResponse:
    configured = rails.configured_rails()
    form = TopUpForm(request.POST, rails=configured)
    if not configured:
        messages.error(request, "Payments are not configured on this server.")
        return redirect("billing")
    if not form.is_valid():
        return render(request, "billing/billing.html", _billing_context(request, form), status=400)
    try:
        _, url = rails.start(form.cleaned_data["rail"], user=request.user, amount=form.cleaned_data["amount"])
    except PaymentProviderError as exc:
        form.add_error(None, str(exc))
        return render(request, "billing/billing.html", _billing_context(request, form), status=502)
    return redirect(url)  # the rail's hosted payment page; it sends the buyer back to /billing/


@member_page
@require_GET
def topups(request: MemberRequest) -> HttpResponse:
    """The balance and history fragment; the page polls it while a recent top-up is pending."""
    session_id = _session_id(request)
    returned = _own_topup(request, request.GET.get("ref")) or (
        TopUp.objects.filter(user=request.user, session_id=session_id).first() if session_id else None
    )
    return page_or_fragment(
        request,
        "billing/billing.html",
        "billing/_balance_and_history.html",
        _billing_context(request, returned=returned),
    )
