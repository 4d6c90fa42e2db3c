"""Stripe's money edges: disputes, refunds that fail after being reported, expired and cancelled
checkouts, future-dated signatures and amounts that are not positive. Alice pays; the books must
balance after each."""

import time
from decimal import Decimal

import pytest

from billing import ledger
from billing.models import LedgerEntry, StripeEvent, TopUp

from ..conftest import balance_of
from ..rails import books_checked  # noqa: F401 (fixture)
from tests.billing.test_stripe_webhooks import open_topup, post, stripe_fake  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("books_checked")


def paid_topup(client, fake, user, dollars: int) -> str:
    sid = open_topup(fake, user, dollars)
    assert post(client, fake, fake.complete(sid)[0]).status_code == 200
    return sid


def assert_books_balance():
    assert ledger.find_mismatches() == []


def test_a_lost_dispute_debits_the_disputed_amount_once(client, stripe_fake, alice):
    sid = paid_topup(client, stripe_fake, alice, 20)
    created = stripe_fake.dispute(sid)

    assert post(client, stripe_fake, created).json()["status"] == "processed"
    assert post(client, stripe_fake, stripe_fake.dispute_closed(created, "lost")).status_code == 200

    [entry] = LedgerEntry.objects.filter(kind="dispute", account=alice.account)
    dispute_id = created["data"]["object"]["id"]
    assert (entry.amount, entry.idempotency_key) == (Decimal("-20"), f"stripe-dispute:{dispute_id}")
    assert balance_of(alice) == Decimal("10") and TopUp.objects.get(session_id=sid).disputed == Decimal("20")
    assert_books_balance()


def test_a_won_dispute_gives_the_money_back_even_when_its_events_arrive_out_of_order(
    client, stripe_fake, alice
):
    sid = paid_topup(client, stripe_fake, alice, 20)
    created = stripe_fake.dispute(sid)
    won = stripe_fake.dispute_closed(created, "won")

    assert post(client, stripe_fake, won).status_code == 200  # closed before created
    assert post(client, stripe_fake, created).status_code == 200

    amounts = sorted(e.amount for e in LedgerEntry.objects.filter(kind="dispute", account=alice.account))
    assert amounts == [Decimal("-20"), Decimal("20")]
    assert balance_of(alice) == Decimal("30") and TopUp.objects.get(session_id=sid).disputed == 0
    assert_books_balance()


def test_a_dispute_while_money_is_held_takes_the_balance_below_zero_and_the_dashboard_says_why(
    client, stripe_fake, alice
):
    sid = paid_topup(client, stripe_fake, alice, 20)
    held = ledger.hold(account_id=alice.account.pk, amount="29", idempotency_key=f"dispute-held-{sid}")
    ledger.settle(hold_id=held.id, actual="29")  # Alice spent $29 of her $30

    post(client, stripe_fake, stripe_fake.dispute(sid))

    assert balance_of(alice) == Decimal("-19")
    client.force_login(alice)
    html = client.get("/dashboard/").content.decode()
    assert 'data-testid="negative-balance"' in html and "-$19.00" in html and "dispute" in html
    assert_books_balance()


def test_an_inquiry_moves_no_money(client, stripe_fake, alice):
    sid = paid_topup(client, stripe_fake, alice, 20)
    inquiry = stripe_fake.dispute(sid, status="warning_needs_response")

    assert post(client, stripe_fake, inquiry).json()["status"] == "ignored"
    assert balance_of(alice) == Decimal("30")


def test_a_refund_reported_pending_then_failed_is_given_back_once(client, stripe_fake, alice):
    sid = paid_topup(client, stripe_fake, alice, 20)
    refunded = stripe_fake.refund(sid, cents=800, status="pending")
    refund_id = refunded["data"]["object"]["refunds"]["data"][0]["id"]

    assert post(client, stripe_fake, refunded).status_code == 200
    assert balance_of(alice) == Decimal("22")
    failed = stripe_fake.refund_update(refund_id, "failed")
    assert post(client, stripe_fake, failed).status_code == 200
    assert post(client, stripe_fake, refunded, timestamp=int(time.time()) + 1).json()["status"] == "duplicate"

    assert balance_of(alice) == Decimal("30")
    keys = set(LedgerEntry.objects.filter(kind="refund").values_list("idempotency_key", flat=True))
    assert {f"stripe-refund:{refund_id}", f"stripe-refund-failed:{refund_id}"} <= keys
    assert_books_balance()


def test_a_failed_refund_reported_before_the_refund_itself_never_debits(client, stripe_fake, alice):
    sid = paid_topup(client, stripe_fake, alice, 20)
    refunded = stripe_fake.refund(sid, cents=800, status="pending")
    refund_id = refunded["data"]["object"]["refunds"]["data"][0]["id"]
    failed = stripe_fake.refund_update(refund_id, "failed")

    assert post(client, stripe_fake, failed).status_code == 200
    assert post(client, stripe_fake, refunded).status_code == 200  # stale: still says pending

    assert balance_of(alice) == Decimal("30")
    assert_books_balance()


def test_a_refund_while_money_is_held_debits_its_full_amount(client, stripe_fake, alice):
    sid = paid_topup(client, stripe_fake, alice, 20)
    held = ledger.hold(account_id=alice.account.pk, amount="29.84", idempotency_key=f"refund-held-{sid}")

    assert post(client, stripe_fake, stripe_fake.refund(sid)).status_code == 200

    [refund] = LedgerEntry.objects.filter(kind="refund", account=alice.account)
    assert refund.amount == Decimal("-20")  # not the $0.16 left beside the hold
    assert balance_of(alice) == Decimal("10")
    ledger.release(hold_id=held.id)
    assert_books_balance()


def test_a_signature_dated_in_the_future_beyond_the_tolerance_is_refused(client, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 10)
    [event] = stripe_fake.complete(sid)

    # 30 s past the 300 s tolerance: int() drops up to a second, and a loaded machine takes more
    # between signing and the view's check
    response = post(client, stripe_fake, event, timestamp=int(time.time()) + 330)

    assert response.status_code == 400 and balance_of(alice) == Decimal("10")
    assert not StripeEvent.objects.filter(event_id=event["id"]).exists()
    assert (
        post(client, stripe_fake, event, timestamp=int(time.time()) + 5).status_code == 200
    )  # clock skew is fine


def test_a_negative_or_zero_amount_never_becomes_a_topup_entry(client, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 10)
    stripe_fake.sessions[sid]["amount_total"] = -1000

    response = post(client, stripe_fake, stripe_fake.complete(sid)[0])

    assert response.status_code == 500  # recorded as failed; Stripe retries; an operator looks
    assert not LedgerEntry.objects.filter(idempotency_key=f"stripe-topup:{sid}").exists()
    assert balance_of(alice) == Decimal("10") and TopUp.objects.get(session_id=sid).status == "pending"


def test_an_expired_session_is_marked_expired(client, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 10)
    expired = stripe_fake.event(
        "checkout.session.expired", {**stripe_fake.sessions[sid], "status": "expired"}
    )

    assert post(client, stripe_fake, expired).json()["status"] == "processed"
    assert TopUp.objects.get(session_id=sid).status == "expired"


def test_the_cancel_return_expires_the_session_and_marks_the_topup_cancelled(client, stripe_fake, alice, bob):
    client.force_login(alice)
    location = client.post("/billing/topup", {"amount": "10"})["Location"]
    topup = TopUp.objects.get(session_id=location.rsplit("/", 1)[1])
    cancel_url = stripe_fake.sessions[topup.session_id]["cancel_url"]
    assert cancel_url.endswith(f"/billing/?checkout=cancelled&ref={topup.ref}")

    client.force_login(bob)  # Bob cannot cancel Alice's checkout with her reference
    client.get(f"/billing/?checkout=cancelled&ref={topup.ref}")
    assert TopUp.objects.get(pk=topup.pk).status == "pending"

    client.force_login(alice)
    html = client.get(f"/billing/?checkout=cancelled&ref={topup.ref}").content.decode()

    assert "Checkout cancelled" in html
    assert TopUp.objects.get(pk=topup.pk).status == "cancelled"
    assert stripe_fake.sessions[topup.session_id]["status"] == "expired"
    [expired] = stripe_fake.outbox
    assert expired["type"] == "checkout.session.expired"
    assert post(client, stripe_fake, expired).status_code == 200  # the expiry event keeps it cancelled
    assert TopUp.objects.get(pk=topup.pk).status == "cancelled"


def test_a_cancel_click_after_paying_credits_instead(client, stripe_fake, alice):
    client.force_login(alice)
    sid = client.post("/billing/topup", {"amount": "10"})["Location"].rsplit("/", 1)[1]
    topup = TopUp.objects.get(session_id=sid)
    stripe_fake.complete(sid)  # paid; the webhook waits in the outbox

    client.get(f"/billing/?checkout=cancelled&ref={topup.ref}")

    assert TopUp.objects.get(pk=topup.pk).status == "paid" and balance_of(alice) == Decimal("20")
