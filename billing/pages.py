"""Dashboard overview and the balance / top-up pages."""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.keys import user_keys
from accounts.web import member_page, page_or_fragment, user_zone

from . import charts, ledger, usage_stats
from .forms import TopUpForm
from .models import TopUp
from .stripe_topups import PaymentProviderError, payments_configured, refresh_from_stripe, start_checkout

HISTORY_ROWS = 25
POLL_PENDING_FOR = timedelta(minutes=15)  # an abandoned checkout stays pending until Stripe expires it


def _billing_context(request, form=None, **extra) -> dict:
    topups = list(TopUp.objects.filter(user=request.user)[:HISTORY_ROWS])
    recent = timezone.now() - POLL_PENDING_FOR
    return {"account": ledger.account_for_user(request.user.pk), "topups": topups,
            "polling": any(t.status == TopUp.PENDING and t.created_at > recent for t in topups),
            "form": form or TopUpForm(),
            "presets": settings.TOPUP_PRESETS_USD, "configured": payments_configured(),
            "min_usd": settings.TOPUP_MIN_USD, "max_usd": settings.TOPUP_MAX_USD, **extra}


@member_page
@require_GET
def dashboard(request):
    zone = user_zone(request.user)
    win = usage_stats.window(14, zone)
    rows = usage_stats.daily_by_model(request.user.pk, win, zone)
    month = usage_stats.summary(request.user.pk, timezone.now() - timedelta(days=30))
    context = {
        "account": ledger.account_for_user(request.user.pk),
        "month": month, "month_tokens": charts.count(month["tokens"]),
        "today": usage_stats.summary(request.user.pk, win.start + timedelta(days=13)),
        "spend_chart": charts.stacked_daily("Spend, last 14 days", win.days, rows, "cost", charts.money),
        "live_keys": user_keys(request.user).filter(revoked_at__isnull=True).count(),
        "topups": TopUp.objects.filter(user=request.user)[:3],
        "configured": payments_configured(),
    }
    return render(request, "billing/dashboard.html", context)


@member_page
@require_GET
def billing(request):
    returned = None
    if request.GET.get("checkout") == "success" and request.GET.get("session_id"):
        returned = refresh_from_stripe(user=request.user, session_id=request.GET["session_id"])
    cancelled = request.GET.get("checkout") == "cancelled"
    return render(request, "billing/billing.html", _billing_context(request, returned=returned, cancelled=cancelled))


@member_page
@require_POST
def topup(request):
    form = TopUpForm(request.POST)
    if not payments_configured():
        messages.error(request, "Payments are not configured on this server.")
        return redirect("billing")
    if not form.is_valid():
        return render(request, "billing/billing.html", _billing_context(request, form), status=400)
    try:
        _, url = start_checkout(user=request.user, amount=form.cleaned_data["amount"])
    except PaymentProviderError as exc:
        form.add_error(None, str(exc))
        return render(request, "billing/billing.html", _billing_context(request, form), status=502)
    return redirect(url)  # Stripe's hosted checkout page; Stripe sends the buyer back to /billing/


@member_page
@require_GET
def topups(request):
    """The balance and history fragment; the page polls it while a recent top-up is pending."""
    returned = TopUp.objects.filter(user=request.user, session_id=request.GET.get("session_id", "")).first()
    return page_or_fragment(request, "billing/billing.html", "billing/_balance_and_history.html",
                            _billing_context(request, returned=returned))
