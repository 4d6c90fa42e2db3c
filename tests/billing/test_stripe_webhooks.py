"""Stripe webhooks: signatures are verified, and each payment or refund moves money exactly once,
whatever the order or number of deliveries. Alice pays; Bob exists to prove nothing leaks to him."""

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from billing import ledger
from billing.models import LedgerEntry, StripeEvent, TopUp
from billing.topup_ops import TOPUP_PURPOSE

from ..conftest import balance_of
from ..fakes.stripe import FakeStripe, sign
from ..rails import books_checked  # noqa: F401 (fixture)

SECRET = "whsec_test_secret"
URL = "/webhooks/stripe"
pytestmark = pytest.mark.usefixtures("books_checked")


@pytest.fixture
def stripe_fake(settings):
    """The fake Stripe API on a socket; the gateway's settings point at it."""
    fake = FakeStripe(api_key="sk_test_gateway", webhook_secret=SECRET).start()
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = fake.api_key, SECRET
    settings.STRIPE_API_BASE = fake.base_url
    yield fake
    fake.stop()


def open_topup(fake, user, dollars: int) -> str:
    """A checkout session and its pending top-up, as billing.stripe_topups.start_checkout leaves them."""
    session = fake.open_session(
        {
            "line_items": [
                {"quantity": "1", "price_data": {"currency": "usd", "unit_amount": str(dollars * 100)}}
            ],
            "metadata": {"gpuniq_user_id": str(user.pk), "purpose": TOPUP_PURPOSE},
        }
    )
    TopUp.objects.create(user=user, session_id=session["id"], amount=Decimal(dollars))
    return session["id"]


def post(client, fake, event, **signing):
    payload, header = fake.signed(event, **signing)
    return client.post(URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header)


def credits(user) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(account__user=user, kind__in=["topup", "refund"]).order_by("id"))


def assert_books_balance():
    assert ledger.find_mismatches() == []


def test_a_paid_checkout_credits_the_balance_once(client, stripe_fake, alice, bob):
    sid = open_topup(stripe_fake, alice, 25)
    [event] = stripe_fake.complete(sid)

    response = post(client, stripe_fake, event)

    assert response.status_code == 200 and response.json()["status"] == "processed"
    assert balance_of(alice) == Decimal("35") and balance_of(bob) == Decimal("10")
    topup = TopUp.objects.get(session_id=sid)
    assert topup.status == "paid" and topup.paid_at and topup.payment_intent.startswith("pi_test_")
    [entry] = [e for e in credits(alice) if e.idempotency_key.startswith("stripe-")]
    assert (entry.kind, entry.amount, entry.idempotency_key) == (
        "topup",
        Decimal("25"),
        f"stripe-topup:{sid}",
    )
    assert StripeEvent.objects.get(event_id=event["id"]).status == "processed"
    assert_books_balance()


@pytest.mark.parametrize("tamper", ["body", "secret", "header", "missing"])
def test_a_bad_signature_is_refused_and_nothing_is_recorded(client, stripe_fake, alice, tamper):
    sid = open_topup(stripe_fake, alice, 10)
    [event] = stripe_fake.complete(sid)
    payload, header = stripe_fake.signed(event, secret="whsec_wrong" if tamper == "secret" else None)
    if tamper == "body":
        payload = payload.replace('"amount_total": 1000', '"amount_total": 100000')
    headers = (
        {}
        if tamper == "missing"
        else {"HTTP_STRIPE_SIGNATURE": "t=123,v1=deadbeef" if tamper == "header" else header}
    )

    response = client.post(URL, payload, content_type="application/json", **headers)

    assert response.status_code == 400
    assert not StripeEvent.objects.filter(event_id=event["id"]).exists()
    assert balance_of(alice) == Decimal("10") and TopUp.objects.get(session_id=sid).status == "pending"


def test_a_correctly_signed_but_old_event_is_refused(client, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 10)
    [event] = stripe_fake.complete(sid)

    response = post(client, stripe_fake, event, timestamp=int(time.time()) - 301)

    assert response.status_code == 400
    assert balance_of(alice) == Decimal("10")
    assert not StripeEvent.objects.filter(event_id=event["id"]).exists()


def test_the_signature_is_the_documented_hmac_of_timestamp_dot_body(stripe_fake):
    import stripe

    payload = '{"id": "evt_1", "object": "event"}'
    header = sign(payload, SECRET, timestamp=1700000000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert stripe.WebhookSignature.verify_header(payload, header, SECRET, tolerance=None)


def test_a_replayed_event_credits_once(client, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 5)
    [event] = stripe_fake.complete(sid)

    first = post(client, stripe_fake, event)
    again = post(client, stripe_fake, event, timestamp=int(time.time()) + 1)  # Stripe re-signs each delivery

    assert first.json()["status"] == "processed" and again.json()["status"] == "duplicate"
    assert balance_of(alice) == Decimal("15")
    assert StripeEvent.objects.filter(event_id=event["id"]).count() == 1
    assert_books_balance()


@pytest.mark.parametrize("order", ["succeeded_first", "completed_first"])
def test_async_payment_events_in_either_order_credit_once(client, stripe_fake, alice, order):
    sid = open_topup(stripe_fake, alice, 50)
    completed, succeeded = stripe_fake.complete(sid, outcome="async_success")
    assert completed["data"]["object"]["payment_status"] == "unpaid"
    events = [succeeded, completed] if order == "succeeded_first" else [completed, succeeded]

    statuses = [post(client, stripe_fake, e).status_code for e in events]
    duplicate_completion = stripe_fake.event("checkout.session.completed", succeeded["data"]["object"])
    statuses.append(post(client, stripe_fake, duplicate_completion).status_code)  # paid, new event id

    assert statuses == [200, 200, 200]
    assert balance_of(alice) == Decimal("60")
    assert TopUp.objects.get(session_id=sid).status == "paid"
    assert len([e for e in credits(alice) if e.idempotency_key == f"stripe-topup:{sid}"]) == 1
    assert_books_balance()


def test_a_failed_async_payment_credits_nothing(client, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 25)
    completed, failed = stripe_fake.complete(sid, outcome="async_fail")

    assert post(client, stripe_fake, completed).status_code == 200
    assert TopUp.objects.get(session_id=sid).status == "pending"  # waiting for the bank
    assert post(client, stripe_fake, failed).status_code == 200

    assert TopUp.objects.get(session_id=sid).status == "failed"
    assert balance_of(alice) == Decimal("10")
    assert not LedgerEntry.objects.filter(idempotency_key=f"stripe-topup:{sid}").exists()


def test_a_refund_debits_once_per_refund(client, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 20)
    post(client, stripe_fake, stripe_fake.complete(sid)[0])
    partial = stripe_fake.refund(sid, cents=500)

    assert post(client, stripe_fake, partial).status_code == 200
    assert post(client, stripe_fake, partial, timestamp=int(time.time()) + 2).json()["status"] == "duplicate"
    topup = TopUp.objects.get(session_id=sid)
    assert balance_of(alice) == Decimal("25") and (topup.status, topup.refunded) == ("paid", Decimal("5"))

    rest = stripe_fake.refund(sid)  # the charge now lists both refunds; only the new one is debited
    assert post(client, stripe_fake, rest).status_code == 200

    topup.refresh_from_db()
    assert balance_of(alice) == Decimal("10") and (topup.status, topup.refunded) == (
        "refunded",
        Decimal("20"),
    )
    refunds = [e for e in credits(alice) if e.kind == "refund"]
    assert [e.amount for e in refunds] == [Decimal("-5"), Decimal("-15")]
    assert all(e.idempotency_key.startswith("stripe-refund:re_test_") for e in refunds)
    assert_books_balance()


def test_a_refund_without_its_list_fetches_the_refunds_from_stripe(client, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 10)
    post(client, stripe_fake, stripe_fake.complete(sid)[0])

    response = post(client, stripe_fake, stripe_fake.refund(sid, with_list=False))

    assert response.status_code == 200
    assert balance_of(alice) == Decimal("10")
    assert any(r["path"] == "/v1/refunds" for r in stripe_fake.requests)
    assert_books_balance()


def test_a_failed_handler_answers_500_and_a_retry_applies_it(client, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 10)
    post(client, stripe_fake, stripe_fake.complete(sid)[0])
    event = stripe_fake.refund(sid, with_list=False)
    stripe_fake.stop()  # Stripe's API is unreachable while the refund list is fetched

    failed = post(client, stripe_fake, event)
    assert failed.status_code == 500
    assert StripeEvent.objects.get(event_id=event["id"]).status == "failed"
    assert balance_of(alice) == Decimal("20")

    stripe_fake.start()
    retried = post(client, stripe_fake, event)
    assert retried.status_code == 200 and retried.json()["status"] == "processed"
    assert balance_of(alice) == Decimal("10")
    assert_books_balance()


def test_a_session_that_is_not_a_topup_is_recorded_and_ignored(client, stripe_fake, alice):
    session = stripe_fake.open_session(
        {
            "line_items": [{"price_data": {"currency": "usd", "unit_amount": "900"}}],
            "metadata": {"gpuniq_user_id": str(alice.pk)},
        }
    )  # no purpose: not ours
    [event] = stripe_fake.complete(session["id"])

    response = post(client, stripe_fake, event)

    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert not TopUp.objects.filter(session_id=session["id"]).exists()
    assert balance_of(alice) == Decimal("10")


def test_a_paid_topup_whose_row_is_missing_is_rebuilt_from_metadata_and_credited(client, stripe_fake, alice):
    session = stripe_fake.open_session(
        {
            "line_items": [{"price_data": {"currency": "usd", "unit_amount": "700"}}],
            "metadata": {"gpuniq_user_id": str(alice.pk), "purpose": TOPUP_PURPOSE},
        }
    )

    post(client, stripe_fake, stripe_fake.complete(session["id"])[0])

    topup = TopUp.objects.get(session_id=session["id"])
    assert (topup.user_id, topup.amount, topup.status) == (alice.pk, Decimal("7"), "paid")
    assert balance_of(alice) == Decimal("17")


def test_a_non_usd_session_is_not_credited(client, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 10)
    stripe_fake.sessions[sid]["currency"] = "eur"

    response = post(client, stripe_fake, stripe_fake.complete(sid)[0])

    assert response.status_code == 500
    assert balance_of(alice) == Decimal("10")


def test_webhooks_without_a_secret_answer_503(client, settings, committed):
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert (
        client.post(URL, "{}", content_type="application/json", HTTP_STRIPE_SIGNATURE="t=1,v1=x").status_code
        == 503
    )


def test_webhooks_only_accept_post(client, stripe_fake, committed):
    assert client.get(URL).status_code == 405


def test_concurrent_deliveries_of_one_event_credit_once(stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 30)
    [event] = stripe_fake.complete(sid)
    payload, header = stripe_fake.signed(event)

    def deliver(_):
        try:
            response = Client().post(
                URL, payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
            )
            return response.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(deliver, range(4)))

    assert codes == [200] * 4
    assert balance_of(alice) == Decimal("40")
    assert LedgerEntry.objects.filter(idempotency_key=f"stripe-topup:{sid}").count() == 1
    assert_books_balance()
