"""Operator admin: top-ups, Stripe events and usage rows are read-only; route health per upstream route
over the last hour, computed in SQL. Alice is an ordinary user and sees none of it."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import User
from billing import ledger
from billing.models import LedgerEntry, StripeEvent, TopUp, UsageLog
from billing.money import format_usd
from billing import usage_history


@pytest.fixture
def operator(client, committed):
    # An operator: staff and superuser.
    user = User.objects.create_superuser(f"op-{uuid.uuid4().hex[:8]}@example.com", "operator pass 123")
    client.force_login(user)
    return client


def route_log(user, route, *, status="ok", latency=100, ttft=None, ago=timedelta(minutes=5)):
    row = UsageLog.objects.create(
        user=user,
        request_id=f"req_{uuid.uuid4().hex}",
        model="m",
        route=route,
        status=status,
        latency_ms=latency,
        ttft_ms=ttft,
    )
    UsageLog.objects.filter(pk=row.pk).update(created_at=timezone.now() - ago)
    return row


def test_topups_and_stripe_events_are_listed_read_only(operator, alice):
    topup = TopUp.objects.create(user=alice, session_id=f"cs_admin_{uuid.uuid4().hex}", amount=Decimal("5"))
    event = StripeEvent.objects.create(
        event_id=f"evt_admin_{uuid.uuid4().hex}", type="checkout.session.completed", payload={"id": "x"}
    )

    assert topup.session_id in operator.get("/admin/billing/topup/").content.decode()
    assert event.event_id in operator.get("/admin/billing/stripeevent/").content.decode()
    detail = operator.get(f"/admin/billing/stripeevent/{event.pk}/change/").content.decode()
    assert event.event_id in detail and 'name="_save"' not in detail
    assert operator.get("/admin/billing/topup/add/").status_code == 403
    assert operator.post(f"/admin/billing/topup/{topup.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TopUp.objects.filter(pk=topup.pk).exists()


def test_route_health_shows_error_rate_and_latency_per_route_for_the_last_hour(operator, alice):
    route = f"anthropic:test-{uuid.uuid4().hex[:6]}"
    route_log(alice, route, latency=100, ttft=40)
    route_log(alice, route, status="error", latency=300, ttft=None)
    route_log(alice, route, status="error", ago=timedelta(hours=2))  # too old to count

    rows = {r["route"]: r for r in usage_history.route_health(timezone.now() - timedelta(hours=1))}
    row = rows[route]
    assert (row["requests"], row["errors"], row["error_rate"]) == (2, 1, 0.5)
    assert (row["avg_latency_ms"], row["max_latency_ms"], row["avg_ttft_ms"]) == (200, 300, 40)

    html = operator.get("/admin/llm/catalogmodel/route-health/").content.decode()
    assert route in html and "50%" in html
    index = operator.get("/admin/").content.decode()
    assert 'href="/admin/llm/catalogmodel/route-health/">Route health (last hour)' in index


def test_usage_rows_are_listed_read_only_under_billing(operator, alice):
    row = route_log(alice, "openai:gpt-test")

    assert row.request_id in operator.get("/admin/billing/usagelog/").content.decode()
    assert operator.get("/admin/billing/usagelog/add/").status_code == 403
    assert operator.post(f"/admin/billing/usagelog/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert UsageLog.objects.filter(pk=row.pk).exists()


def test_a_loss_is_shown_to_operators_with_its_hold_and_the_total_as_money(operator):
    # a vendor bill above the hold and the balance: the part nobody paid is a `loss` entry
    user = User.objects.create_user(f"lossy-{uuid.uuid4().hex[:8]}@example.com", "pass 12345678")
    account = ledger.account_for_user(user.pk)
    ledger.post(account_id=account.pk, amount="1", kind=LedgerEntry.TOPUP, idempotency_key=f"t-{user.pk}")
    hold = ledger.hold(account_id=account.pk, amount="1", idempotency_key=f"h-{user.pk}")
    ledger.close(hold_id=hold.id, actual="2.5", reason="vendor billed above the hold")
    total = sum(e.shortfall for e in LedgerEntry.objects.filter(kind=LedgerEntry.LOSS))

    page = operator.get("/admin/billing/loss/").content.decode()
    assert "vendor billed above the hold" in page and user.email in page
    assert f"Losses (total {format_usd(total)})" in page and "E-" not in page
    assert operator.get("/admin/billing/loss/add/").status_code == 403


def test_ordinary_users_cannot_open_the_operator_pages(client, alice):
    client.force_login(alice)
    for path in (
        "/admin/billing/topup/",
        "/admin/billing/stripeevent/",
        "/admin/billing/usagelog/",
        "/admin/llm/catalogmodel/route-health/",
    ):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
