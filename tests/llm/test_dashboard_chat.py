"""The web chat (/chat/): the same chat sessions as /v1/llm/chats, session-authenticated and
CSRF-protected; replies rendered server-side as sanitised Markdown; a streamed web turn is stored
and billed through the dashboard key exactly like an API turn; Bob's chats are 404 for Alice."""

import contextlib
import re
from decimal import Decimal

import httpx
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import Client

from accounts.keys import DASHBOARD_KEY_NAME, dashboard_principal
from accounts.models import APIKey
from llm.markdown import to_html
from billing.models import UsageLog
from llm.models import Chat, ChatMessage

from ..conftest import balance_of, usage_rows

HTMX = {"HTTP_HX_REQUEST": "true"}
PASSWORD = "correct horse 1"  # make_user's


@pytest.fixture(autouse=True)
def vendors_configured(vendors_in_this_process):
    """Every test here calls views in-process with the vendors configured."""


@pytest.fixture
def as_alice(client, alice):
    client.force_login(alice)
    return client


def chat_of(user, title="Trip plans", model="claude-haiku-4-5") -> Chat:
    return Chat.objects.create(user=user, title=title, model=model)


# --- Markdown ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        '<div onclick="alert(1)" style="color:red">x</div>',
        "<iframe src=https://evil.example></iframe>",
        "<svg onload=alert(1)>",
        "[x](data:text/html,<script>1</script>)",
    ],
)
def test_markdown_never_lets_markup_through(hostile):
    html = to_html(f"Hello {hostile} world")
    lowered = html.lower()
    for bad in (
        "<script",
        "onerror",
        "onclick",
        "onload",
        "javascript:",
        "<img",
        "<iframe",
        "<svg",
        "style=",
        "data:text",
    ):
        assert bad not in lowered, (bad, html)


def test_markdown_renders_code_tables_and_safe_links():
    html = to_html(
        "**bold** [docs](https://gpuniq.com)\n\n```python\ndef f():\n    return 1\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert "<strong>bold</strong>" in html
    assert '<a href="https://gpuniq.com" rel="noopener noreferrer nofollow">docs</a>' in html
    assert '<div class="hl"><pre tabindex="0">' in html and '<span class="k">def</span>' in html
    assert "<table>" in html and "<td>1</td>" in html


def test_only_the_renderer_makes_a_code_block_focusable():
    """A block that scrolls sideways is reached by keyboard (axe's scrollable-region-focusable); a
    tabindex written by the model is dropped, and the text "<pre" stays text."""
    html = to_html('<pre tabindex="-1" class="x">raw</pre>\n\n`<pre>` and <pre>')
    assert html.count('tabindex="0"') == 2 and 'tabindex="-1"' not in html
    assert "<code>&lt;pre&gt;</code>" in html


def test_a_stored_hostile_reply_and_user_message_render_inert(as_alice, alice):
    chat = chat_of(alice)
    ChatMessage.objects.create(
        chat=chat, role="user", content="<script>alert('u')</script> <b>hi</b>", model="m"
    )
    ChatMessage.objects.create(
        chat=chat,
        role="assistant",
        content="<img src=x onerror=alert(1)> **ok**",
        model="m",
        cost_usd=Decimal("0.00001234"),
    )
    html = as_alice.get(f"/chat/{chat.pk}/messages", **HTMX).content.decode()
    assert "<script>alert" not in html and "onerror" not in html
    assert (
        "&lt;script&gt;alert(&#x27;u&#x27;)&lt;/script&gt; &lt;b&gt;hi&lt;/b&gt;" in html
    )  # the user's text, escaped
    assert "<strong>ok</strong>" in html and "$0.00001234" in html


# --- pages and partials ----------------------------------------------------------------------------


def test_pages_need_a_session(client, alice):
    chat = chat_of(alice)
    for url in ("/chat/", f"/chat/{chat.pk}/", "/chat/list", f"/chat/{chat.pk}/messages"):
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"], url
    assert client.post(f"/chat/{chat.pk}/send", {"message": "hi"}).status_code in (401, 403)


def test_chat_page_lists_my_chats_and_models_with_prices(as_alice, alice, bob):
    mine, theirs = chat_of(alice, "Alice's chat"), chat_of(bob, "Bob's secret chat")
    html = as_alice.get("/chat/").content.decode()
    assert "Alice&#x27;s chat" in html and "Bob" not in html
    html = as_alice.get(f"/chat/{mine.pk}/").content.decode()
    assert 'aria-current="page"' in html and 'href="/chat/"' in html  # the sidebar entry is live
    assert re.search(
        r'value="claude-haiku-4-5"[^>]*data-price="\$[\d.]+ in · \$[\d.]+ out / 1M tokens"', html
    )
    assert re.search(r'value="nano-banana"[^>]*data-price="\$[\d.]+ / image"', html)
    assert theirs.title not in html


def test_another_users_chat_is_404_everywhere(as_alice, bob):
    theirs = chat_of(bob)
    for url in (
        f"/chat/{theirs.pk}/",
        f"/chat/{theirs.pk}/messages",
        f"/chat/{theirs.pk}/item",
        f"/chat/{theirs.pk}/rename",
        f"/chat/{theirs.pk}/images/1",
    ):
        assert as_alice.get(url, **HTMX).status_code == 404, url
    for url in (f"/chat/{theirs.pk}/rename", f"/chat/{theirs.pk}/delete", f"/chat/{theirs.pk}/send"):
        assert as_alice.post(url, {"title": "x", "message": "hi"}, **HTMX).status_code == 404, url
    theirs.refresh_from_db()
    assert theirs.title == "Trip plans"


def test_new_rename_search_delete(as_alice, alice):
    response = as_alice.post("/chat/new", {"model": "gpt-4o"})
    chat = Chat.objects.get(user=alice)
    assert (
        response.status_code == 302 and response["Location"] == f"/chat/{chat.pk}/" and chat.model == "gpt-4o"
    )

    assert 'name="title"' in as_alice.get(f"/chat/{chat.pk}/rename", **HTMX).content.decode()
    html = as_alice.post(f"/chat/{chat.pk}/rename", {"title": "  Rust questions  "}, **HTMX).content.decode()
    chat.refresh_from_db()
    assert chat.title == "Rust questions" and f'id="chat-item-{chat.pk}"' in html

    chat_of(alice, "Groceries")
    found = as_alice.get("/chat/list", {"q": "rust"}, **HTMX).content.decode()
    assert "Rust questions" in found and "Groceries" not in found
    assert "No chat titles match" in as_alice.get("/chat/list", {"q": "zzz"}, **HTMX).content.decode()

    assert as_alice.post(f"/chat/{chat.pk}/delete", {"current": "0"}, **HTMX).content == b""
    assert not Chat.objects.filter(pk=chat.pk).exists()
    other = Chat.objects.get(user=alice)
    response = as_alice.post(f"/chat/{other.pk}/delete", {"current": "1"}, **HTMX)
    assert response.status_code == 204 and response["HX-Redirect"] == "/chat/"


def test_every_post_needs_the_csrf_token(alice):
    chat = chat_of(alice)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    for url in ("/chat/new", f"/chat/{chat.pk}/rename", f"/chat/{chat.pk}/delete", f"/chat/{chat.pk}/send"):
        assert strict.post(url, {"title": "x", "message": "hi"}).status_code == 403, url
    assert Chat.objects.filter(pk=chat.pk, title="Trip plans").exists()
    token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', strict.get("/chat/").content.decode()
    ).group(1)
    response = strict.post(f"/chat/{chat.pk}/rename", {"title": "ok", "csrfmiddlewaretoken": token}, **HTMX)
    assert response.status_code == 200


def test_the_dashboard_key_is_made_once_and_never_shown(alice):
    first, second = dashboard_principal(alice), dashboard_principal(alice)
    assert first.key_id == second.key_id and first.user_id == alice.pk
    key = APIKey.objects.get(pk=first.key_id)
    assert (
        key.name == DASHBOARD_KEY_NAME
        and APIKey.objects.filter(user=alice, name=DASHBOARD_KEY_NAME).count() == 1
    )


# --- turns over a socket (the real ASGI server, fake vendors) ----------------------------------------


def session_client(server: str, user) -> httpx.Client:
    """A browser-like client signed in through the login form (session cookie + CSRF token)."""
    hasher = PBKDF2PasswordHasher()  # the server's hasher (the test settings use MD5)
    user.password = hasher.encode(PASSWORD, hasher.salt())
    user.save(update_fields=["password"])
    client = httpx.Client(base_url=server, timeout=30, follow_redirects=False)
    page = client.get("/login/").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login/",
        data={"username": user.email, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": server + "/login/"},
    )
    assert response.status_code == 302, response.text[:500]
    return client


def csrf_of(client: httpx.Client, path: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(path).text).group(1)


def test_a_streamed_web_turn_is_stored_and_billed(api_server, alice, vendors):
    chat = chat_of(alice, title="New chat")
    before = balance_of(alice)
    with contextlib.closing(session_client(api_server, alice)) as web:
        token = csrf_of(web, f"/chat/{chat.pk}/")
        with web.stream(
            "POST",
            f"/chat/{chat.pk}/send",
            data={"message": "hello from the browser", "csrfmiddlewaretoken": token},
            headers={"Referer": api_server + "/", "HX-Request": "true"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            body = "".join(response.iter_text())
        assert "Echo" in body and "cost_usd" in body and body.rstrip().endswith("data: [DONE]")
        html = web.get(f"/chat/{chat.pk}/messages", headers={"HX-Request": "true"}).text

    reply = ChatMessage.objects.get(chat=chat, role="assistant")
    assert reply.content.startswith("Echo: hello from the browser") and reply.cost_usd > 0
    assert "Echo: hello from the browser" in html and f"${reply.cost_usd.normalize():f}" in html
    row = UsageLog.objects.get(user_id=alice.pk, endpoint="chat_session")
    assert row.api_key.name == DASHBOARD_KEY_NAME and row.cost_usd == reply.cost_usd
    assert balance_of(alice) == before - reply.cost_usd
    chat.refresh_from_db()
    assert chat.title == "hello from the browser"  # a new chat takes its first message as title
    assert len(usage_rows(alice)) == 1


def test_a_web_turn_without_money_is_refused_and_stores_nothing(api_server, vendors, committed):
    from ..conftest import make_user

    poor = make_user("poor", "0")
    chat = chat_of(poor)
    with contextlib.closing(session_client(api_server, poor)) as web:
        token = csrf_of(web, f"/chat/{chat.pk}/")
        response = web.post(
            f"/chat/{chat.pk}/send",
            data={"message": "hi", "csrfmiddlewaretoken": token},
            headers={"Referer": api_server + "/", "HX-Request": "true"},
        )
        assert response.status_code == 402 and 'data-error-code="insufficient_balance"' in response.text
        # the same form posted without JavaScript: back on the chat page, which says why
        plain = web.post(
            f"/chat/{chat.pk}/send",
            data={"message": "hi", "csrfmiddlewaretoken": token},
            headers={"Referer": api_server + "/"},
            follow_redirects=True,
        )
        assert plain.status_code == 200 and str(plain.url).endswith(f"/chat/{chat.pk}/")
        assert "Insufficient balance" in plain.text
    assert not ChatMessage.objects.filter(chat=chat).exists()


def test_another_users_chat_cannot_be_sent_to_over_the_socket(api_server, alice, bob, vendors):
    theirs = chat_of(bob)
    with contextlib.closing(session_client(api_server, alice)) as web:
        token = csrf_of(web, "/chat/")
        response = web.post(
            f"/chat/{theirs.pk}/send",
            data={"message": "hi", "csrfmiddlewaretoken": token},
            headers={"Referer": api_server + "/"},
        )
    assert response.status_code == 404 and not ChatMessage.objects.filter(chat=theirs).exists()


def test_the_dashboards_own_key_is_not_listed_and_its_name_is_reserved(client, committed):
    from accounts.keys import DASHBOARD_KEY_NAME, dashboard_principal

    from ..conftest import make_user

    user = make_user("keys-hidden", "1")
    dashboard_principal(user)
    client.force_login(user)
    page = client.get("/keys/").content.decode()
    assert DASHBOARD_KEY_NAME not in page
    refused = client.post("/keys/create", {"name": DASHBOARD_KEY_NAME, "rpm": 120})
    assert "reserved" in refused.content.decode()


def test_playground_settings_become_the_turns_options_and_bad_ones_are_refused():
    from django.http import QueryDict

    from gpuniq_site.errors import ApiError
    from llm.web_chat import turn_body

    form = QueryDict(mutable=True)
    form.update(
        {
            "message": "hi",
            "model": "gpt-4o",
            "system_prompt": "Be brief",
            "temperature": "0.3",
            "max_tokens": "64",
            "reasoning_effort": "low",
        }
    )
    assert turn_body(form) == {
        "message": "hi",
        "model": "gpt-4o",
        "system_prompt": "Be brief",
        "temperature": 0.3,
        "max_tokens": 64,
        "reasoning_effort": "low",
    }
    empty = QueryDict("message=hi&temperature=&max_tokens=&reasoning_effort=&system_prompt=")
    assert turn_body(empty) == {"message": "hi", "model": None, "system_prompt": ""}
    for field, value in [
        ("temperature", "3"),
        ("temperature", "warm"),
        ("max_tokens", "0"),
        ("max_tokens", "1.5"),
    ]:
        with pytest.raises(ApiError) as refused:
            turn_body(QueryDict(f"message=hi&{field}={value}"))
        assert refused.value.code == "invalid_parameter" and refused.value.meta == {"field": field}
    assert "reasoning_effort" not in turn_body(QueryDict("message=hi&reasoning_effort=extreme"))
