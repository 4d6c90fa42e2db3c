"""Every dashboard page as a month of use leaves it, at 1366 and 390 px in both themes: the billing
page with all three payment rails, a rouble receipt and a part-refunded card one, the transactions,
usage with failed rows, keys with caps, a chat with code and links, a studio gallery, the plain
new-key form page. Each fits without sideways scrolling, keeps the menu button on screen, has 0
serious or critical axe-core violations and no link told apart by colour alone. The new-key and
revoke dialogs are checked open; the studio's download is named from the prompt and model.
Screenshots land in test-artifacts/screenshots/."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing import ledger
from billing.models import LedgerEntry, TopUp, UsageLog
from llm.models import Chat, ChatMessage

from .pages import LAPTOP, PHONE, check_page, log_in, phone_header

VIEWPORTS = pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])

LONG_LINE = (
    'client = OpenAI(base_url="https://gateway.example.org/v1/openai", api_key="gpuniq_' + "0" * 40 + '")'
)
REPLY = f"""Here is the **whole** answer, with a [link to the docs](https://example.org/docs/chat) in the
middle of a sentence.

```python
{LONG_LINE}
print("a double-quoted string", 'a single-quoted one')
```

| model | input / 1M | output / 1M |
|---|---|---|
| claude-haiku-4-5 | $1.00 | $5.00 |

- a list item with `inline_code_that_is_quite_long_and_unbroken_for_a_phone_screen`
- https://example.org/a/very/long/address/that/never/breaks/on/its/own/0123456789abcdef
"""


def _top_ups(user) -> list[TopUp]:
    """A paid YooKassa top-up in roubles, and a Stripe one partly refunded (the longest session id)."""
    now = timezone.now()
    rub = TopUp.objects.create(
        user=user,
        rail=TopUp.YOOKASSA,
        session_id=f"2f{uuid.uuid4()}",
        amount=Decimal(25),
        currency="rub",
        pay_amount=Decimal("2312.50"),
        rate=Decimal("92.5"),
        credited=Decimal(25),
        status=TopUp.PAID,
        paid_at=now,
    )
    card = TopUp.objects.create(
        user=user,
        session_id="cs_test_" + uuid.uuid4().hex + uuid.uuid4().hex[:26],
        amount=Decimal(10),
        credited=Decimal(10),
        refunded=Decimal(4),
        status=TopUp.PAID,
        paid_at=now - timedelta(days=2),
    )
    ledger.post(
        account_id=user.account.pk,
        amount="-4",
        kind=LedgerEntry.REFUND,
        idempotency_key=f"filled-refund:{card.pk}",
        reason=f"Refund of Stripe payment {card.session_id}",
    )
    return [rub, card]


def _usage(user) -> None:
    """Charges through holds, and usage rows that succeeded, failed and streamed."""
    for n, cost in enumerate(["0.0123", "1.5"]):
        held = ledger.hold(account_id=user.account.pk, amount="2", idempotency_key=f"filled-{user.pk}-{n}")
        ledger.settle(hold_id=held.id, actual=cost)
    rows = [
        ("gpt-4o", "ok", "", False, 812, None),
        ("claude-haiku-4-5", "ok", "", True, 2400, 310),
        ("gemini-3-pro", "error", "upstream_timeout", False, 30000, None),
        ("nano-banana", "error", "insufficient_balance", False, 4, None),
    ]
    for model, status, code, stream, latency, ttft in rows:
        UsageLog.objects.create(
            user=user,
            api_key=user.key,
            request_id=f"req_{uuid.uuid4().hex}",
            model=model,
            prompt_tokens=123_456,
            completion_tokens=7_890,
            cost_usd=Decimal("0.4321") if status == "ok" else 0,
            latency_ms=latency,
            ttft_ms=ttft,
            status=status,
            error_code=code,
            stream=stream,
        )


def _chat(user) -> Chat:
    chat = Chat.objects.create(user=user, model="claude-haiku-4-5", title="Explain the gateway " * 4)
    ChatMessage.objects.create(
        chat=chat, role="user", content="What does https://example.org/" + "x" * 90 + " do?"
    )
    ChatMessage.objects.create(
        chat=chat, role="assistant", model=chat.model, content=REPLY, cost_usd=Decimal("0.0042")
    )
    stopped = "A reply cut short by the Stop button, kept and billed for what came."
    ChatMessage.objects.create(chat=chat, role="user", content="And then?")
    ChatMessage.objects.create(
        chat=chat, role="assistant", model=chat.model, content=stopped, finish_reason="stopped"
    )
    return chat


def _generate_an_image(page, site) -> None:
    page.goto(site.url + "/studio/")
    page.get_by_label("Prompt").fill("A lighthouse on a cliff in a storm at night, " * 3)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".job-card").first).to_have_attribute("data-job-status", "completed", timeout=30000)
    tile = page.locator("#gallery .tile").first
    expect(tile).to_be_visible(timeout=10000)
    with page.expect_download() as download:  # named from the prompt and the model, not a token
        tile.get_by_role("link", name="Download").click()
    name = download.value.suggested_filename
    assert name == "a-lighthouse-on-a-cliff-in-a-storm-at-night-a-lighthouse-on-nano-banana.png", name


@VIEWPORTS
def test_every_page_with_content_fits_and_passes_axe(page, rails_site, celery_worker_proc, shoot, viewport):
    site = rails_site
    page.set_viewport_size(viewport)
    user = log_in(page, site, f"filled{viewport['width']}")
    user.key.monthly_spend_cap_usd = Decimal(20)
    user.key.save(update_fields=["monthly_spend_cap_usd"])
    rub, card = _top_ups(user)
    _usage(user)
    chat = _chat(user)
    _generate_an_image(page, site)
    pages = {  # path: a screenshot name that stays the same from run to run
        "/dashboard/": "dashboard",
        "/keys/": "keys",
        "/keys/create": "keys-create",
        "/billing/": "billing",
        f"/billing/receipts/{rub.ref}/": "receipt-yookassa",
        f"/billing/receipts/{card.ref}/": "receipt-stripe-refunded",
        "/billing/transactions/": "transactions",
        "/usage/": "usage",
        "/usage/?status=error&range=7": "usage-failed-7-days",
        "/chat/": "chat",
        f"/chat/{chat.pk}/": "chat-session",
        "/studio/": "studio-image",
        "/studio/?kind=video": "studio-video",
        "/models/?kind=video&q=sora": "models-sora",
        "/quickstart/": "quickstart",
        "/account/": "account",
    }
    problems = []
    for theme in ("light", "dark"):
        page.add_init_script(f"localStorage.setItem('gpuniq-theme', '{theme}')")
        for path, name in pages.items():
            page.goto(site.url + path)
            expect(page.locator("html")).to_have_attribute("data-theme", theme)
            problems += check_page(page, shoot, path, f"55-filled-{name}-{viewport['width']}-{theme}")
            if viewport is PHONE:
                problems += phone_header(page, path)
    page.goto(f"{site.url}/chat/{chat.pk}/")
    page.get_by_text("Settings", exact=True).click()
    page.get_by_text("View code", exact=True).click()
    expect(page.locator("[data-code=curl]")).to_contain_text("/v1/openai/chat/completions")
    name = f"55-filled-chat-view-code-{viewport['width']}"
    problems += check_page(page, shoot, "chat settings + view code", name)
    assert not problems, "\n".join(problems)


@VIEWPORTS
def test_the_key_dialogs_hold_focus_safely_and_pass_axe(page, playground_site, shoot, viewport):
    site = playground_site
    page.set_viewport_size(viewport)
    log_in(page, site, f"dora{viewport['width']}")
    page.goto(site.url + "/keys/")
    opener = page.locator(".page-actions").get_by_role("link", name="Create key")
    opener.click()
    dialog = page.locator("#key-dialog")
    name = dialog.get_by_label("Name", exact=True)
    expect(name).to_be_focused()
    expect(name).to_have_value("")
    expect(name).to_have_attribute("placeholder", re.compile(r"^e\.g\. "))
    problems = check_page(page, shoot, "/keys/ new-key form", f"56-key-form-{viewport['width']}")
    page.keyboard.type("laptop")  # typed where the cursor is: nothing prefilled to run into
    expect(name).to_have_value("laptop")
    dialog.get_by_role("button", name="Create key").click()
    raw = page.get_by_test_id("new-key").inner_text().strip()
    expect(dialog.get_by_role("button", name="Copy")).to_be_focused()
    expect(dialog.locator("pre")).to_contain_text(raw)  # "Try it" carries the whole key
    problems += check_page(page, shoot, "/keys/ new key shown", f"57-key-shown-{viewport['width']}")
    page.keyboard.press("Enter")  # copies; the key stays on screen
    expect(page.get_by_test_id("new-key")).to_have_text(raw)
    page.get_by_role("link", name=re.compile("I saved it")).click()
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()

    revoke = page.locator("#keys-table tbody tr").first.get_by_role("link", name="Revoke")
    revoke.click()
    confirm = page.locator("#confirm-dialog")
    expect(confirm.get_by_role("button", name="Cancel")).to_be_focused()  # Enter never revokes unseen
    problems += check_page(page, shoot, "/keys/ revoke confirm", f"58-key-revoke-{viewport['width']}")
    page.keyboard.press("Escape")
    expect(confirm).to_be_hidden()
    expect(revoke).to_be_focused()
    assert not problems, "\n".join(problems)


def test_the_colour_only_link_check_finds_such_a_link(page):
    """The check above is not hollow: a link in a sentence told apart by colour only is reported; an
    underlined one, a button-like link and a link laid out as a flex item are not."""
    from .pages import plain_color_links

    page.set_content("""<main>
      <p>Read <a href="/a" style="color:#06c;text-decoration:none">the plain one</a> first.</p>
      <p>Read <a href="/b" style="text-decoration:underline">the underlined one</a> too.</p>
      <div style="display:flex"><h2>Usage</h2><a href="/c" style="text-decoration:none">Details</a></div>
      <p>Or <a class="btn" href="/d" style="display:inline-block;text-decoration:none">a button</a>.</p>
    </main>""")
    [found] = plain_color_links(page)
    assert 'href="/a"' in found


def test_the_browser_gets_static_files_compressed_long_cached_and_a_favicon(page, playground_site):
    """What Chromium itself receives from the gateway on a socket (not the test client): every static
    file of a page under a hashed name, compressed, cached for a year; /favicon.ico leads to an icon."""
    seen = []
    page.on("response", lambda r: seen.append(r) if "/static/" in r.url else None)
    page.goto(playground_site.url + "/login/")
    page.wait_for_load_state("networkidle")
    assert {r.url.rsplit(".", 1)[-1] for r in seen} >= {"css", "js"}
    for response in seen:
        headers = response.all_headers()
        assert response.status == 200 and re.search(r"\.[0-9a-f]{12}\.\w+$", response.url), response.url
        assert "max-age=315360000" in headers["cache-control"] and "immutable" in headers["cache-control"]
        if response.url.endswith((".css", ".js", ".svg")):
            assert headers.get("content-encoding") in ("br", "gzip"), (response.url, headers)
    icon = page.request.get(playground_site.url + "/favicon.ico")
    assert icon.ok and icon.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
