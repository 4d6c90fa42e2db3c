"""Ids and values PostgreSQL or int() cannot take (a NUL, '²', thousands of digits) get the answer
any other bad id or value gets: the catalog's not-found envelope on the API, the page's usual
answer on the dashboard. Never a 500 (on SQLite a NUL merely finds nothing, on PostgreSQL it
was a DataError), and nothing is held or charged."""

from decimal import Decimal

import httpx
import pytest

from billing.models import Hold
from llm.models import Chat

from ..conftest import balance_of, make_user

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def nora(committed):
    # Nora: $5, pastes ids with control characters in them.
    return make_user("nora", "5")


def untouched(user) -> bool:
    return balance_of(user) == Decimal(5) and not Hold.objects.filter(account_id=user.account.pk).exists()


@pytest.mark.parametrize(
    "method,path,code",
    [
        ("GET", "/v1/llm/chat/jobs/ab%00cd", "job_not_found"),
        ("GET", "/v1/llm/chat/jobs/cjob_%00", "job_not_found"),
        ("GET", "/v1/openai/responses/resp_%00", "response_not_found"),
        ("GET", "/v1/openai/responses/resp_%00/input_items", "response_not_found"),
        ("DELETE", "/v1/openai/responses/resp_%00", "response_not_found"),
    ],
)
def test_a_nul_in_a_path_id_is_not_found(api_server, nora, method, path, code):
    response = httpx.request(method, f"{api_server}{path}", headers={"X-API-Key": nora.raw_key}, timeout=30)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["code"] == code
    assert untouched(nora)


def test_a_nul_in_a_chats_image_job_id_is_not_found(api_server, nora):
    with httpx.Client(
        base_url=f"{api_server}/v1/llm", headers={"X-API-Key": nora.raw_key}, timeout=30
    ) as api:
        chat = api.post("/chats", json={"model": "gpt-4o", "title": "Pictures"}).json()["data"]
        response = api.get(f"/chats/{chat['id']}/image-jobs/img_%00")
    assert response.status_code == 404 and response.json()["error"]["code"] == "job_not_found"
    assert untouched(nora)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("cjob_0123456789abcdef0123", True),
        ("cjob_", False),
        ("cjob_a\x00b", False),
        ("cjob_²", False),
        ("cjob_" + "a" * 28, False),  # longer than the column
        ("img_0123", False),  # another kind's prefix
        (None, False),
    ],
)
def test_could_be_id(value, expected):
    from gpuniq_site.ids import could_be_id

    assert could_be_id(value, prefix="cjob_", max_length=32) is expected


# --- the web chat ---------------------------------------------------------------------------------


@pytest.fixture
def as_nora(client, nora):
    client.force_login(nora)
    return client


def test_a_nul_in_the_chat_search_matches_as_if_it_were_not_there(as_nora, nora):
    Chat.objects.create(user=nora, title="Rust questions", model="gpt-4o")
    for url in ("/chat/", "/chat/list"):
        response = as_nora.get(url, {"q": "ru\x00st"}, **HTMX)
        assert response.status_code == 200 and "Rust questions" in response.content.decode(), url
        assert as_nora.get(url, {"q": "\x00"}, **HTMX).status_code == 200, url


@pytest.mark.parametrize("current", [pytest.param("²", id="sup2"), pytest.param("9" * 5000, id="5000")])
def test_a_current_chat_that_is_no_number_is_no_current_chat(as_nora, nora, current):
    chat = Chat.objects.create(user=nora, title="Trip plans", model="gpt-4o")
    response = as_nora.get("/chat/list", {"current": current}, **HTMX)
    assert response.status_code == 200 and f"chat-item-{chat.pk}" in response.content.decode()


def test_a_nul_in_a_new_title_is_dropped(as_nora, nora):
    chat = Chat.objects.create(user=nora, title="Trip plans", model="gpt-4o")
    response = as_nora.post(f"/chat/{chat.pk}/rename", {"title": "Rust\x00 questions"}, **HTMX)
    chat.refresh_from_db()
    assert response.status_code == 200 and chat.title == "Rust questions"
    as_nora.post(f"/chat/{chat.pk}/rename", {"title": "\x00"}, **HTMX)
    chat.refresh_from_db()
    assert chat.title and "\x00" not in chat.title
