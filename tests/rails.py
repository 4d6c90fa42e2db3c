"""Shared by the payment-rail tests: the fakes of YooKassa and BTCPay, with the settings pointed at them."""

import pytest
from django.core.management import call_command

from .fakes.btcpay import FakeBTCPay
from .fakes.yookassa import FakeYooKassa


@pytest.fixture
def yookassa(settings):
    """The fake YooKassa API on a socket; the gateway's settings point at it; loopback is trusted."""
    fake = FakeYooKassa(shop_id="505050", secret_key="test_yk_secret").start()
    settings.YOOKASSA_SHOP_ID, settings.YOOKASSA_SECRET_KEY = fake.shop_id, fake.secret_key
    settings.YOOKASSA_API_BASE, settings.YOOKASSA_USD_RATE = fake.api_base, "90.00"
    settings.YOOKASSA_NOTIFICATION_IPS = ["127.0.0.1/32"]
    yield fake
    fake.stop()


@pytest.fixture
def btcpay(settings):
    """The fake BTCPay Server on a socket; the gateway's settings point at it."""
    fake = FakeBTCPay(
        api_key="btcpay-test-key", store_id="StoreTest1", webhook_secret="btcpay-test-secret"
    ).start()
    settings.BTCPAY_URL, settings.BTCPAY_API_KEY = fake.base_url, fake.api_key
    settings.BTCPAY_STORE_ID, settings.BTCPAY_WEBHOOK_SECRET = fake.store_id, fake.webhook_secret
    yield fake
    fake.stop()


@pytest.fixture
def books_checked(committed):
    """`check_ledger` after the test: every account's balance and holds re-add from its entries, and
    none is below zero or below what it holds unless a refund or dispute took the money back."""
    yield
    call_command("check_ledger")  # raises CommandError on any mismatch
