"""Helpers of the every-page browser checks: log in, measure sideways overflow, run axe-core."""

import re
from pathlib import Path

from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import expect

from ..conftest import make_user

PASSWORD = "browser pass 123"
AXE = Path(__file__).resolve().parents[1] / "clients" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 800}


def log_in(page, site, label: str, credit: str = "25"):
    user = make_user(label, credit)
    hasher = PBKDF2PasswordHasher()  # the server's hasher (the test settings use MD5)
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    page.goto(site.url + "/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))
    return user


def overflow(page) -> dict:
    """How far the page scrolls sideways, and the widest elements that stick out."""
    return page.evaluate("""() => {
        const wide = [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > innerWidth + 1)
            .slice(0, 5)
            .map(el => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right));
        return {scroll: document.documentElement.scrollWidth, inner: innerWidth, wide};
    }""")


def axe_serious(page) -> list[dict]:
    """Serious and critical axe-core violations of the page as it stands (best-practice rules too)."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => ({
                id: v.id,
                impact: v.impact,
                nodes: v.nodes.slice(0, 4)
                    .map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 160)),
            }));
    }""")
    return result
