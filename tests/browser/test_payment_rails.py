"""Each payment rail in a real browser, against its fake on a socket: top up, cancel, and see a refund
(or crypto's reversal) arrive by webhook, then the receipt and the transaction history. The gateway
runs as its own process with all three rails configured (conftest's rails_site); the fakes post
their webhooks to it."""

import re
from decimal import Decimal

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import expect

from billing import ledger
from billing.models import TopUp

from . import pages
from .conftest import SCREENSHOTS

PASSWORD = "rails pass 123"


def log_in(page, site, label: str):
    """A payer with no credit, on the billing page."""
    user = pages.log_in(page, site, label, credit="0")
    page.goto(site.url + "/billing/")
    return user


def choose(page, rail: str, dollars: int) -> None:
    page.locator(f'[data-rail="{rail}"]').get_by_role("button", name=re.compile(rf"^\${dollars}\b")).click()


def newest(user) -> TopUp:
    return TopUp.objects.filter(user=user).order_by("-id").first()


def open_receipt(page, shoot, name: str) -> None:
    page.locator("[data-topup]").first.get_by_role("link", name="Receipt").click()
    expect(page.get_by_test_id("receipt")).to_be_visible()
    shoot(name)


def test_stripe_top_up_cancel_and_refund(page, rails_site, shoot):
    site = rails_site
    user = log_in(page, site, "stripe-payer")
    expect(page.locator("[data-rail]")).to_have_count(3)  # exactly the configured rails
    shoot("30-billing-three-rails")

    choose(page, "stripe", 10)
    expect(page).to_have_url(re.compile(r"/pay/cs_test_"))
    page.get_by_role("link", name="Cancel and return").click()
    expect(page.get_by_test_id("checkout-cancelled")).to_be_visible()
    expect(page.locator("[data-topup]").first).to_contain_text("Cancelled")
    assert newest(user).status == "cancelled"

    choose(page, "stripe", 25)
    page.locator("#pay").click()
    expect(page.get_by_text("Payment received.")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("$25.00")
    open_receipt(page, shoot, "31-receipt-stripe")
    expect(page.get_by_test_id("receipt-rail")).to_have_text("Card (Stripe)")

    site.stripe.deliver(site.stripe.refund(newest(user).session_id, cents=1000))
    page.goto(site.url + "/billing/transactions/")
    expect(page.locator('tr[data-kind="refund"]')).to_contain_text("-$10.00")
    shoot("32-transactions-after-refund")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert "Refund" in download.value.path().read_text()
    assert ledger.find_mismatches() == []


def test_yookassa_top_up_cancel_and_refund(page, rails_site, shoot):
    site = rails_site
    user = log_in(page, site, "yookassa-payer")
    expect(page.get_by_test_id("yookassa-rate")).to_contain_text("1 USD = 92.50 RUB")

    choose(page, "yookassa", 10)
    expect(page).to_have_url(re.compile(r"/checkout/"))
    expect(page.locator(".amt")).to_have_text("925.00 RUB")  # the quoted price, fixed on the payment
    page.locator("#cancel").click()
    expect(page.locator("[data-topup]").first).to_contain_text("Cancelled")
    assert newest(user).status == "cancelled"

    choose(page, "yookassa", 25)
    shoot("33-fake-yookassa")
    page.locator("#pay").click()
    expect(page.get_by_text("Payment received.")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("$25.00")
    open_receipt(page, shoot, "34-receipt-yookassa")
    expect(page.get_by_test_id("receipt-paid")).to_have_text("2312.50 RUB")
    expect(page.get_by_test_id("receipt-rate")).to_contain_text("1 USD = 92.5000 RUB")

    site.yookassa.refund(newest(user).session_id)  # a full refund, notified from loopback
    page.goto(site.url + "/billing/")
    expect(page.locator("[data-topup]").first).to_contain_text("Refunded")
    expect(page.get_by_test_id("balance")).to_have_text("$0.00")
    assert ledger.find_mismatches() == []


def refund_as_operator(browser, site, topup, name: str) -> None:
    """An operator refunds the top-up through its rail in the admin, in a browser of their own."""
    import uuid

    from accounts.models import User

    email = f"op-{uuid.uuid4().hex[:8]}@example.com"
    operator = User.objects.create_superuser(email, "x")
    hasher = PBKDF2PasswordHasher()
    operator.password = hasher.encode(PASSWORD, hasher.salt())
    operator.save(update_fields=["password"])
    context = browser.new_context()
    admin = context.new_page()
    admin.goto(f"{site.url}/admin/login/?next=/admin/billing/topup/")
    admin.locator("#id_username").fill(email)
    admin.locator("#id_password").fill(PASSWORD)
    admin.locator("input[type=submit]").click()
    admin.locator(f'input[name="_selected_action"][value="{topup.pk}"]').check()
    admin.locator('select[name="action"]').select_option("refund_through_rail")
    admin.get_by_role("button", name="Go").click()
    expect(admin.locator(".messagelist")).to_contain_text("refunded $")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    admin.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    context.close()


def test_crypto_top_up_partial_payment_expiry_and_refund(page, browser, rails_site, shoot):
    site = rails_site
    user = log_in(page, site, "crypto-payer")

    choose(page, "btcpay", 10)
    expect(page).to_have_url(re.compile(r"/i/"))
    page.locator("#cancel").click()  # lets the invoice expire
    expect(page.get_by_text("The payment expired.")).to_be_visible()
    assert newest(user).status == "expired"

    choose(page, "btcpay", 50)
    shoot("35-fake-btcpay")
    page.locator("#pay-half").click()  # half paid; credited by what settled
    expect(page.get_by_text("Payment received.")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("$25.00")
    topup = newest(user)
    assert (topup.status, topup.credited) == ("paid", Decimal("25"))
    open_receipt(page, shoot, "36-receipt-crypto")
    expect(page.get_by_test_id("receipt-credited")).to_have_text("$25.00 USD")

    site.btcpay.expire(
        topup.session_id
    )  # the rest never came: BTCPay refunds a partly paid invoice once expired
    assert TopUp.objects.get(pk=topup.pk).status == "paid"
    refund_as_operator(browser, site, topup, "38-admin-crypto-refund")
    assert site.btcpay.pull_payments[-1]["amount"] == "25.00"  # the buyer claims it at BTCPay
    page.goto(site.url + "/billing/")
    expect(page.locator("[data-topup]").first).to_contain_text("Refunded")
    expect(page.get_by_test_id("balance")).to_have_text("$0.00")
    assert ledger.find_mismatches() == []


def test_a_crypto_payment_that_turns_invalid_shows_a_negative_balance_and_why(page, rails_site, shoot):
    site = rails_site
    user = log_in(page, site, "crypto-reversed")
    choose(page, "btcpay", 25)
    page.locator("#pay").click()
    expect(page.get_by_test_id("balance")).to_have_text("$25.00")
    held = ledger.hold(account_id=user.account.pk, amount="20", idempotency_key=f"browser-held-{user.pk}")
    ledger.settle(hold_id=held.id, actual="20")  # $20 spent, $5 left

    site.btcpay.invalidate_payment(newest(user).session_id)
    page.goto(site.url + "/dashboard/")
    expect(page.get_by_test_id("negative-balance")).to_contain_text("-$20.00")
    expect(page.get_by_test_id("negative-balance")).to_contain_text("dispute")
    shoot("37-overview-negative-balance")
    assert ledger.find_mismatches() == []
