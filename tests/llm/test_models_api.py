"""The model lists over a real socket: the official OpenAI SDK and plain HTTP against uvicorn."""

import httpx
import openai
import pytest

from ..conftest import make_user


@pytest.fixture
def carol(committed):
    # Carol: a fresh user with $5 for the end-to-end calls.
    return make_user("carol", "5")


def test_openai_sdk_lists_models_through_the_gateway(api_server, carol):
    client = openai.OpenAI(api_key=carol.raw_key, base_url=f"{api_server}/v1/openai")
    ids = {m.id: m for m in client.models.list().data}
    # every vendor is configured with a loopback fake
    assert ids["claude-haiku-4-5"].owned_by == "anthropic"
    assert ids["claude-haiku-4-5"].object == "model"
    assert {"gpt-4o", "gemini-2.5-pro", "deepseek-v4-pro", "MiniMax-M2.7", "nano-banana"} <= set(ids)
    assert "kling-2-6" in ids  # video models are served through the fal fake


def test_models_endpoints_over_http(api_server, carol):
    catalog = httpx.get(f"{api_server}/v1/llm/models/catalog")
    assert catalog.status_code == 200
    body = catalog.json()
    assert body["success"] is True and body["request_id"] == catalog.headers["x-request-id"]
    slugs = {m["id"]: m for m in body["data"]["models"]}
    assert slugs["deepseek-v4-pro"]["pricing"]["input_per_1m"] == 2.40
    assert slugs["nano-banana-pro"]["pricing"]["per_image"] == 0.1072
    assert slugs["kling-2-6"]["kind"] == "video"
    assert body["data"]["default_model"] == "claude-haiku-4-5"

    balance = httpx.get(f"{api_server}/v1/llm/balance", headers={"X-API-Key": carol.raw_key})
    assert balance.json()["data"] == {
        "balance_usd": 5.0,
        "held_usd": 0.0,
        "total_usd": 5.0,
        "currency": "USD",
    }


def test_sdk_gets_an_authentication_error_for_a_bad_key(api_server, committed):
    client = openai.OpenAI(api_key="gpuniq_" + "n" * 43, base_url=f"{api_server}/v1/openai", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.models.list()
    assert caught.value.code == "invalid_api_key"
    assert caught.value.status_code == 401
