"""Helpers of the every-page browser checks: log in, measure sideways overflow, run axe-core, find
links told apart by colour only."""

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


def plain_color_links(page) -> list[str]:
    """Links inside running text that are not underlined, so colour alone tells them apart (WCAG
    1.4.1): an inline link whose block (its nearest non-inline ancestor: a paragraph, list item, cell)
    holds words of its own beside the link. Links laid out as blocks or flex items (cards, buttons,
    segmented controls, tiles) are not in running text."""
    return page.evaluate("""() => {
        const inline = el => getComputedStyle(el).display === 'inline';
        const blockOf = el => {
            let p = el.parentElement;
            while (p && inline(p)) p = p.parentElement;
            return p || document.body;
        };
        const inText = a => {
            const block = blockOf(a);
            const walk = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
            for (let t = walk.nextNode(); t; t = walk.nextNode()) {
                if (!t.textContent.trim() || a.contains(t)) continue;
                const el = t.parentElement;
                const own = inline(el) ? blockOf(el) : el;
                if (own === block && el.getClientRects().length) return true;
            }
            return false;
        };
        return [...document.querySelectorAll('a[href]')]
            .filter(a => inline(a) && a.getClientRects().length && !a.closest('nav, .btn, .badge'))
            .filter(a => inText(a) && !getComputedStyle(a).textDecorationLine.includes('underline'))
            .slice(0, 5)
            .map(a => a.outerHTML.slice(0, 120));
    }""")


def check_page(page, shoot, path: str, name: str) -> list[str]:
    """Sideways overflow, serious/critical axe violations and colour-only links of the page as it
    stands, with a screenshot of it."""
    problems = []
    size = overflow(page)
    if size["scroll"] > size["inner"]:
        problems.append(f"{path}: {size['scroll']} px wide at {size['inner']}: {size['wide']}")
    for violation in axe_serious(page):
        problems.append(f"{path}: axe {violation['id']} ({violation['impact']}): {violation['nodes']}")
    for link in plain_color_links(page):
        problems.append(f"{path}: a link in running text told apart by colour only: {link}")
    shoot(name)
    return problems


def phone_header(page, path: str) -> list[str]:
    """The menu button is on screen and the closed header is one short bar (no blank block)."""
    menu = page.get_by_role("button", name="Menu").bounding_box()
    header = page.locator("#sidebar").bounding_box()
    problems = []
    if not menu or menu["x"] < 0 or menu["x"] + menu["width"] > PHONE["width"] or menu["y"] > 80:
        problems.append(f"{path}: the menu button is off screen at {menu}")
    if header["height"] > 72:
        problems.append(f"{path}: the phone header is {header['height']} px tall")
    return problems
