"""An operator refunds a top-up through its own rail from the admin: the rail gets one refund, the
ledger one debit, and the rail's later refund webhook moves nothing more. Alice paid; the operator
is staff and superuser."""

import uuid
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import User
from billing import btcpay_rail, ledger, yookassa_rail
from billing.models import LedgerEntry, TopUp

from ..conftest import balance_of
from ..rails import books_checked, btcpay, yookassa  # noqa: F401 (fixtures)
from tests.billing.test_stripe_webhooks import open_topup, post, stripe_fake  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("books_checked")


@pytest.fixture
def operator(committed):
    user = User.objects.create_superuser(f"op-{uuid.uuid4().hex[:8]}@example.com", "operator pass 123")
    client = Client()
    client.force_login(user)
    return client


def refund_in_admin(operator, topup):
    return operator.post(
        "/admin/billing/topup/",
        {"action": "refund_through_rail", "_selected_action": [topup.pk]},
        follow=True,
    )


def refunds_of(user) -> list[Decimal]:
    return [e.amount for e in LedgerEntry.objects.filter(account=user.account, kind="refund")]


def test_a_stripe_refund_from_the_admin_debits_once_with_its_webhook(client, operator, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 20)
    post(client, stripe_fake, stripe_fake.complete(sid)[0])
    topup = TopUp.objects.get(session_id=sid)

    page = refund_in_admin(operator, topup).content.decode()

    assert "refunded $20.00" in page
    assert refunds_of(alice) == [Decimal("-20")] and balance_of(alice) == Decimal("10")
    [refunded_event] = [e for e in stripe_fake.outbox if e["type"] == "charge.refunded"]
    assert post(client, stripe_fake, refunded_event).status_code == 200
    assert refunds_of(alice) == [Decimal("-20")] and TopUp.objects.get(pk=topup.pk).status == "refunded"
    assert "nothing left to refund" in refund_in_admin(operator, topup).content.decode()
    assert ledger.find_mismatches() == []


def test_a_yookassa_refund_from_the_admin_debits_once_with_its_notification(
    client, operator, yookassa, alice
):
    topup, _ = yookassa_rail.start_payment(user=alice, amount=Decimal("20"))
    client.post(
        "/webhooks/yookassa",
        yookassa.succeed(topup.session_id, deliver=False),
        content_type="application/json",
    )

    refund_in_admin(operator, topup)

    [call] = [r for r in yookassa.requests if r["path"] == "/v3/refunds"]
    assert call["json"]["amount"] == {"value": "1800.00", "currency": "RUB"}  # all of what was paid
    [note] = yookassa.outbox
    assert client.post("/webhooks/yookassa", note, content_type="application/json").status_code == 200
    assert refunds_of(alice) == [Decimal("-20")] and balance_of(alice) == Decimal("10")
    assert TopUp.objects.get(pk=topup.pk).status == "refunded"
    assert ledger.find_mismatches() == []


def test_a_crypto_refund_from_the_admin_is_a_pull_payment_debited_once(client, operator, btcpay, alice):
    topup, _ = btcpay_rail.start_invoice(user=alice, amount=Decimal("20"))
    btcpay.pay(topup.session_id, "20", deliver=False)
    btcpay_rail.reconcile(topup.session_id)

    refund_in_admin(operator, topup)
    refund_in_admin(operator, topup)  # a second click finds nothing left

    [pull] = btcpay.pull_payments
    assert (pull["amount"], pull["currency"], pull["invoiceId"]) == ("20.00", "USD", topup.session_id)
    assert refunds_of(alice) == [Decimal("-20")] and balance_of(alice) == Decimal("10")
    assert TopUp.objects.get(pk=topup.pk).status == "refunded"
    assert ledger.find_mismatches() == []


def test_an_unpaid_topup_is_not_refunded(operator, stripe_fake, alice):
    sid = open_topup(stripe_fake, alice, 20)
    page = refund_in_admin(operator, TopUp.objects.get(session_id=sid)).content.decode()
    assert "nothing left to refund" in page and refunds_of(alice) == []
