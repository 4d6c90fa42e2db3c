"""YooKassa notifications: only YooKassa's networks are heard, every notification is re-read from the
API before money moves, and each payment or refund moves money once whatever the order or number of
deliveries. Alice pays in roubles at 90 RUB/USD; Bob exists to prove nothing leaks to him."""

from decimal import Decimal

import pytest

from billing import ledger, yookassa_rail
from billing.models import LedgerEntry, PaymentEvent, TopUp

from ..conftest import balance_of
from ..rails import books_checked, yookassa  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("books_checked")

URL = "/webhooks/yookassa"


def start(user, dollars: str) -> TopUp:
    topup, url = yookassa_rail.start_payment(user=user, amount=Decimal(dollars))
    assert url.endswith(f"/checkout/{topup.session_id}")
    return topup


def post(client, note, ip="127.0.0.1"):
    return client.post(URL, note, content_type="application/json", REMOTE_ADDR=ip)


def assert_books_balance():
    assert ledger.find_mismatches() == []


def test_a_payment_is_priced_in_rubles_at_the_rate_fixed_at_creation(yookassa, alice, settings):
    topup = start(alice, "25")
    settings.YOOKASSA_USD_RATE = "120"  # a later rate change does not touch an open payment

    [call] = [r for r in yookassa.requests if r["path"] == "/v3/payments"]
    assert call["json"]["amount"] == {"value": "2250.00", "currency": "RUB"}
    assert call["json"]["confirmation"]["type"] == "redirect"
    assert call["json"]["confirmation"]["return_url"].endswith(f"/billing/?checkout=return&ref={topup.ref}")
    assert call["headers"]["idempotence-key"] == str(topup.ref)
    assert (topup.rail, topup.currency, topup.pay_amount, topup.rate) == (
        "yookassa",
        "rub",
        Decimal("2250"),
        Decimal("90"),
    )


def test_a_succeeded_payment_credits_the_usd_amount_once(client, yookassa, alice, bob):
    topup = start(alice, "25")
    note = yookassa.succeed(topup.session_id, deliver=False)

    first, again = post(client, note), post(client, note)

    assert first.json()["status"] == "processed" and again.json()["status"] == "duplicate"
    assert balance_of(alice) == Decimal("35") and balance_of(bob) == Decimal("10")
    topup.refresh_from_db()
    assert (topup.status, topup.credited) == ("paid", Decimal("25"))
    [entry] = LedgerEntry.objects.filter(idempotency_key=f"yookassa-topup:{topup.session_id}")
    assert entry.amount == Decimal("25") and "2250.00 RUB at 90" in entry.reason
    assert [r["path"] for r in yookassa.requests].count(
        f"/v3/payments/{topup.session_id}"
    ) == 1  # re-read once
    assert_books_balance()


def test_a_notification_from_outside_yookassas_networks_is_refused_unrecorded(client, yookassa, alice):
    topup = start(alice, "10")
    note = yookassa.succeed(topup.session_id, deliver=False)

    response = post(client, note, ip="203.0.113.7")

    assert response.status_code == 403 and response.json()["code"] == "webhook_sender_not_allowed"
    assert not PaymentEvent.objects.filter(object_id=topup.session_id).exists()
    assert balance_of(alice) == Decimal("10")


def test_a_forged_success_for_an_unpaid_payment_moves_nothing_and_the_real_one_still_counts(
    client, yookassa, alice
):
    topup = start(alice, "10")
    forged = yookassa.notification(
        "payment.succeeded", {**yookassa.payments[topup.session_id], "status": "succeeded", "paid": True}
    )

    response = post(client, forged)

    assert response.status_code == 200 and response.json()["status"] == "ignored"  # YooKassa says pending
    assert balance_of(alice) == Decimal("10") and TopUp.objects.get(pk=topup.pk).status == "pending"

    real = yookassa.succeed(topup.session_id, deliver=False)  # same event and object id: not a duplicate yet
    assert post(client, real).json()["status"] == "processed"
    assert balance_of(alice) == Decimal("20")
    assert_books_balance()


def test_a_notification_for_a_payment_yookassa_does_not_know_is_not_credited(client, yookassa, alice):
    topup = start(alice, "10")
    yookassa.payments.pop(topup.session_id)  # YooKassa has never heard of it
    forged = yookassa.notification(
        "payment.succeeded",
        {
            "id": topup.session_id,
            "status": "succeeded",
            "paid": True,
            "amount": {"value": "99999.00", "currency": "RUB"},
        },
    )
    response = post(client, forged)

    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert balance_of(alice) == Decimal("10") and TopUp.objects.get(pk=topup.pk).status == "pending"


def test_when_yookassa_is_unreachable_the_notification_fails_and_a_retry_applies_it(client, yookassa, alice):
    topup = start(alice, "10")
    note = yookassa.succeed(topup.session_id, deliver=False)
    yookassa.stop()

    assert post(client, note).status_code == 500
    yookassa.start()
    assert post(client, note).json()["status"] == "processed"
    assert balance_of(alice) == Decimal("20")


@pytest.mark.parametrize("body", ["not json", "[]", '{"type": "notification", "event": "payment.succeeded"}'])
def test_a_body_that_is_not_a_notification_is_refused(client, yookassa, committed, body):
    assert client.post(URL, body, content_type="application/json", REMOTE_ADDR="127.0.0.1").status_code == 400


def test_a_canceled_payment_marks_the_topup_cancelled_and_a_late_success_wins(client, yookassa, alice):
    topup = start(alice, "10")
    canceled = yookassa.cancel(topup.session_id, deliver=False)

    assert post(client, canceled).json()["status"] == "processed"
    assert TopUp.objects.get(pk=topup.pk).status == "cancelled" and balance_of(alice) == Decimal("10")

    # Out of order: a stale canceled notification after the payment succeeded does not un-credit it.
    success = yookassa.succeed(topup.session_id, deliver=False)
    assert post(client, success).status_code == 200
    assert post(client, canceled).json()["status"] in ("duplicate", "ignored")
    assert TopUp.objects.get(pk=topup.pk).status == "paid" and balance_of(alice) == Decimal("20")
    assert_books_balance()


def test_a_refund_before_its_payment_notification_still_adds_up(client, yookassa, alice):
    topup = start(alice, "20")
    paid = yookassa.succeed(topup.session_id, deliver=False)
    refund = yookassa.refund(topup.session_id, "900.00", deliver=False)  # 10 USD at 90

    assert post(client, refund).status_code == 200  # arrives first: the payment is re-read later
    assert post(client, paid).status_code == 200
    assert post(client, refund).status_code == 200 and balance_of(alice) == Decimal("20")

    topup.refresh_from_db()
    assert (topup.status, topup.refunded) == ("paid", Decimal("10"))
    rest = yookassa.refund(topup.session_id, deliver=False)
    assert post(client, rest).status_code == 200
    topup.refresh_from_db()
    assert balance_of(alice) == Decimal("10") and (topup.status, topup.refunded) == (
        "refunded",
        Decimal("20"),
    )
    assert_books_balance()


def test_a_refund_while_money_is_held_debits_its_full_amount(client, yookassa, alice):
    topup = start(alice, "20")
    post(client, yookassa.succeed(topup.session_id, deliver=False))
    held = ledger.hold(account_id=alice.account.pk, amount="28", idempotency_key=f"yk-held-{topup.pk}")

    assert post(client, yookassa.refund(topup.session_id, deliver=False)).status_code == 200

    [refund] = LedgerEntry.objects.filter(kind="refund", account=alice.account)
    assert refund.amount == Decimal("-20")  # all of it, not what was left beside the hold
    assert balance_of(alice) == Decimal("10")
    ledger.release(hold_id=held.id)
    assert_books_balance()


def test_without_settings_the_endpoint_answers_503(client, settings, committed):
    settings.YOOKASSA_SHOP_ID = ""
    assert client.post(URL, "{}", content_type="application/json").status_code == 503


def test_a_replayed_refund_notification_debits_once(client, yookassa, alice):
    topup = start(alice, "20")
    post(client, yookassa.succeed(topup.session_id, deliver=False))
    refund = yookassa.refund(topup.session_id, "900.00", deliver=False)  # 10 USD at 90

    first, again = post(client, refund), post(client, refund)

    assert first.json()["status"] == "processed" and again.json()["status"] == "duplicate"
    assert [e.amount for e in LedgerEntry.objects.filter(kind="refund", account=alice.account)] == [
        Decimal("-10")
    ]
    assert balance_of(alice) == Decimal("20")
    assert TopUp.objects.get(pk=topup.pk).refunded == Decimal("10")


def test_a_forged_refund_notification_moves_nothing(client, yookassa, alice):
    topup = start(alice, "20")
    post(client, yookassa.succeed(topup.session_id, deliver=False))
    forged = yookassa.notification(
        "refund.succeeded",
        {
            "id": "2f0a41b3-0015-5000-8000-1d6e1ad0beef",  # YooKassa has no such refund
            "payment_id": topup.session_id,
            "status": "succeeded",
            "amount": {"value": "1800.00", "currency": "RUB"},
        },
    )

    response = post(client, forged)

    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert not LedgerEntry.objects.filter(kind="refund", account=alice.account).exists()
    assert balance_of(alice) == Decimal("30")
    topup.refresh_from_db()
    assert (topup.status, topup.refunded) == ("paid", Decimal("0"))


def test_a_negative_amount_never_becomes_a_topup_entry(client, yookassa, alice):
    topup = start(alice, "10")
    note = yookassa.succeed(topup.session_id, deliver=False)
    yookassa.payments[topup.session_id]["amount"] = {"value": "-900.00", "currency": "RUB"}  # as re-read

    assert post(client, note).status_code == 500  # recorded as failed; YooKassa retries; an operator looks
    assert not LedgerEntry.objects.filter(idempotency_key=f"yookassa-topup:{topup.session_id}").exists()
    assert balance_of(alice) == Decimal("10") and TopUp.objects.get(pk=topup.pk).status == "pending"
