"""Payment webhooks never answer 500 for a body. PostgreSQL cannot store NUL or an unpaired UTF-16
surrogate in text or jsonb, nor Infinity in jsonb; each vendor's event is recorded before it is
handled, so such a body used to fail the insert on every delivery (500, "the vendor will retry",
forever). Authentic events are recorded with those characters replaced (U+FFFD; a non-finite number
becomes null) and still move their money once; a Stripe event whose data is not an object is 400.
Alice pays; each answer is the webhook's envelope with a catalog code."""

import json
from decimal import Decimal

import pytest

from billing import btcpay_rail, yookassa_rail
from billing.models import PaymentEvent, StripeEvent
from gpuniq_site.errors import CATALOG

from ..conftest import balance_of
from ..fakes.btcpay import sign as btcpay_sign
from ..fakes.stripe import sign as stripe_sign
from ..rails import btcpay, yookassa  # noqa: F401 (fixtures)
from .test_stripe_webhooks import SECRET, open_topup, post as stripe_post, stripe_fake  # noqa: F401

BAD = "a\x00b\ud800c"  # json.dumps writes these as the escapes \u0000 and \ud800
STORED = "a\ufffdb\ufffdc"


def assert_answer(response, allowed=(200, 400)) -> dict:
    assert response.status_code in allowed, response.content[:300]
    body = response.json()
    if response.status_code >= 400:
        assert body["received"] is False and CATALOG[body["code"]].status == response.status_code
    return body


def test_a_yookassa_payment_whose_notification_carries_nul_and_a_lone_surrogate_is_credited_once(
    client, yookassa, alice
):
    topup, _ = yookassa_rail.start_payment(user=alice, amount=Decimal("10"))
    note = yookassa.succeed(topup.session_id, deliver=False)
    note["object"]["description"] = BAD
    note["object"]["metadata"][BAD] = 1e400  # a key PostgreSQL cannot take, a number jsonb cannot

    for _ in range(2):
        response = client.post(
            "/webhooks/yookassa", json.dumps(note), content_type="application/json", REMOTE_ADDR="127.0.0.1"
        )
        assert_answer(response, allowed=(200,))
    assert response.json()["status"] == "duplicate"
    assert balance_of(alice) == Decimal("20")
    stored = PaymentEvent.objects.get(rail="yookassa", object_id=topup.session_id).payload["object"]
    assert stored["description"] == STORED and stored["metadata"][STORED] is None


def test_a_btcpay_settlement_whose_event_carries_nul_and_a_lone_surrogate_is_credited_once(
    client, btcpay, alice
):
    topup, _ = btcpay_rail.start_invoice(user=alice, amount=Decimal("10"))
    events = btcpay.pay(topup.session_id, "10", deliver=False)
    for event in events:
        event["metadata"] = {**event["metadata"], "buyerName": BAD}
        body, sig = btcpay.signed(event)
        response = client.post("/webhooks/btcpay", body, content_type="application/json", HTTP_BTCPAY_SIG=sig)
        assert_answer(response, allowed=(200,))
    assert balance_of(alice) == Decimal("20")
    recorded = PaymentEvent.objects.filter(rail="btcpay", object_id=topup.session_id)
    assert {e.payload["metadata"]["buyerName"] for e in recorded} == {STORED}


def test_a_stripe_checkout_whose_event_carries_nul_and_a_lone_surrogate_is_credited_once(
    client, stripe_fake, alice
):
    sid = open_topup(stripe_fake, alice, 25)
    [event] = stripe_fake.complete(sid)
    event["data"]["object"]["customer_details"] = {"name": BAD}

    response = stripe_post(client, stripe_fake, event)

    assert assert_answer(response, allowed=(200,))["status"] == "processed"
    assert balance_of(alice) == Decimal("35")
    assert StripeEvent.objects.get(event_id=event["id"]).payload["data"]["object"]["customer_details"] == {
        "name": STORED
    }


STRIPE_BODIES = {  # authentic (signed) bodies; data must be {"object": {...}}
    "nul id": ('{"id": "evt_\\u0000", "type": "x", "data": {"object": {}}}', 200),
    "surrogate text": ('{"id": "evt_s", "type": "x", "data": {"object": {"d": "\\ud800"}}}', 200),
    "infinite number": ('{"id": "evt_i", "type": "x", "data": {"object": {"amount": 1e400}}}', 200),
    "data a string": ('{"id": "evt_d", "type": "checkout.session.completed", "data": "x"}', 400),
    "object a list": ('{"id": "evt_o", "type": "checkout.session.completed", "data": {"object": [1]}}', 400),
    "no data": ('{"id": "evt_n", "type": "charge.refunded"}', 400),
    "type a number": ('{"id": "evt_t", "type": 1' + "0" * 200 + ', "data": {"object": {}}}', 400),
    "type too long": ('{"id": "evt_l", "type": "' + "x" * 101 + '", "data": {"object": {}}}', 400),
    "id too long": ('{"id": "evt_' + "x" * 252 + '", "type": "x", "data": {"object": {}}}', 400),
}


@pytest.mark.parametrize("name", STRIPE_BODIES)
def test_a_signed_stripe_body_postgresql_cannot_store_is_never_a_500(client, settings, committed, name):
    payload, status = STRIPE_BODIES[name]
    settings.STRIPE_WEBHOOK_SECRET = SECRET
    response = client.post(
        "/webhooks/stripe",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stripe_sign(payload, SECRET),
    )
    assert_answer(response, allowed=(status,))


RAIL_BODIES = [
    '{"type": "notification", "event": "payment.succeeded", "object": {"id": "p\\u0000x"}}',
    '{"type": "notification", "event": "x\\udc00", "object": {"id": "p\\ud800x"}}',
    '{"type": "notification", "event": "payment.succeeded", "object": {"id": "p1", "n": 1e999}}',
    '{"type": "notification", "event": "refund.succeeded", "object": {"id": "r", "payment_id": "\\u0000"}}',
]
BTCPAY_BODIES = [
    '{"deliveryId": "d\\u0000", "type": "InvoiceSettled", "invoiceId": "i1"}',
    '{"deliveryId": "d1", "type": "InvoiceSettled", "invoiceId": "i\\ud800"}',
    '{"deliveryId": "d2", "type": "X\\udc00", "invoiceId": "i1", "n": -1e400}',
    '{"deliveryId": "d3", "type": "InvoiceSettled", "invoiceId": "i1", "storeId": "\\u0000"}',
]


@pytest.mark.parametrize("body", RAIL_BODIES)
def test_a_yookassa_body_postgresql_cannot_store_is_never_a_500(client, yookassa, committed, body):
    assert_answer(
        client.post("/webhooks/yookassa", body, content_type="application/json", REMOTE_ADDR="127.0.0.1")
    )


@pytest.mark.parametrize("body", BTCPAY_BODIES)
def test_a_signed_btcpay_body_postgresql_cannot_store_is_never_a_500(client, btcpay, committed, body):
    sig = btcpay_sign(body, btcpay.webhook_secret)
    assert_answer(client.post("/webhooks/btcpay", body, content_type="application/json", HTTP_BTCPAY_SIG=sig))
