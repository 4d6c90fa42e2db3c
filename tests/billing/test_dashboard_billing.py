"""Balance and top-up pages: Stripe Checkout through the fake Stripe API, the return page, history,
and the overview. Alice pays; Bob's balance and top-ups never show on her pages."""

from decimal import Decimal

import pytest

from billing import ledger
from billing.models import LedgerEntry, TopUp

from ..conftest import balance_of
from ..fakes.stripe import FakeStripe, parse_form

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def stripe_fake(settings):
    fake = FakeStripe(api_key="sk_test_pages", webhook_secret="whsec_pages").start()
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = fake.api_key, fake.webhook_secret
    settings.STRIPE_API_BASE = fake.base_url
    yield fake
    fake.stop()


@pytest.fixture
def no_stripe(settings):
    settings.STRIPE_SECRET_KEY = settings.STRIPE_WEBHOOK_SECRET = settings.STRIPE_API_BASE = ""


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def checkout(client, amount) -> str:
    response = client.post("/billing/topup", {"amount": amount})
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def test_without_stripe_keys_the_page_says_payments_are_not_configured(as_alice, alice, no_stripe):
    html = as_alice.get("/billing/").content.decode()
    assert "Payments are not configured" in html and 'name="amount"' not in html

    response = as_alice.post("/billing/topup", {"amount": "10"})
    assert response.status_code == 302 and not TopUp.objects.filter(user=alice).exists()


def test_the_billing_page_shows_my_balance_and_presets(as_alice, alice, bob, stripe_fake):
    ledger.post(
        account_id=bob.account.pk, amount="1234.56", kind="adjustment", idempotency_key=f"bob-rich-{bob.pk}"
    )
    html = as_alice.get("/billing/").content.decode()
    assert "$10.00" in html and "1,244.56" not in html and "1244.56" not in html
    for preset in ("5", "10", "25", "50"):
        assert f'name="amount" value="{preset}"' in html


def test_a_preset_opens_a_stripe_checkout_session_and_a_pending_topup(as_alice, alice, stripe_fake):
    url = checkout(as_alice, "25")

    topup = TopUp.objects.get(user=alice)
    assert url == f"{stripe_fake.base_url}/pay/{topup.session_id}"
    assert (topup.amount, topup.status) == (Decimal("25.00"), "pending")
    [call] = [r for r in stripe_fake.requests if r["path"] == "/v1/checkout/sessions"]
    assert call["headers"]["content-type"].startswith("application/x-www-form-urlencoded")
    assert call["headers"]["authorization"] == "Bearer sk_test_pages"
    params = parse_form(call["body"].encode())
    assert params["line_items"][0]["price_data"] == {
        "currency": "usd",
        "unit_amount": "2500",
        "product_data": {"name": "GPUniq balance top-up", "description": "$25.00 of API credit"},
    }
    assert params["metadata"] == {"gpuniq_user_id": str(alice.pk), "purpose": "gpuniq_topup"}
    assert params["success_url"].endswith("/billing/?checkout=success&session_id={CHECKOUT_SESSION_ID}")
    assert balance_of(alice) == Decimal("10")  # nothing credited before Stripe says paid


@pytest.mark.parametrize("amount", ["4.99", "1000.01", "abc", ""])
def test_amounts_outside_5_to_1000_dollars_are_refused_before_stripe(as_alice, alice, stripe_fake, amount):
    response = as_alice.post("/billing/topup", {"amount": amount})
    assert response.status_code == 400
    assert not TopUp.objects.filter(user=alice).exists() and stripe_fake.requests == []


def test_a_custom_amount_is_accepted(as_alice, alice, stripe_fake):
    checkout(as_alice, "1000")
    assert TopUp.objects.get(user=alice).amount == Decimal("1000.00")


def test_when_stripe_is_down_the_page_says_so_and_records_nothing(as_alice, alice, stripe_fake):
    stripe_fake.stop()
    response = as_alice.post("/billing/topup", {"amount": "10"})
    assert response.status_code == 502 and "unavailable" in response.content.decode()
    assert not TopUp.objects.filter(user=alice).exists()


def test_returning_from_checkout_credits_a_paid_session_once_even_before_the_webhook(
    client, as_alice, alice, stripe_fake
):
    url = checkout(as_alice, "10")
    sid = url.rsplit("/", 1)[1]
    [event] = stripe_fake.complete(sid)  # no webhook URL: the event waits in the outbox

    page = as_alice.get(f"/billing/?checkout=success&session_id={sid}")

    assert "Payment received" in page.content.decode()
    assert balance_of(alice) == Decimal("20") and TopUp.objects.get(session_id=sid).status == "paid"
    payload, header = stripe_fake.signed(event)  # the webhook arrives later: nothing moves twice
    assert (
        client.post(
            "/webhooks/stripe", payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        ).status_code
        == 200
    )
    assert balance_of(alice) == Decimal("20")
    assert LedgerEntry.objects.filter(idempotency_key=f"stripe-topup:{sid}").count() == 1
    assert ledger.find_mismatches() == []


def test_returning_before_payment_shows_a_pending_notice_and_polls(as_alice, alice, stripe_fake):
    sid = checkout(as_alice, "5").rsplit("/", 1)[1]
    html = as_alice.get(f"/billing/?checkout=success&session_id={sid}").content.decode()
    assert "waiting for the payment to be confirmed" in html and 'hx-trigger="every 2s"' in html
    assert balance_of(alice) == Decimal("10")


def test_bob_cannot_use_alices_session_id(client, alice, bob, stripe_fake):
    client.force_login(alice)
    sid = checkout(client, "10").rsplit("/", 1)[1]
    stripe_fake.complete(sid)
    client.force_login(bob)

    html = client.get(f"/billing/?checkout=success&session_id={sid}").content.decode()

    assert "Payment received" not in html and sid not in html
    assert (
        TopUp.objects.get(session_id=sid).status == "pending"
    )  # only Alice's visit or the webhook credits it
    assert balance_of(bob) == Decimal("10") and balance_of(alice) == Decimal("10")


def test_the_history_fragment_shows_my_topups_only(client, alice, bob, stripe_fake):
    client.force_login(bob)
    bob_sid = checkout(client, "50").rsplit("/", 1)[1]
    client.force_login(alice)
    alice_sid = checkout(client, "25").rsplit("/", 1)[1]

    fragment = client.get("/billing/history", **HTMX)
    html = fragment.content.decode()
    assert fragment.status_code == 200 and "<html" not in html
    assert alice_sid[:20] in html and bob_sid[:20] not in html and "Pending" in html
    assert "<html" in client.get("/billing/history").content.decode()


def test_the_overview_shows_my_numbers(as_alice, alice, bob, stripe_fake):
    ledger.post(
        account_id=bob.account.pk, amount="777", kind="adjustment", idempotency_key=f"bob-777-{bob.pk}"
    )
    response = as_alice.get("/dashboard/")
    html = response.content.decode()
    assert response.status_code == 200 and "$10.00" in html and "787" not in html
    assert "Live API keys" in html and "Spend, last 14 days" in html


def test_the_polled_fragment_turns_paid_when_the_webhook_lands_and_stops_polling(
    client, as_alice, alice, stripe_fake
):
    sid = checkout(as_alice, "10").rsplit("/", 1)[1]
    pending = as_alice.get(f"/billing/history?session_id={sid}", **HTMX).content.decode()
    assert "waiting for the payment" in pending and 'hx-trigger="every 2s"' in pending

    payload, header = stripe_fake.signed(stripe_fake.complete(sid)[0])
    client.post("/webhooks/stripe", payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)

    paid = as_alice.get(f"/billing/history?session_id={sid}", **HTMX).content.decode()
    assert "Payment received" in paid and "hx-trigger" not in paid and "$20.00" in paid


def test_an_abandoned_checkout_is_not_polled_forever(as_alice, alice, stripe_fake):
    from datetime import timedelta

    from django.utils import timezone

    sid = checkout(as_alice, "10").rsplit("/", 1)[1]
    TopUp.objects.filter(session_id=sid).update(created_at=timezone.now() - timedelta(hours=2))
    html = as_alice.get("/billing/").content.decode()
    assert "Pending" in html and "hx-trigger" not in html
