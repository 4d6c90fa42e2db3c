"""Shared by the payment-rail tests: the fakes' fixtures and a marker for the ledger change they need.

`full_debits`: a refund or lost dispute must debit its full amount even while money is held (the
balance may go below zero). billing/ledger.py gains that together with LedgerEntry.DISPUTE; until
then these tests are expected to fail (strictly: once the ledger has it, they must pass).
"""

import pytest

from billing.models import LedgerEntry

from .fakes.btcpay import FakeBTCPay
from .fakes.yookassa import FakeYooKassa

full_debits = pytest.mark.xfail(not hasattr(LedgerEntry, "DISPUTE"), strict=True,
                                reason="needs billing.ledger's full refund/dispute debits (LedgerEntry.DISPUTE)")


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
    fake = FakeBTCPay(api_key="btcpay-test-key", store_id="StoreTest1", webhook_secret="btcpay-test-secret").start()
    settings.BTCPAY_URL, settings.BTCPAY_API_KEY = fake.base_url, fake.api_key
    settings.BTCPAY_STORE_ID, settings.BTCPAY_WEBHOOK_SECRET = fake.store_id, fake.webhook_secret
    yield fake
    fake.stop()
