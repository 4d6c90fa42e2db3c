"""Bodies and outages that used to end in an unhandled 500: each now answers with a catalog code
(4xx for the client's mistake, 503 for our outage), in the surface's envelope, and leaves no hold
open on the caller's account."""

import json

import httpx
import pytest

from billing.models import Hold
from gpuniq_site.errors import CATALOG
from llm.models import ChatJob
from media_jobs.models import MediaJob

from ..conftest import make_user, service_extra_env
from ..live import LiveServer, free_port

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def mallory(committed):
    # Mallory: $5, sends everything she can think of.
    return make_user("mallory", "5")


def call(base, user, method, path, content):
    return httpx.request(
        method,
        f"{base}{path}",
        content=content,
        timeout=60,
        headers={"X-API-Key": user.raw_key, "Content-Type": "application/json"},
    )


def assert_refused(response, code, user):
    assert response.status_code == CATALOG[code].status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()


def test_deeply_nested_json_to_the_chat_crud_is_invalid_json(api_server, mallory):
    created = call(api_server, mallory, "POST", "/v1/llm/chats", b"{}").json()["data"]["id"]
    for method, path in (("POST", "/v1/llm/chats"), ("PATCH", f"/v1/llm/chats/{created}")):
        response = call(api_server, mallory, method, path, DEEP)
        assert_refused(response, "invalid_json", mallory)
        assert response.json()["success"] is False


CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "PLACE"}]}
PROMPTS = [  # (path, body with PLACE where the bad text goes)
    ("/v1/openai/chat/completions", CHAT),
    ("/v1/llm/chat/completions", CHAT),
    ("/v1/llm/chat/jobs", CHAT),
    ("/v1/llm/images/jobs", {"model": "nano-banana", "prompt": "PLACE"}),
    ("/v1/llm/images/generations", {"model": "gpt-image-1", "prompt": "PLACE"}),
    ("/v1/llm/videos/jobs", {"model": "kling-2-6", "prompt": "PLACE"}),
]


@pytest.mark.parametrize(
    "bad", ["\\ud800", "a\\udfffb", "\\u0000"], ids=["surrogate", "low-surrogate", "nul"]
)
@pytest.mark.parametrize("path,template", PROMPTS, ids=[p for p, _ in PROMPTS])
def test_unencodable_text_in_prompts_is_refused_before_any_hold(
    api_server, mallory, vendors, path, template, bad
):
    raw = json.dumps(template).replace("PLACE", bad).encode()
    response = call(api_server, mallory, "POST", path, raw)
    assert_refused(response, "invalid_parameter", mallory)
    assert "text" in response.json()["error"]["message"]
    assert not Hold.objects.filter(account=mallory.account).exists()  # refused before any hold was taken
    assert not ChatJob.objects.filter(user_id=mallory.pk).exists()
    assert not MediaJob.objects.filter(user_id=mallory.pk).exists()


def test_a_chat_turn_with_a_lone_surrogate_is_refused(api_server, mallory, vendors):
    chat_id = call(api_server, mallory, "POST", "/v1/llm/chats", b"{}").json()["data"]["id"]
    response = call(
        api_server, mallory, "POST", f"/v1/llm/chats/{chat_id}/messages", b'{"message": "\\ud800"}'
    )
    assert_refused(response, "invalid_parameter", mallory)
    response = call(api_server, mallory, "PATCH", f"/v1/llm/chats/{chat_id}", b'{"title": "x\\u0000y"}')
    assert_refused(response, "invalid_parameter", mallory)


@pytest.fixture(scope="module")
def redisless_server(catalog_loaded, fake_vendors):
    """An app process whose Redis (cache, rate limits and Celery broker) is a closed port."""
    closed = f"redis://127.0.0.1:{free_port()}/0"
    server = LiveServer(
        env={**service_extra_env(fake_vendors), "REDIS_URL": closed, "CELERY_BROKER_URL": closed}
    ).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "path,body,model",
    [
        ("/v1/llm/chat/jobs", CHAT, ChatJob),
        ("/v1/llm/images/jobs", {"model": "nano-banana", "prompt": "a cabin"}, MediaJob),
        ("/v1/llm/videos/jobs", {"model": "kling-2-6", "prompt": "a cat"}, MediaJob),
    ],
)
def test_job_kickoff_without_a_broker_is_503_with_the_job_failed_and_its_hold_released(
    redisless_server, mallory, vendors, path, body, model
):
    response = call(
        redisless_server.url, mallory, "POST", path, json.dumps(body).replace("PLACE", "hi").encode()
    )
    assert_refused(response, "service_unavailable", mallory)
    job_id = response.json()["error"]["meta"]["job_id"]
    job = model.objects.get(pk=job_id, user_id=mallory.pk)
    assert job.status == "failed" and job.error["code"] == "service_unavailable"
    assert Hold.objects.get(pk=job.hold_id).status == Hold.RELEASED
    assert "Traceback" not in redisless_server.output()


def test_a_signed_stripe_event_that_is_a_json_array_is_400(client, settings, committed):
    from ..fakes.stripe import sign

    settings.STRIPE_WEBHOOK_SECRET = "whsec_test_secret"
    for payload in ('[{"id": "evt_1"}]', '"evt_1"', "[" * 50_000 + "]" * 50_000):
        response = client.post(
            "/webhooks/stripe",
            payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(payload, "whsec_test_secret"),
        )
        assert response.status_code == 400
        body = response.json()
        assert body["received"] is False and body["code"] == "invalid_json"


@pytest.mark.postgres
def test_a_catalog_read_while_database_sessions_are_cut_is_503(catalog_loaded, committed, fake_vendors):
    from django.conf import settings as django_settings

    from ..live import test_database_url
    from ..proxy import TcpProxy

    db = django_settings.DATABASES["default"]
    proxy = TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432)).start()
    server = LiveServer(
        env={
            **service_extra_env(fake_vendors),
            "GPUNIQ_CATALOG_TTL_SECONDS": "0",
            "DB_POOL_TIMEOUT": "2",
            "DATABASE_URL": proxy.url_for(test_database_url()),
        }
    ).start()
    try:
        assert httpx.get(f"{server.url}/v1/llm/models/catalog", timeout=30).status_code == 200
        proxy.cut()  # every session of the server is cut, and new ones are refused
        cut = [httpx.get(f"{server.url}/v1/llm/models/catalog", timeout=30) for _ in range(3)]
        proxy.restore()
        after = httpx.get(f"{server.url}/v1/llm/models/catalog", timeout=30)
    finally:
        server.stop()
        proxy.stop()
    for response in cut:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.json()["success"] is False
    assert after.status_code == 200
    assert "unhandled error" not in server.output()


DOOR_ITEMS = [  # Responses input items whose role or type is a JSON value no set can hold
    [{"role": [], "content": "hi"}],
    [{"role": {"a": 1}, "content": "hi"}],
    [{"type": ["message"], "role": "user", "content": "hi"}, {"role": "user", "content": "hi"}],
    [{"type": {"x": 1}}, {"role": "user", "content": "hi"}],
]


@pytest.mark.parametrize("items", DOOR_ITEMS, ids=range(len(DOOR_ITEMS)))
def test_a_responses_item_whose_role_or_type_is_not_a_string_is_never_a_500(
    api_server, mallory, vendors, items
):
    body = {"model": "gpt-4o", "input": items, "max_output_tokens": 16}
    response = call(api_server, mallory, "POST", "/v1/openai/responses", json.dumps(body).encode())
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert_refused(response, "invalid_parameter", mallory)
    assert not Hold.objects.filter(account=mallory.account, status=Hold.OPEN).exists()


NUMBER_DOORS = [  # (path, body with PLACE where the number goes)
    ("/v1/openai/chat/completions", {**CHAT, "temperature": "NUMBER"}),
    ("/v1/llm/chat/completions", {**CHAT, "top_p": "NUMBER"}),
    ("/v1/llm/chat/jobs", {**CHAT, "temperature": "NUMBER"}),
    ("/v1/llm/chat/jobs", {**CHAT, "x_unknown": "NUMBER"}),  # stored with the job
    (
        "/v1/anthropic/v1/messages",
        {**CHAT, "model": "claude-haiku-4-5", "max_tokens": 8, "temperature": "NUMBER"},
    ),
    ("/v1/openai/responses", {"model": "gpt-4o", "input": "hi", "top_p": "NUMBER"}),
    ("/v1/openai/responses", {"model": "gpt-4o", "input": "hi", "top_logprobs": "NUMBER"}),
]
NUMBERS = {"int-400-digits": "1" + "0" * 400, "negative": "-1" + "0" * 400, "1e400": "1e400", "NaN": "NaN"}


@pytest.mark.parametrize("number", NUMBERS.values(), ids=NUMBERS)
@pytest.mark.parametrize("path,template", NUMBER_DOORS, ids=[f"{p} {sorted(t)[-1]}" for p, t in NUMBER_DOORS])
def test_a_number_no_float_can_hold_is_refused_before_any_hold(
    api_server, mallory, vendors, path, template, number
):
    raw = json.dumps(template).replace('"NUMBER"', number).replace('"PLACE"', '"hello"').encode()
    response = call(api_server, mallory, "POST", path, raw)
    assert_refused(response, "invalid_parameter", mallory)
    assert not Hold.objects.filter(account=mallory.account).exists()
    assert not ChatJob.objects.filter(user_id=mallory.pk).exists()
