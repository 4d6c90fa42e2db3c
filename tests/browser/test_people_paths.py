"""What a person hits, in a real browser at 1366 and 390 px: the studio's refusal with $0, a
stopped chat reply that stays after reload (billed, its hold closed at once), a message posted
without JavaScript, the models page's filters, the usage filters kept by the period buttons."""

import re

import pytest
from playwright.sync_api import expect

from billing.models import Hold
from billing.models import UsageLog
from llm.models import Chat, ChatMessage

from .pages import LAPTOP, PHONE, log_in

VIEWPORTS = pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])


@VIEWPORTS
def test_generate_with_no_money_shows_the_servers_402_message(page, playground_site, shoot, viewport):
    page.set_viewport_size(viewport)
    log_in(page, playground_site, f"penny{viewport['width']}", credit="0")
    for kind in ("image", "video"):
        page.goto(f"{playground_site.url}/studio/?kind={kind}")
        page.get_by_label("Prompt").fill("A lighthouse in a storm")
        page.get_by_role("button", name="Generate").click()
        error = page.locator("#form-error")
        expect(error).to_contain_text("Insufficient balance")
        expect(error).to_contain_text("available $0.00")
        shoot(f"60-studio-402-{kind}-{viewport['width']}", full_page=False)


@VIEWPORTS
def test_a_stopped_reply_stays_after_reload_billed_with_its_hold_closed(
    page, playground_site, shoot, viewport
):
    page.set_viewport_size(viewport)
    user = log_in(page, playground_site, f"stella{viewport['width']}")
    page.goto(playground_site.url + "/chat/")
    page.get_by_role("button", name="Start a chat").click()
    expect(page).to_have_url(re.compile(r"/chat/\d+/$"))
    # the fake vendor sends a few words, then falls silent (its in-band "stall" fault)
    page.get_by_label("Message").fill("Tell me about tides [[fault:stall]] and the moon")
    page.keyboard.press("Enter")
    expect(page.locator(".msg-assistant .md").last).to_contain_text("Echo:", timeout=15000)
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=10000)
    chat = Chat.objects.get(user=user)
    hold = Hold.objects.filter(account__user=user).latest("id")
    assert hold.status != Hold.OPEN  # closed at once, not by the 15-minute sweep
    row = UsageLog.objects.get(user=user, endpoint="chat_session")
    assert row.status == "cancelled" and row.cost_usd > 0 and row.completion_tokens > 0
    page.reload()
    reply = page.locator(".msg-assistant").last
    expect(reply).to_contain_text("Echo:")
    expect(reply.locator("[data-stopped]")).to_have_text("stopped")
    expect(page.locator(".msg-user").last).to_contain_text("Tell me about tides")
    answer = ChatMessage.objects.get(chat=chat, role="assistant")
    assert answer.finish_reason == "stopped" and answer.cost_usd == row.cost_usd
    assert (
        chat.title == "Tell me about tides [[fault:stall]] and the moon"[: len(chat.title)]
        and chat.title != "New chat"
    )
    shoot(f"61-chat-stopped-after-reload-{viewport['width']}")


@VIEWPORTS
def test_without_javascript_a_message_posts_as_a_form_and_shows_the_reply(browser, playground_site, viewport):
    from .conftest import SCREENSHOTS

    context = browser.new_context(viewport=viewport, java_script_enabled=False)
    page = context.new_page()
    user = log_in(page, playground_site, f"nojs{viewport['width']}")
    page.goto(playground_site.url + "/chat/")
    page.get_by_role("button", name="Start a chat").click()
    page.get_by_label("Message").fill("Hello without scripts")
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(r"/chat/\d+/$"))
    expect(page.locator(".msg-assistant .md").last).to_contain_text("Echo: Hello without scripts")
    assert ChatMessage.objects.filter(chat__user=user, role="assistant").count() == 1
    page.goto(playground_site.url + "/keys/")
    page.get_by_role("link", name="Create key").first.click()
    page.get_by_label("Name", exact=True).fill("no-js laptop")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_test_id("new-key")).to_contain_text("gpuniq_")
    page.screenshot(path=str(SCREENSHOTS / f"62-no-js-key-{viewport['width']}.png"), full_page=True)
    context.close()


@VIEWPORTS
def test_the_models_page_filters_without_reloading(page, playground_site, shoot, viewport):
    page.set_viewport_size(viewport)
    page.goto(playground_site.url + "/")
    page.locator(".topnav, .site-footer").get_by_role("link", name="Models").first.click()
    expect(page).to_have_url(re.compile(r"/models/$"))
    page.evaluate("window.notReloaded = true")
    page.get_by_label("Kind").select_option("video")
    expect(page.locator("[data-model]").first).to_contain_text("Video")
    expect(page.get_by_test_id("model-count")).not_to_contain_text(re.compile(r"^(\d+) of \1 "))
    page.get_by_label("Search").fill("sora")
    expect(page.locator("[data-model]")).to_have_count(4, timeout=5000)  # the four Sora video models
    expect(page.locator("[data-model]").first).to_contain_text("/ second")
    expect(page).to_have_url(re.compile(r"kind=video.*q=sora|q=sora.*kind=video"))
    assert page.evaluate("window.notReloaded") is True
    shoot(f"63-models-sora-{viewport['width']}")


@VIEWPORTS
def test_the_period_buttons_keep_the_usage_filters(page, playground_site, shoot, viewport):
    page.set_viewport_size(viewport)
    user = log_in(page, playground_site, f"ursula{viewport['width']}")
    key = user.api_keys.first()
    for status, model in [("ok", "gpt-4o"), ("error", "gpt-4o"), ("ok", "claude-haiku-4-5")]:
        UsageLog.objects.create(
            user=user,
            api_key=key,
            request_id=f"req_{status}_{model}",
            model=model,
            status=status,
            error_code="upstream_timeout" if status == "error" else "",
        )
    page.goto(playground_site.url + "/usage/")
    expect(page.get_by_text("1 failed (not charged)")).to_be_visible()
    page.get_by_label("Status").select_option("error")
    expect(page.locator("#usage-table tbody tr")).to_have_count(1)
    page.get_by_role("link", name="7 days").click()
    expect(page.locator(".segmented [aria-current=true]")).to_have_text("7 days")
    expect(page).to_have_url(re.compile(r"status=error"))
    expect(page).to_have_url(re.compile(r"range=7"))
    page.reload()
    expect(page.get_by_label("Status")).to_have_value("error")
    expect(page.locator("#usage-table tbody tr")).to_have_count(1)
    expect(page.locator("#usage-table tbody")).to_contain_text("error")
    shoot(f"64-usage-filtered-7-days-{viewport['width']}")


def test_the_sandbox_video_plays_in_chromium(page, playground_site, shoot):
    from media_jobs import storage
    from media_jobs.providers.base import VideoSpec
    from media_jobs.providers.sandbox import video_bytes

    data = video_bytes(VideoSpec("kling-2-6", "waves on a beach", 3, "9:16", None, False, None, "t2v"))
    saved = storage.save("results", "video", data, "video/mp4")
    link = f"{playground_site.url}/v1/llm/media/{storage.sign(saved)}"
    page.set_content(f'<video id="v" muted playsinline src="{link}"></video>')
    page.evaluate("document.getElementById('v').play()")
    page.wait_for_function("document.getElementById('v').currentTime > 0.3", timeout=15000)
    assert page.evaluate(
        "[v.videoWidth, v.videoHeight, v.error]".replace("v.", "document.getElementById('v').")
    ) == [360, 640, None]
    shoot("65-sandbox-video-playing", full_page=False)


@VIEWPORTS
def test_playground_settings_reach_the_vendor_and_view_code_shows_them(
    page, playground_site, fake_vendors, shoot, viewport
):
    page.set_viewport_size(viewport)
    user = log_in(page, playground_site, f"sam{viewport['width']}")
    page.goto(playground_site.url + "/chat/")
    page.get_by_role("button", name="Start a chat").click()
    page.get_by_text("Settings", exact=True).click()
    page.get_by_label("System prompt").fill("Answer like a pirate")
    page.get_by_label("Temperature").fill("0.3")
    page.get_by_label("Max tokens").fill("64")
    page.get_by_label("Reasoning effort").select_option("low")
    page.get_by_label("Message").fill("Where is the treasure?")
    page.get_by_text("View code", exact=True).click()
    curl = page.locator("[data-code=curl]")
    for text in [
        '"temperature": 0.3',
        '"max_tokens": 64',
        '"reasoning_effort": "low"',
        '"Answer like a pirate"',
        "/v1/openai/chat/completions",
        "Where is the treasure?",
    ]:
        expect(curl).to_contain_text(text)
    page.get_by_role("tab", name="Python").click()
    expect(page.locator("[data-code=python]")).to_contain_text("temperature=0.3")
    page.get_by_role("tab", name="JavaScript").click()
    expect(page.locator("[data-code=js]")).to_contain_text('baseURL: "' + playground_site.url + '/v1/openai"')
    shoot(f"66-chat-settings-view-code-{viewport['width']}")
    page.get_by_label("Message").press("Enter")
    expect(page.locator(".msg-assistant .md").last).to_contain_text(
        "Echo: Where is the treasure?", timeout=15000
    )
    sent = next(
        r["json"]
        for r in reversed(fake_vendors["anthropic"].requests)
        if "Where is the treasure?" in str(r["json"].get("messages"))
    )
    assert "pirate" in str(sent["system"])
    # low effort on Claude Haiku 4.5 is extended thinking with a budget on top of the 64 answer tokens
    assert (
        sent["thinking"]["type"] == "enabled" and sent["max_tokens"] == sent["thinking"]["budget_tokens"] + 64
    )
    assert Chat.objects.get(user=user).system_prompt == "Answer like a pirate"
