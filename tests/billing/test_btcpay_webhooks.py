"""BTCPay Server webhooks: the BTCPay-Sig HMAC is checked, every webhook makes us re-read the invoice
and its payments, and each settled payment is credited once at its USD value, whatever the order or
number of deliveries. Alice pays in BTC at the fake's 50,000 USD/BTC; Bob proves nothing leaks."""

from decimal import Decimal

import pytest

from billing import btcpay_rail, ledger, refunds
from billing.models import LedgerEntry, PaymentEvent, TopUp

from ..conftest import balance_of
from ..rails import books_checked, btcpay  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("books_checked")

URL = "/webhooks/btcpay"


def start(user, dollars: str) -> TopUp:
    topup, url = btcpay_rail.start_invoice(user=user, amount=Decimal(dollars))
    assert url.endswith(f"/i/{topup.session_id}")
    return topup


def post(client, fake, event, **signing):
    body, sig = fake.signed(event, **signing)
    return client.post(URL, body, content_type="application/json", HTTP_BTCPAY_SIG=sig)


def post_all(client, fake, events) -> list[int]:
    return [post(client, fake, e).status_code for e in events]


def assert_books_balance():
    assert ledger.find_mismatches() == []


def test_an_invoice_is_priced_in_usd_with_our_reference(btcpay, alice):
    topup = start(alice, "25")

    [call] = [r for r in btcpay.requests if r["method"] == "POST"]
    assert call["path"] == f"/api/v1/stores/{btcpay.store_id}/invoices"
    assert call["headers"]["authorization"] == f"token {btcpay.api_key}"
    assert (call["json"]["amount"], call["json"]["currency"]) == ("25.00", "USD")
    assert call["json"]["metadata"]["orderId"] == str(topup.ref)
    assert call["json"]["checkout"]["redirectURL"].endswith(f"/billing/?checkout=return&ref={topup.ref}")
    assert (topup.rail, topup.status, topup.amount) == ("btcpay", "pending", Decimal("25"))


def test_a_settled_invoice_credits_once_whatever_the_order_and_redeliveries(client, btcpay, alice, bob):
    topup = start(alice, "25")
    payment_settled, invoice_settled = btcpay.pay(topup.session_id, "25", deliver=False)

    statuses = post_all(
        client, btcpay, [invoice_settled, payment_settled, btcpay.redelivery(invoice_settled)]
    )

    assert statuses == [200, 200, 200]
    assert post(client, btcpay, btcpay.redelivery(payment_settled)).json()["status"] == "duplicate"
    assert balance_of(alice) == Decimal("35") and balance_of(bob) == Decimal("10")
    topup.refresh_from_db()
    assert (topup.status, topup.credited) == ("paid", Decimal("25"))
    assert (
        LedgerEntry.objects.filter(
            kind="topup", idempotency_key__startswith=f"btcpay-topup:{topup.session_id}:"
        ).count()
        == 1
    )
    assert_books_balance()


@pytest.mark.parametrize("tamper", ["body", "secret", "missing", "no-prefix"])
def test_a_bad_signature_is_refused_and_nothing_is_recorded(client, btcpay, alice, tamper):
    topup = start(alice, "10")
    [payment_settled, _] = btcpay.pay(topup.session_id, "10", deliver=False)
    body, sig = btcpay.signed(payment_settled, secret="wrong" if tamper == "secret" else None)
    if tamper == "body":
        body = body.replace('"isRedelivery": false', '"isRedelivery": true')
    headers = {"missing": {}, "no-prefix": {"HTTP_BTCPAY_SIG": sig[len("sha256=") :]}}.get(
        tamper, {"HTTP_BTCPAY_SIG": sig}
    )

    response = client.post(URL, body, content_type="application/json", **headers)

    assert response.status_code == 400
    assert not PaymentEvent.objects.filter(object_id=topup.session_id).exists()
    assert balance_of(alice) == Decimal("10") and TopUp.objects.get(pk=topup.pk).status == "pending"


def test_a_signed_webhook_for_an_unpaid_invoice_moves_nothing(client, btcpay, alice):
    topup = start(alice, "10")
    claim = btcpay.event("InvoiceSettled", topup.session_id, manuallyMarked=False, overPaid=False)

    response = post(client, btcpay, claim)  # BTCPay itself says New, with no payments

    assert response.status_code == 200
    assert balance_of(alice) == Decimal("10") and TopUp.objects.get(pk=topup.pk).status == "pending"


def test_a_partial_payment_then_expiry_credits_what_settled(client, btcpay, alice):
    topup = start(alice, "20")
    events = btcpay.pay(topup.session_id, "5", deliver=False) + btcpay.expire(topup.session_id, deliver=False)

    assert post_all(client, btcpay, events) == [200, 200]

    topup.refresh_from_db()
    assert balance_of(alice) == Decimal("15") and (topup.status, topup.credited) == ("paid", Decimal("5"))
    assert_books_balance()


def test_an_overpayment_credits_what_settled(client, btcpay, alice):
    topup = start(alice, "10")
    events = btcpay.pay(topup.session_id, "6", deliver=False) + btcpay.pay(
        topup.session_id, "7", deliver=False
    )

    assert post_all(client, btcpay, events) == [200, 200, 200]  # two payments, then the invoice settles

    assert balance_of(alice) == Decimal("23") and TopUp.objects.get(pk=topup.pk).credited == Decimal("13")
    assert_books_balance()


def test_an_expired_unpaid_invoice_marks_the_topup_expired(client, btcpay, alice):
    topup = start(alice, "10")
    assert post_all(client, btcpay, btcpay.expire(topup.session_id, deliver=False)) == [200]
    assert TopUp.objects.get(pk=topup.pk).status == "expired" and balance_of(alice) == Decimal("10")


def test_a_payment_still_processing_is_not_credited_until_it_settles(client, btcpay, alice):
    topup = start(alice, "10")
    btcpay.pay(topup.session_id, "10", status="Processing", deliver=False)
    claim = btcpay.event("InvoicePaymentSettled", topup.session_id)

    assert post(client, btcpay, claim).status_code == 200
    assert balance_of(alice) == Decimal("10")


def test_a_settled_payment_that_turns_invalid_is_taken_back_in_full_while_held(client, btcpay, alice):
    topup = start(alice, "20")
    post_all(client, btcpay, btcpay.pay(topup.session_id, "20", deliver=False))
    held = ledger.hold(account_id=alice.account.pk, amount="25", idempotency_key=f"btc-held-{topup.pk}")

    [invalid] = btcpay.invalidate_payment(topup.session_id, deliver=False)
    assert post(client, btcpay, invalid).status_code == 200
    assert post(client, btcpay, btcpay.redelivery(invalid)).json()["status"] == "duplicate"

    [taken] = LedgerEntry.objects.filter(kind="dispute", account=alice.account)
    assert taken.amount == Decimal("-20") and balance_of(alice) == Decimal("10")
    assert TopUp.objects.get(pk=topup.pk).disputed == Decimal("20")
    ledger.release(hold_id=held.id)
    assert_books_balance()


def test_another_stores_event_is_ignored(client, btcpay, alice):
    topup = start(alice, "10")
    btcpay.pay(topup.session_id, "10", deliver=False)
    event = {**btcpay.event("InvoiceSettled", topup.session_id), "storeId": "SomeoneElse"}

    assert post(client, btcpay, event).json()["status"] == "ignored"
    assert balance_of(alice) == Decimal("10")


def test_when_btcpay_is_unreachable_the_webhook_fails_and_a_retry_applies_it(client, btcpay, alice):
    topup = start(alice, "10")
    [payment_settled, _] = btcpay.pay(topup.session_id, "10", deliver=False)
    btcpay.stop()

    assert post(client, btcpay, payment_settled).status_code == 500
    btcpay.start()
    assert post(client, btcpay, payment_settled).json()["status"] == "processed"
    assert balance_of(alice) == Decimal("20")
    assert_books_balance()


def test_without_settings_the_endpoint_answers_503(client, settings, committed):
    settings.BTCPAY_WEBHOOK_SECRET = ""
    assert client.post(URL, "{}", content_type="application/json").status_code == 503


def test_an_invalidation_seen_before_its_settlement_never_credits(client, btcpay, alice):
    topup = start(alice, "20")
    settled = btcpay.pay(topup.session_id, "20", deliver=False)
    [invalid] = btcpay.invalidate_payment(topup.session_id, deliver=False)

    assert post_all(client, btcpay, [invalid, *settled]) == [200, 200, 200]  # the stale ones come last

    assert balance_of(alice) == Decimal("10")
    assert not LedgerEntry.objects.filter(idempotency_key__startswith=f"btcpay-topup:{topup.session_id}")
    topup.refresh_from_db()
    assert (topup.status, topup.credited) == ("failed", Decimal("0"))


def test_a_stale_expiry_after_settlement_leaves_the_topup_paid(client, btcpay, alice):
    topup = start(alice, "10")
    settled = btcpay.pay(topup.session_id, "10", deliver=False)
    stale = btcpay.event("InvoiceExpired", topup.session_id, partiallyPaid=False, manuallyMarked=False)

    assert post_all(client, btcpay, [*settled, stale]) == [200, 200, 200]

    topup.refresh_from_db()
    assert (topup.status, topup.credited) == ("paid", Decimal("10")) and balance_of(alice) == Decimal("20")


def test_a_refund_while_money_is_held_debits_its_full_amount_and_refuses_new_holds(client, btcpay, alice):
    topup = start(alice, "20")
    payment_settled, invoice_settled = btcpay.pay(topup.session_id, "20", deliver=False)
    post_all(client, btcpay, [payment_settled, invoice_settled])
    held = ledger.hold(account_id=alice.account.pk, amount="28", idempotency_key=f"btc-rf-held-{topup.pk}")

    assert refunds.refund_remaining(topup) == Decimal("20")  # the operator's refund: a pull payment

    [refund] = LedgerEntry.objects.filter(kind="refund", account=alice.account)
    assert refund.amount == Decimal("-20") and balance_of(alice) == Decimal("10")  # not capped at $2
    with pytest.raises(ledger.InsufficientBalance):
        ledger.hold(account_id=alice.account.pk, amount="0.01", idempotency_key=f"btc-after-{topup.pk}")
    # The invoice's webhooks, replayed or delivered afresh, re-read it and credit nothing back.
    again = btcpay.event("InvoicePaymentSettled", topup.session_id, payment=payment_settled["payment"])
    assert post(client, btcpay, btcpay.redelivery(invoice_settled)).json()["status"] == "duplicate"
    assert post(client, btcpay, again).json()["status"] == "processed"
    assert balance_of(alice) == Decimal("10") and TopUp.objects.get(pk=topup.pk).status == "refunded"
    ledger.release(hold_id=held.id)


def test_a_negative_payment_never_becomes_a_topup_entry(client, btcpay, alice):
    topup = start(alice, "10")
    [payment_settled] = btcpay.pay(topup.session_id, "-5", deliver=False)

    assert post(client, btcpay, payment_settled).status_code == 200

    assert not LedgerEntry.objects.filter(idempotency_key__startswith=f"btcpay-topup:{topup.session_id}")
    assert balance_of(alice) == Decimal("10") and TopUp.objects.get(pk=topup.pk).status == "pending"
