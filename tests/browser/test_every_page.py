"""Every dashboard page at a laptop's 1366 px and a phone's 390 px: no sideways scrolling, the menu
button on screen, and 0 serious or critical axe-core violations, in the light and the dark theme.
Screenshots of each land in test-artifacts/screenshots/."""

import pytest
from playwright.sync_api import expect

from llm.models import Chat

from .pages import LAPTOP, PHONE, check_page, log_in, phone_header

PAGES = [
    "/dashboard/",
    "/keys/",
    "/billing/",
    "/usage/",
    "/chat/",
    "/studio/",
    "/models/",
    "/quickstart/",
    "/errors/",
    "/account/",
]
PUBLIC = [
    "/",
    "/login/",
    "/signup/",
    "/models/",
    "/errors/",
    "/password-reset/",
    "/password-reset/sent/",
    "/reset/MQ/not-a-token/",  # an expired or used link
    "/reset/done/",
    "/no-such-page/",  # the 404 page
]


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_every_dashboard_page_fits_and_passes_axe(page, playground_site, shoot, viewport):
    site = playground_site
    page.set_viewport_size(viewport)
    user = log_in(page, site, f"wanda{viewport['width']}")
    chat = Chat.objects.create(user=user, model="claude-haiku-4-5", title="A chat with a long title " * 3)
    problems = []
    for theme in ("light", "dark"):
        page.add_init_script(f"localStorage.setItem('gpuniq-theme', '{theme}')")
        for path in PAGES + [f"/chat/{chat.pk}/"]:
            page.goto(site.url + path)
            expect(page.locator("html")).to_have_attribute("data-theme", theme)
            slug = path.strip("/").replace("/", "-") or "home"
            problems += check_page(page, shoot, path, f"50-{slug}-{viewport['width']}-{theme}")
            if viewport is PHONE:
                problems += phone_header(page, path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_public_pages_fit_and_pass_axe(browser, playground_site, viewport):
    from .conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=viewport, color_scheme="light")
    page = context.new_page()
    problems = []
    for path in PUBLIC:
        page.goto(playground_site.url + path)
        slug = path.strip("/").replace("/", "-") or "home"
        problems += check_page(
            page,
            lambda name: page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True),
            path,
            f"51-public-{slug}-{viewport['width']}",
        )
    context.close()
    assert not problems, "\n".join(problems)
