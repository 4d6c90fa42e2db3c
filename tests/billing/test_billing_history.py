"""What a paying user sees: the rails on offer, a receipt per top-up (owner-only), the transaction
history with its CSV, and an overview that open checkouts do not crowd. Alice pays; Bob's money and
receipts never show on her pages."""

import csv
import io
import uuid
from decimal import Decimal

import pytest

from billing import ledger
from billing.models import LedgerEntry, TopUp

from ..rails import btcpay, yookassa  # noqa: F401 (fixtures)


@pytest.fixture
def no_rails(settings):
    """Requested before a rail fixture: that rail alone is configured."""
    settings.STRIPE_SECRET_KEY = settings.YOOKASSA_SHOP_ID = settings.BTCPAY_URL = ""


def topup_of(user, status="paid", rail="stripe", **fields) -> TopUp:
    return TopUp.objects.create(
        user=user,
        rail=rail,
        session_id=f"t_{uuid.uuid4().hex}",
        amount=Decimal("25"),
        status=status,
        credited=Decimal("25") if status == "paid" else 0,
        **fields,
    )


def test_the_billing_page_offers_exactly_the_configured_rails(no_rails, client, alice, yookassa):
    client.force_login(alice)
    html = client.get("/billing/").content.decode()

    assert (
        'data-rail="yookassa"' in html
        and 'data-rail="stripe"' not in html
        and 'data-rail="btcpay"' not in html
    )
    assert "1 USD = 90.00 RUB" in html and "2250.00 RUB" in html  # $25 at 90, shown before paying


def test_a_yookassa_topup_redirects_to_its_confirmation_page(no_rails, client, alice, yookassa):
    client.force_login(alice)
    response = client.post("/billing/topup", {"amount": "10", "rail": "yookassa"})

    topup = TopUp.objects.get(user=alice)
    assert (
        response.status_code == 302
        and response["Location"] == f"{yookassa.base_url}/checkout/{topup.session_id}"
    )
    assert (topup.rail, topup.pay_amount, topup.rate) == ("yookassa", Decimal("900"), Decimal("90"))


def test_a_rail_that_is_not_configured_is_refused(no_rails, client, alice, yookassa):
    client.force_login(alice)
    response = client.post("/billing/topup", {"amount": "10", "rail": "btcpay"})
    assert response.status_code == 400 and not TopUp.objects.filter(user=alice).exists()


def test_returning_from_btcpay_reads_the_invoice_back(no_rails, client, alice, btcpay):
    client.force_login(alice)
    client.post("/billing/topup", {"amount": "10", "rail": "btcpay"})
    topup = TopUp.objects.get(user=alice)
    btcpay.pay(topup.session_id, "10", deliver=False)  # the webhook has not arrived

    html = client.get(f"/billing/?checkout=return&ref={topup.ref}").content.decode()

    assert "Payment received" in html and TopUp.objects.get(pk=topup.pk).status == "paid"


def test_a_receipt_shows_amount_rail_rate_reference_and_date_to_its_owner_only(client, alice, bob):
    topup = topup_of(alice, rail="yookassa", currency="rub", pay_amount=Decimal("2250"), rate=Decimal("90"))

    client.force_login(alice)
    html = client.get(f"/billing/receipts/{topup.ref}/").content.decode()
    assert "2250.00 RUB" in html and "1 USD = 90.0000 RUB" in html and "$25.00 USD" in html
    assert "YooKassa" in html and str(topup.ref) in html and topup.session_id in html
    assert "window.print()" in html

    client.force_login(bob)
    assert client.get(f"/billing/receipts/{topup.ref}/").status_code == 404
    assert client.get(f"/billing/receipts/{uuid.uuid4()}/").status_code == 404


def test_the_history_lists_every_movement_with_reasons_and_daily_charge_totals(client, alice, bob, operator):
    ledger.post(
        account_id=alice.account.pk,
        amount="5",
        kind=LedgerEntry.ADJUSTMENT,
        idempotency_key=f"admin:{uuid.uuid4().hex}",
        reason="goodwill credit for the outage",
        created_by=operator,
    )
    for n in range(3):
        h = ledger.hold(account_id=alice.account.pk, amount="1", idempotency_key=f"hist-{alice.pk}-{n}")
        ledger.settle(hold_id=h.id, actual="0.25")
    ledger.post(
        account_id=bob.account.pk,
        amount="777",
        kind=LedgerEntry.ADJUSTMENT,
        idempotency_key=f"bob-{bob.pk}",
        reason="bob's secret",
    )

    client.force_login(alice)
    html = client.get("/billing/transactions/").content.decode()

    assert "goodwill credit for the outage" in html and "Adjustment by an operator" in html
    assert "3 charges for requests and jobs" in html and "-$0.75" in html
    assert "test credit" in html and "bob&#x27;s secret" not in html and "777" not in html
    rows = list(csv.reader(io.StringIO(client.get("/billing/transactions.csv").content.decode())))
    assert rows[0] == ["date", "kind", "amount_usd", "balance_after_usd", "description"]
    kinds = {(r[1], r[2]) for r in rows[1:]}
    assert ("Adjustment by an operator", "5.00000000") in kinds and ("API usage", "-0.75000000") in kinds
    assert ("Top-up", "10.00000000") in kinds and len(rows) == 4


def test_a_reason_that_looks_like_a_formula_is_not_one_in_the_csv(client, alice):
    ledger.post(
        account_id=alice.account.pk,
        amount="1",
        kind=LedgerEntry.ADJUSTMENT,
        idempotency_key=f"admin:{uuid.uuid4().hex}",
        reason='=HYPERLINK("http://x")',
    )
    client.force_login(alice)
    body = client.get("/billing/transactions.csv").content.decode()
    assert "'=HYPERLINK" in body


def test_open_and_abandoned_checkouts_do_not_push_paid_topups_off_the_overview(client, alice, no_rails):
    paid = [topup_of(alice) for _ in range(3)]
    for status in ("pending", "cancelled", "expired", "failed"):
        topup_of(alice, status=status)

    client.force_login(alice)
    html = client.get("/dashboard/").content.decode()

    assert html.count('class="badge badge-paid"') == 3 and "badge-pending" not in html
    assert "badge-cancelled" not in html and len(paid) == 3


@pytest.fixture
def operator(committed):
    from ..conftest import make_user

    return make_user("operator")
