"""Account pages: sign up, log in and out, throttled logins, password reset, settings, cookies, CSRF.

Alice and Bob (conftest) have the password "correct horse 1"; each test uses its own client IP so
throttling state never carries over between tests.
"""

import re
import uuid
from pathlib import Path

import pytest
from django.test import Client

from accounts.models import User

PASSWORD = "correct horse 1"
MEMBER_PAGES = [
    "/dashboard/",
    "/keys/",
    "/billing/",
    "/usage/",
    "/account/",
    "/usage/export.csv",
    "/billing/history",
]


def fresh_ip() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


def login(client, email, password=PASSWORD, ip="127.0.0.1"):
    return client.post("/login/", {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_signup_creates_the_user_signs_in_and_opens_the_overview(client, committed):
    email = f"carol-{uuid.uuid4().hex[:6]}@example.com"

    response = client.post(
        "/signup/", {"email": email.upper(), "password": "a-long password 9", "time_zone": "Europe/Berlin"}
    )

    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    user = User.objects.get(email=email)
    assert user.time_zone == "Europe/Berlin" and user.check_password("a-long password 9")
    assert "a-long password 9" not in user.password
    assert client.get("/keys/").status_code == 200


@pytest.mark.parametrize(
    "data,error",
    [
        ({"password": "short"}, "at least 10 characters"),
        ({"password": "1234567890"}, "too common"),
        ({"email": "not-an-email"}, "valid email"),
    ],
)
def test_signup_explains_what_is_wrong(client, committed, data, error):
    form = {"email": f"dave-{uuid.uuid4().hex[:6]}@example.com", "password": "a-long password 9", **data}
    response = client.post("/signup/", form)
    assert response.status_code == 200 and error in response.content.decode()
    assert not User.objects.filter(email=form["email"]).exists()


def test_signup_refuses_an_existing_email(client, alice):
    response = client.post("/signup/", {"email": alice.email, "password": "a-long password 9"})
    assert response.status_code == 200 and "already exists" in response.content.decode()
    assert User.objects.filter(email=alice.email).count() == 1


def test_login_lands_on_the_dashboard_and_logout_needs_a_post(client, alice):
    response = login(client, alice.email, ip=fresh_ip())
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    assert client.get("/logout/").status_code == 405  # a link or <img> cannot log anyone out
    assert client.get("/dashboard/").status_code == 200

    assert client.post("/logout/").status_code == 302
    assert client.get("/dashboard/").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(client, alice):
    response = login(client, alice.email, ip=fresh_ip())
    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # plain-http test server; see the next test for https
    assert response.cookies["csrftoken"]["httponly"] is True  # htmx reads the token from the page


def test_session_cookie_is_secure_when_the_site_is_https(client, alice, settings):
    settings.SESSION_COOKIE_SECURE = True
    response = login(client, alice.email, ip=fresh_ip())
    assert response.cookies["sessionid"]["secure"] is True


def test_five_failed_logins_block_that_email_from_that_address_only(client, alice, bob):
    ip = fresh_ip()
    for _ in range(5):
        failed = login(client, alice.email, "wrong password", ip=ip)
        assert failed.status_code == 200 and "do not match" in failed.content.decode()

    blocked = login(client, alice.email, ip=ip)  # even the right password
    assert blocked.status_code == 200
    assert "Too many failed sign-in attempts" in blocked.content.decode()
    assert "_auth_user_id" not in client.session

    assert login(Client(), bob.email, ip=ip).status_code == 302  # Bob, same network
    assert login(Client(), alice.email, ip=fresh_ip()).status_code == 302  # Alice, elsewhere


def test_a_successful_login_resets_the_failure_count(client, alice):
    ip = fresh_ip()
    for _ in range(4):
        login(client, alice.email, "wrong password", ip=ip)
    assert login(Client(), alice.email, ip=ip).status_code == 302
    for _ in range(4):
        login(client, alice.email, "wrong password", ip=ip)
    assert login(Client(), alice.email, ip=ip).status_code == 302


def test_password_reset_mails_a_link_that_sets_a_new_password(client, alice, mailoutbox):
    response = client.post("/password-reset/", {"email": alice.email})
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    [mail] = mailoutbox
    assert mail.to == [alice.email] and "Reset your GPUniq password" in mail.subject
    link = re.search(r"http://testserver(/reset/\S+/)", mail.body).group(1)

    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and "Choose a new password" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "brand new pass 42", "new_password2": "brand new pass 42"},
    )
    assert done.status_code == 302 and done["Location"] == "/reset/done/"
    assert login(Client(), alice.email, "brand new pass 42", ip=fresh_ip()).status_code == 302


def test_password_reset_for_an_unknown_email_looks_the_same_and_sends_nothing(client, committed, mailoutbox):
    response = client.post("/password-reset/", {"email": "nobody-here@example.com"})
    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    assert mailoutbox == []


def test_account_settings_change_the_time_zone(client, alice):
    client.force_login(alice)
    assert client.get("/account/").status_code == 200
    response = client.post("/account/", {"form": "profile", "name": "Alice", "time_zone": "Asia/Tokyo"})
    assert response.status_code == 302
    alice.refresh_from_db()
    assert (alice.name, alice.time_zone) == ("Alice", "Asia/Tokyo")

    bad = client.post("/account/", {"form": "profile", "name": "Alice", "time_zone": "Mars/Olympus"})
    assert bad.status_code == 200
    alice.refresh_from_db()
    assert alice.time_zone == "Asia/Tokyo"


def test_password_change_keeps_the_session(client, alice):
    client.force_login(alice)
    response = client.post(
        "/account/",
        {
            "form": "password",
            "old_password": PASSWORD,
            "new_password1": "another good one 7",
            "new_password2": "another good one 7",
        },
    )
    assert response.status_code == 302
    assert client.get("/dashboard/").status_code == 200
    alice.refresh_from_db()
    assert alice.check_password("another good one 7")


@pytest.mark.parametrize("path", MEMBER_PAGES)
def test_member_pages_send_visitors_to_the_login_page(client, committed, path):
    response = client.get(path)
    assert response.status_code == 302 and response["Location"].startswith(f"/login/?next={path}")


@pytest.mark.parametrize(
    "path,text",
    [
        ("/", "One key, one balance"),
        ("/login/", "Log in"),
        ("/signup/", "Create your account"),
        ("/password-reset/", "Reset your password"),
        ("/password-reset/sent/", "Check your email"),
        ("/reset/done/", "Password changed"),
        ("/reset/MQ/bad-token/", "This link has expired"),
        ("/quickstart/", "Quick start"),
        ("/errors/", "insufficient_balance"),
    ],
)
def test_public_pages_render(client, committed, path, text):
    response = client.get(path)
    assert response.status_code == 200 and text in response.content.decode()


def test_unknown_pages_are_a_friendly_404(client, committed):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and "Page not found" in response.content.decode()


def test_forms_refuse_posts_without_the_csrf_token(alice):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post("/login/", {"username": alice.email, "password": PASSWORD}).status_code == 403
    assert (
        browser.post("/signup/", {"email": "x@example.com", "password": "a-long password 9"}).status_code
        == 403
    )
    browser.force_login(alice)
    for path, data in [
        ("/keys/create", {"name": "x"}),
        (f"/keys/{alice.key.pk}/revoke", {}),
        (f"/keys/{alice.key.pk}/edit", {f"k{alice.key.pk}-name": "x"}),
        ("/billing/topup", {"amount": "10"}),
        ("/account/", {"form": "profile"}),
        ("/logout/", {}),
    ]:
        assert browser.post(path, data).status_code == 403, path
    alice.key.refresh_from_db()
    assert alice.key.revoked_at is None and alice.key.name == "default"


def test_forms_accept_the_token_from_the_page(alice):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)
    response = browser.post(
        "/login/",
        {"username": alice.email, "password": PASSWORD, "csrfmiddlewaretoken": token},
        REMOTE_ADDR=fresh_ip(),
    )
    assert response.status_code == 302
    keys_page = browser.get("/keys/").content.decode()
    header_token = re.search(r'"X-CSRFToken": "([^"]+)"', keys_page).group(1)  # what htmx sends
    created = browser.post(
        "/keys/create", {"name": "via htmx"}, HTTP_X_CSRFTOKEN=header_token, HTTP_HX_REQUEST="true"
    )
    assert created.status_code == 200 and alice.api_keys.filter(name="via htmx").exists()


def test_quickstart_uses_the_site_url_and_my_key_prefix_never_the_key(client, alice, settings):
    settings.PUBLIC_BASE_URL = "https://gw.example.com"
    client.force_login(alice)
    html = client.get("/quickstart/").content.decode()
    assert "https://gw.example.com/v1/openai" in html and alice.key.display in html
    assert alice.raw_key not in html
    for label in (
        "curl",
        "Python (OpenAI SDK)",
        "JavaScript (OpenAI SDK)",
        "Claude Code",
        "Python (Anthropic SDK)",
        "Cursor",
        "Aider",
    ):
        assert label in html
    assert "export ANTHROPIC_BASE_URL=https://gw.example.com/v1/anthropic" in html


def test_quickstart_sets_up_claude_code_and_codex_in_two_lines_each(client, alice, settings):
    """Issue #15: two lines each, as in the README (the client tests run these very lines)."""
    from html import unescape

    from accounts.quickstart import snippets

    settings.PUBLIC_BASE_URL = "https://gw.example.com"
    client.force_login(alice)
    html = unescape(client.get("/quickstart/").content.decode())
    shown = {s.id: s.code for s in snippets("https://gw.example.com")}
    for name in ("claude-code", "codex"):
        lines = [line for line in shown[name].splitlines() if not line.startswith("#")]
        assert len(lines) == 2 and all(line in html for line in lines), (name, lines)
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    assert (
        'model_providers.gpuniq = { name = "GPUniq", base_url = "http://127.0.0.1:8000/v1/openai"' in readme
    )
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:8000/v1/anthropic ANTHROPIC_AUTH_TOKEN=" in readme
    for row in ("| OpenAI Chat Completions |", "| OpenAI Responses |", "| Anthropic Messages |"):
        assert row in readme  # the mission table names the three dialects


def test_the_errors_page_lists_every_catalog_code(client, committed):
    from gpuniq_site.errors import CATALOG

    html = client.get("/errors/").content.decode()
    assert all(f'id="{code}"' in html for code in CATALOG)
