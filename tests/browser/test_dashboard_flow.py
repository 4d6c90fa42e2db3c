"""A person's path through the console in a real browser: sign up → create a key → top up through
(fake) Stripe Checkout and its signed webhook → call the API → read usage → edit and revoke the
key and see the API refuse it. Every page is screenshotted into test-artifacts/screenshots/."""

import random
import re
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import User
from billing.models import TopUp
from billing.models import UsageLog

from ..conftest import make_user

PASSWORD = "browser pass 123"
MODELS = ["claude-haiku-4-5", "gpt-4o", "gemini-3-pro", "deepseek-v4-flash", "grok-4"]


def sign_up(page, site) -> str:
    email = f"erin-{uuid.uuid4().hex[:6]}@example.com"
    page.goto(site.url + "/")
    page.get_by_role("link", name="Get an API key").click()
    expect(page).to_have_url(re.compile(r"/signup/$"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    expect(page.get_by_test_id("onboarding")).to_contain_text("Your balance is $0")
    page.get_by_test_id("onboarding").get_by_role("link", name="Create a key").click()
    expect(page).to_have_url(re.compile(r"/keys/create$"))  # the form page (what a browser without JS uses)
    page.goto(site.url + "/keys/")
    expect(page.get_by_role("heading", name="No API keys yet")).to_be_visible()
    return email


def create_key(page, shoot) -> str:
    page.keyboard.press("n")  # shortcut for the "Create key" button
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Name", exact=True).fill("laptop")
    dialog.get_by_label("Monthly spend cap (USD)").fill("20")
    shoot("03-key-create-dialog", full_page=False)
    dialog.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("new-key")
    expect(secret).to_be_visible()
    raw = secret.inner_text().strip()
    assert raw.startswith("gpuniq_")
    expect(
        dialog.get_by_role("button", name="Copy")
    ).to_be_focused()  # Enter copies; it never dismisses the key
    expect(dialog.locator("pre")).to_contain_text(f'-H "X-API-Key: {raw}"')  # "Try it" pastes as is
    expect(page.locator("#keys-table")).to_contain_text("laptop")  # refreshed behind the dialog
    shoot("04-key-created", full_page=False)
    page.get_by_role("link", name=re.compile("I saved it")).click()
    expect(page.locator("#keys-table")).to_contain_text(raw[:11])
    expect(page.get_by_test_id("new-key")).to_have_count(0)  # shown once
    expect(
        page.locator(".page-actions").get_by_role("link", name="Create key")
    ).to_be_focused()  # back to the opener
    expect(page.locator("#keys-table [data-month-spend]").first).to_have_text(
        re.compile(r"\$0\.00\s*/\s*\$20\.00")
    )
    return raw


def top_up(page, site, shoot) -> None:
    page.goto(site.url + "/billing/")
    expect(page.get_by_test_id("balance")).to_have_text("$0.00")
    shoot("05-billing-empty")
    page.get_by_role("button", name=re.compile(r"^\$25")).click()
    expect(page).to_have_url(re.compile(r"/pay/cs_test_"))
    shoot("06-fake-stripe-checkout", full_page=False)
    page.locator("#pay").click()  # the fake posts a signed checkout.session.completed, then redirects back
    expect(page).to_have_url(re.compile(r"/billing/\?checkout=success&session_id=cs_test_"))
    expect(page.get_by_text("Payment received.")).to_be_visible()
    expect(page.get_by_test_id("balance")).to_have_text("$25.00")
    expect(page.locator("[data-topup]")).to_have_count(1)
    expect(page.locator("[data-topup]")).to_contain_text("Paid")
    shoot("07-billing-paid")


def api(site, raw_key, method, path, **kw) -> httpx.Response:
    return httpx.request(
        method, site.url + path, headers={"Authorization": f"Bearer {raw_key}"}, timeout=30, **kw
    )


def seed_history(email: str, days: int = 30) -> None:
    """Thirty days of earlier requests, so the charts have something to draw."""
    user = User.objects.get(email=email)
    key = user.api_keys.first()
    rng = random.Random(7)
    now = timezone.now()
    for day in range(1, days):
        for model in rng.sample(MODELS, rng.randint(1, 4)):
            prompt, completion = rng.randint(200, 9000), rng.randint(50, 3000)
            failed = rng.random() < 0.08
            row = UsageLog.objects.create(
                user=user,
                api_key=key,
                request_id=f"req_{uuid.uuid4().hex}",
                model=model,
                route=f"seed:{model}",
                prompt_tokens=prompt,
                completion_tokens=completion,
                cost_usd=0
                if failed
                else Decimal(prompt * 2 + completion * 8) / Decimal(1_000_000) * rng.randint(1, 9),
                latency_ms=rng.randint(300, 4000),
                status="error" if failed else "ok",
                error_code="upstream_timeout" if failed else "",
            )
            UsageLog.objects.filter(pk=row.pk).update(
                created_at=now - timedelta(days=day, hours=rng.randint(0, 20))
            )


def read_usage(page, site, shoot) -> None:
    page.goto(site.url + "/usage/")
    expect(page.locator("svg.chart")).to_have_count(2)
    expect(page.locator(".legend").first).to_contain_text("gpt-4o")
    shoot("08-usage-30-days")
    page.get_by_role("link", name="7 days").click()  # htmx swaps the charts only
    expect(page).to_have_url(re.compile(r"range=7"))
    expect(page.locator(".segmented [aria-current=true]")).to_have_text("7 days")
    page.get_by_label("Model").select_option("gpt-4o")
    expect(page.locator("#usage-table tbody tr").first).to_contain_text("gpt-4o")
    expect(page.locator("#usage-table")).not_to_contain_text("claude-haiku-4-5")
    shoot("09-usage-7-days-filtered")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    assert (
        "gpt-4o" in download.value.path().read_text()
        and "claude-haiku-4-5" not in download.value.path().read_text()
    )


def edit_and_revoke(page, site, shoot, raw_key) -> None:
    page.goto(site.url + "/keys/")
    row = page.locator("#keys-table tbody tr").first
    row.get_by_role("link", name="Edit").click()
    form = page.locator("tr.edit-row")
    form.get_by_label("Requests per minute").fill("60")
    shoot("10-key-edit", full_page=False)
    form.get_by_role("button", name="Save limits").click()
    expect(row).to_contain_text("Saved")
    expect(row.locator("td.num").first).to_have_text("60")
    row.get_by_role("link", name="Revoke").click()
    confirm = page.locator("#confirm-dialog")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("Programs using it stop working at once")
    shoot("11-key-revoke-confirm", full_page=False)
    confirm.get_by_role("button", name="Confirm").click()
    expect(row).to_contain_text("revoked")
    shoot("12-key-revoked")
    refused = api(site, raw_key, "GET", "/v1/llm/balance")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "revoked_api_key"


def test_sign_up_create_a_key_top_up_use_it_and_revoke_it(page, dashboard_site, shoot):
    site = dashboard_site
    page.goto(site.url + "/")
    shoot("01-home")
    email = sign_up(page, site)
    shoot("02-keys-empty")
    raw_key = create_key(page, shoot)
    assert api(site, raw_key, "GET", "/v1/llm/balance").json()["data"]["balance_usd"] == 0.0

    top_up(page, site, shoot)
    assert api(site, raw_key, "GET", "/v1/llm/balance").json()["data"]["balance_usd"] == 25.0
    assert TopUp.objects.get(user__email=email).status == "paid"

    chat = api(
        site,
        raw_key,
        "POST",
        "/v1/openai/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hello from the browser test"}]},
    )
    assert chat.status_code == 200, chat.text
    seed_history(email)
    read_usage(page, site, shoot)

    assert (
        24.9 < api(site, raw_key, "GET", "/v1/llm/balance").json()["data"]["balance_usd"] < 25.0
    )  # chat was charged
    page.goto(site.url + "/dashboard/")
    expect(page.get_by_test_id("balance")).to_have_text(
        "$25.00"
    )  # cents shown; the charge was a fraction of one
    shoot("13-overview")
    page.goto(site.url + "/quickstart/")
    page.get_by_role("tab", name="Python (OpenAI SDK)").click()
    expect(page.locator("#panel-python")).to_be_visible()
    shoot("14-quickstart")
    edit_and_revoke(page, site, shoot, raw_key)


def test_the_console_in_dark_mode_on_a_phone_and_by_keyboard(page, dashboard_site, shoot):
    site = dashboard_site
    user = make_user("frank", "42.5")
    hasher = PBKDF2PasswordHasher()  # the server's hasher (the test settings use MD5)
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    TopUp.objects.create(
        user=user, session_id=f"cs_tour_{uuid.uuid4().hex}", amount=Decimal(50), status="paid"
    )
    seed_history(user.email, days=90)

    page.goto(site.url + "/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("do not match")).to_be_visible()
    shoot("20-login-error", full_page=False)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))

    page.keyboard.press("t")  # dark mode, remembered across pages
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    shoot("21-overview-dark")
    page.keyboard.press("g")
    page.keyboard.press("u")
    expect(page).to_have_url(re.compile(r"/usage/$"))
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.get_by_role("link", name="90 days").click()
    expect(page.locator(".segmented [aria-current=true]")).to_have_text("90 days")
    shoot("22-usage-90-days-dark")
    for path, name in [
        ("/keys/", "23-keys-dark"),
        ("/billing/", "24-billing-dark"),
        ("/errors/", "25-errors-dark"),
    ]:
        page.goto(site.url + path)
        shoot(name)
    page.keyboard.press("?")
    expect(page.locator("#shortcuts-dialog")).to_be_visible()
    shoot("26-shortcuts-dark", full_page=False)
    page.keyboard.press("Escape")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(site.url + "/dashboard/")
    shoot("27-overview-phone-dark")
    page.get_by_role("button", name="Menu").click()
    expect(page.locator("#sidebar-nav").get_by_role("link", name="Usage")).to_be_visible()
    shoot("28-menu-phone-dark", full_page=False)
