"""Browser tests: Debian's headless chromium (never a browser build Playwright downloads) against a
live gateway whose Stripe settings point at the fake Stripe, and whose chat vendors are the fakes.

Skipped when /usr/bin/chromium is missing on a developer machine; in CI (CI=true) that is a failure.
Screenshots go to test-artifacts/screenshots/ (gitignored).
"""

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from ..conftest import IN_CI, service_extra_env
from ..fakes.stripe import FakeStripe

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"CI=true but {CHROMIUM} is missing (.ci/run installs Debian's chromium)")
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, chromium_path):
    return {
        **browser_type_launch_args,
        "executable_path": chromium_path,
        "headless": True,
        "args": CHROMIUM_ARGS,
    }


# pytest-playwright keeps one Playwright (and its event loop, running in this thread) for the whole
# session; every later test would then see a running loop (Django's async guard, asyncio.run). These
# overrides end Playwright with this package.
@pytest.fixture(scope="package")
def playwright(_pw_api_request_contexts):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    yield pw
    pw.stop()


@pytest.fixture(scope="package")
def browser_type(playwright, browser_name):
    return getattr(playwright, browser_name)


@pytest.fixture(scope="package")
def launch_browser(browser_type_launch_args, browser_type):
    return lambda **kwargs: browser_type.launch(**{**browser_type_launch_args, **kwargs})


@pytest.fixture(scope="package")
def browser(launch_browser):
    browser = launch_browser()
    yield browser
    browser.close()


@pytest.fixture(scope="package")
def browser_context_args():
    return {
        "viewport": {"width": 1440, "height": 900},
        "color_scheme": "light",
        "timezone_id": "Europe/Berlin",
        "locale": "en-US",
    }


@pytest.fixture(scope="package")
def dashboard_site(chromium_path, catalog_loaded, fake_vendors):
    """A gateway on a socket with Stripe pointed at the fake; the fake posts webhooks back to it."""
    from ..live import LiveServer

    stripe = FakeStripe(api_key="sk_test_browser", webhook_secret="whsec_browser").start()
    server = LiveServer(
        env={
            **service_extra_env(fake_vendors),
            "STRIPE_SECRET_KEY": stripe.api_key,
            "STRIPE_WEBHOOK_SECRET": stripe.webhook_secret,
            "STRIPE_API_BASE": stripe.base_url,
        }
    ).start()
    stripe.webhook_url = f"{server.url}/webhooks/stripe"
    yield SimpleNamespace(url=server.url, stripe=stripe, server=server)
    server.stop()
    stripe.stop()


@pytest.fixture(scope="package")
def rails_site(chromium_path, catalog_loaded, fake_vendors):
    """A gateway with all three payment rails configured, each pointed at its fake on a socket."""
    from ..fakes.btcpay import FakeBTCPay
    from ..fakes.yookassa import FakeYooKassa
    from ..live import LiveServer

    stripe = FakeStripe(api_key="sk_test_rails", webhook_secret="whsec_rails").start()
    yookassa = FakeYooKassa(shop_id="777001", secret_key="test_rails_yk").start()
    btcpay = FakeBTCPay(
        api_key="btcpay-rails", store_id="StoreRails1", webhook_secret="btcpay-rails-wh"
    ).start()
    env = {
        **service_extra_env(fake_vendors),
        "STRIPE_SECRET_KEY": stripe.api_key,
        "STRIPE_WEBHOOK_SECRET": stripe.webhook_secret,
        "STRIPE_API_BASE": stripe.base_url,
        "YOOKASSA_SHOP_ID": yookassa.shop_id,
        "YOOKASSA_SECRET_KEY": yookassa.secret_key,
        "YOOKASSA_API_BASE": yookassa.api_base,
        "YOOKASSA_USD_RATE": "92.50",
        "YOOKASSA_NOTIFICATION_IPS": "127.0.0.1/32",
        "BTCPAY_URL": btcpay.base_url,
        "BTCPAY_API_KEY": btcpay.api_key,
        "BTCPAY_STORE_ID": btcpay.store_id,
        "BTCPAY_WEBHOOK_SECRET": btcpay.webhook_secret,
    }
    server = LiveServer(env=env).start()
    stripe.webhook_url = f"{server.url}/webhooks/stripe"
    yookassa.webhook_url = f"{server.url}/webhooks/yookassa"
    btcpay.webhook_url = f"{server.url}/webhooks/btcpay"
    yield SimpleNamespace(url=server.url, stripe=stripe, yookassa=yookassa, btcpay=btcpay)
    server.stop()
    for fake in (stripe, yookassa, btcpay):
        fake.stop()


@pytest.fixture(scope="package")
def playground_site(chromium_path, catalog_loaded, fake_vendors, celery_worker_proc):
    """A gateway on a socket with every vendor pointed at the fakes, and a Celery worker for media jobs."""
    from ..live import LiveServer

    server = LiveServer(env=service_extra_env(fake_vendors)).start()
    yield SimpleNamespace(url=server.url, server=server)
    server.stop()


@pytest.fixture
def shoot(page):
    """shoot(name): a full-page PNG screenshot in test-artifacts/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str, *, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    return take


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch, committed):
    """Playwright's sync API keeps an event loop in this thread; the test's own ORM reads and writes
    are still plain synchronous calls on committed data, so Django's async guard is lifted here only."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
