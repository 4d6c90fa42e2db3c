"""The models page for people: server-rendered catalog with search and filters (htmx swaps the
results), prices per 1M tokens / per image / per second of video, context windows, availability."""

import re

import pytest

HTMX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "model-results"}


def slugs(html: str) -> list[str]:
    return re.findall(r'data-model="([^"]+)"', html)


@pytest.fixture
def page(client, committed):
    return lambda query="", **kw: client.get(f"/models/{query}", **kw).content.decode()


def test_the_top_bar_opens_the_models_page_not_json(client, committed):
    home = client.get("/").content.decode()
    assert re.search(r'<nav class="topnav".*?<a href="/models/">Models</a>', home, re.S)
    response = client.get("/models/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert len(slugs(response.content.decode())) >= 80


def test_search_matches_name_slug_or_vendor(page):
    found = slugs(page("?q=haiku"))
    assert "claude-haiku-4-5" in found and all("haiku" in s for s in found)
    assert set(slugs(page("?q=ANTHROPIC"))) >= {"claude-haiku-4-5", "claude-sonnet-4-6"}


def test_filters_by_kind_vendor_and_capability_through_an_htmx_fragment(page):
    fragment = page("?kind=image&vendor=google", **HTMX)
    assert not fragment.lstrip().startswith("<!doctype") and fragment.lstrip().startswith(
        '<div id="model-results"'
    )
    assert "nano-banana" in slugs(fragment) and all(s for s in slugs(fragment))
    assert "/ image" in fragment and "/ 1M tokens" not in fragment
    vision = slugs(page("?kind=chat&capability=vision"))
    assert "gpt-4o" in vision and "deepseek-chat" not in vision


def test_prices_and_context_windows_in_the_units_people_compare(page):
    html = page("?q=gpt-4o&kind=chat")
    row = re.search(r'data-model="gpt-4o">(.*?)</tr>', html, re.S).group(1)
    assert "$2.00 / 1M tokens" in row and "$8.00 / 1M tokens" in row and "128,000 tokens" in row
    video = page("?q=sora-2-official")
    row = re.search(r'data-model="sora-2-official">(.*?)</tr>', video, re.S).group(1)
    assert "$0.06 / second" in row and "$0.48 for 8 s" in row  # $0.480 headline for an 8 s clip


def test_availability_follows_the_configured_vendors(page, monkeypatch):
    from llm import upstreams

    try:
        with monkeypatch.context() as env:
            env.delenv("UPSTREAM_OPENAI_API_KEY", raising=False)
            upstreams.reset()
            row = re.search(r'data-model="gpt-4o">(.*?)</tr>', page("?q=gpt-4o&kind=chat"), re.S).group(1)
            assert "not configured" in row and "gpt-4o" not in slugs(page("?available=1"))
            env.setenv("UPSTREAM_OPENAI_API_KEY", "sk-test-not-used")
            upstreams.reset()
            row = re.search(r'data-model="gpt-4o">(.*?)</tr>', page("?q=gpt-4o&kind=chat"), re.S).group(1)
            assert "badge-ok" in row and "gpt-4o" in slugs(page("?available=1"))
    finally:
        upstreams.reset()
