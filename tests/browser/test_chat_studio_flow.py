"""The playground in a real browser: log in → web chat → send a message and watch the (fake vendor's)
reply stream in, then render as Markdown with its cost → studio → generate a Nano Banana image
through the fakes and a real Celery worker → see it in the gallery → see both on the usage page."""

import re

from playwright.sync_api import expect

from llm.models import ChatMessage
from media_jobs.models import MediaJob

from .pages import log_in


def test_chat_then_studio_then_usage(page, playground_site, shoot):
    site = playground_site
    user = log_in(page, site, "pia")

    page.get_by_role("link", name="Chat", exact=True).click()
    expect(page).to_have_url(re.compile(r"/chat/$"))
    shoot("30-chat")
    page.get_by_role("button", name="Start a chat").click()
    expect(page).to_have_url(re.compile(r"/chat/\d+/$"))
    expect(page.locator("[data-model-price]")).to_contain_text("/ 1M tokens")
    page.get_by_label("Message").fill("Explain `print()` in **two** words")
    page.keyboard.press("Enter")
    reply = page.locator(".msg-assistant .md").last
    expect(reply).to_contain_text("Echo:", timeout=15000)
    expect(page.locator(".msg-assistant [data-cost]").last).to_have_text(
        re.compile(r"^\$0\.\d+$"), timeout=15000
    )
    expect(page.locator(".msg-assistant .md code").last).to_have_text("print()")  # server-rendered Markdown
    expect(page.locator("#chat-list")).to_contain_text("Explain")  # the first message titles the chat
    shoot("31-chat-streamed")
    assert ChatMessage.objects.filter(chat__user=user, role="assistant", cost_usd__gt=0).count() == 1

    page.get_by_role("link", name="Image & video").click()
    expect(page).to_have_url(re.compile(r"/studio/$"))
    expect(page.get_by_test_id("estimate")).to_contain_text("$0.0312")
    page.get_by_label("Images").select_option("2")
    expect(page.get_by_test_id("estimate")).to_contain_text("$0.0624")
    page.get_by_label("Images").select_option("1")
    expect(page.locator("[data-estimate]")).to_have_attribute("data-estimate", "0.03120000")
    page.get_by_label("Prompt").fill("A red fox in fresh snow, golden hour")
    shoot("32-studio")
    page.get_by_role("button", name="Generate").click()
    card = page.locator(".job-card").first
    expect(card).to_have_attribute("data-job-status", "completed", timeout=30000)
    expect(card.locator("[data-cost]")).to_have_text("$0.0312")
    expect(page.locator("#gallery .tile")).to_have_count(1, timeout=10000)
    expect(page.locator("#gallery")).to_contain_text("A red fox")
    shoot("33-studio-result")
    job = MediaJob.objects.get(user=user)
    assert job.charged_at is not None and job.api_key.name == "Web dashboard"

    page.goto(site.url + "/usage/")
    expect(page.locator("main")).to_contain_text("nano-banana")
    expect(page.locator("main")).to_contain_text(re.compile(r"claude-haiku-4-5|Claude Haiku"))
    expect(page.locator("main tbody tr")).to_have_count(2)
    shoot("34-usage-after-playground")

    page.locator("html").evaluate("el => el.setAttribute('data-theme', 'dark')")
    page.goto(site.url + "/chat/")
    page.locator("html").evaluate("el => el.setAttribute('data-theme', 'dark')")
    page.locator(".chat-item a").first.click()
    page.locator("html").evaluate("el => el.setAttribute('data-theme', 'dark')")
    shoot("35-chat-dark")
