"""The details strict OpenAI clients check, over a socket with the official SDK: models.retrieve,
the key's allow-list in /models, `error.param`, `message.refusal`, CORS for the API surfaces."""

import httpx
import openai
import pytest

from ..conftest import make_user


@pytest.fixture
def gina(committed):
    # Gina: $5, a key limited to two models.
    return make_user("gina", "5", allowed_models=["gpt-4o", "claude-haiku-4-5"])


@pytest.fixture
def carol(committed):
    # Carol: $5, a key without an allow-list.
    return make_user("carol", "5")


def sdk(server, user):
    return openai.OpenAI(api_key=user.raw_key, base_url=f"{server}/v1/openai", max_retries=0)


def test_models_retrieve_returns_the_model_object(api_server, carol):
    model = sdk(api_server, carol).models.retrieve("claude-haiku-4-5")
    assert (model.id, model.object, model.owned_by) == ("claude-haiku-4-5", "model", "anthropic")
    with pytest.raises(openai.NotFoundError) as seen:
        sdk(api_server, carol).models.retrieve("no-such-model")
    assert seen.value.body["code"] == "model_not_found" and seen.value.body["param"] is None


def test_models_list_and_retrieve_follow_the_keys_allow_list(api_server, gina):
    client = sdk(api_server, gina)
    assert sorted(m.id for m in client.models.list().data) == ["claude-haiku-4-5", "gpt-4o"]
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gemini-2.5-pro")


def test_every_error_names_its_param(api_server, carol, vendors):
    client = sdk(api_server, carol)
    with pytest.raises(openai.BadRequestError) as seen:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}], temperature=5
        )
    assert seen.value.body["param"] == "temperature" and seen.value.param == "temperature"
    response = httpx.get(
        f"{api_server}/v1/openai/no/such/path", headers={"Authorization": f"Bearer {carol.raw_key}"}
    )
    assert response.status_code == 404 and "param" in response.json()["error"]
    assert response.json()["error"]["param"] is None


def test_translated_replies_carry_a_null_refusal(api_server, carol, vendors):
    for model in ("claude-haiku-4-5", "gemini-2.5-flash"):
        raw = sdk(api_server, carol).chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
        message = raw.http_response.json()["choices"][0]["message"]
        assert "refusal" in message and message["refusal"] is None


def test_cors_preflight_and_responses_on_the_api_only(api_server, carol):
    asked = "authorization, content-type, anthropic-dangerous-direct-browser-access, x-stainless-os"
    preflight = httpx.options(
        f"{api_server}/v1/openai/chat/completions",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": asked,
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert {
        "authorization",
        "content-type",
        "anthropic-dangerous-direct-browser-access",
        "x-stainless-os",
    } <= allowed
    assert "access-control-allow-credentials" not in preflight.headers

    listed = httpx.get(
        f"{api_server}/v1/openai/models",
        headers={"Origin": "https://app.example", "Authorization": f"Bearer {carol.raw_key}"},
    )
    assert listed.status_code == 200 and listed.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in listed.headers["access-control-expose-headers"]

    page = httpx.get(f"{api_server}/", headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in page.headers
    page_preflight = httpx.options(
        f"{api_server}/login/",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in page_preflight.headers


def test_a_stream_without_include_usage_has_no_usage_key_at_all(api_server, carol, vendors):
    with httpx.stream(
        "POST",
        f"{api_server}/v1/openai/chat/completions",
        headers={"Authorization": f"Bearer {carol.raw_key}"},
        json={"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "a b c"}]},
    ) as r:
        body = r.read().decode()
    assert body.endswith("data: [DONE]\n\n") and '"usage"' not in body
    assert vendors["openai"].requests[-1]["json"]["stream_options"] == {"include_usage": True}
