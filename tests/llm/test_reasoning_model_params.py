"""OpenAI's reasoning models (o-series, gpt-5.x) refuse `max_tokens` and sampling parameters; the
fake answers them with OpenAI's 400 as the vendor does. The gateway fits every request from the
catalog's `fixed_sampling` capability, the same on every surface: native chat, chat sessions,
terminal commands, the OpenAI-compatible API and the Responses door."""

import json

import httpx
import openai
import pytest

from ..conftest import native_client


@pytest.fixture
def native(api_server, alice):
    with native_client(api_server, alice) as client:
        yield client


def last_sent(vendors) -> dict:
    return vendors["openai"].requests[-1]["json"]


def assert_fitted(sent: dict, limit: int) -> None:
    assert sent["max_completion_tokens"] == limit
    assert "max_tokens" not in sent and "temperature" not in sent and "top_p" not in sent


@pytest.mark.parametrize("model, upstream", [("gpt-5.2", "gpt-5.2"), ("gpt-5", "gpt-5"), ("o3", "o3")])
def test_native_chat_on_a_reasoning_model_takes_temperature_and_max_tokens(native, vendors, model, upstream):
    r = native.post(
        "/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": "hi there"}],
            "temperature": 0.3,
            "top_p": 0.9,
            "max_tokens": 50,
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["content"] == "Echo: hi there"
    assert [q["json"]["model"] for q in vendors["openai"].requests] == [upstream]  # no fallback was needed
    assert_fitted(last_sent(vendors), 50)


def test_the_fake_refuses_what_openai_refuses(vendors):
    base = vendors["openai"].api_base
    headers = {"Authorization": "Bearer test-key"}
    r = httpx.post(
        f"{base}/chat/completions",
        headers=headers,
        json={"model": "gpt-5.2", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_parameter"
    r = httpx.post(
        f"{base}/chat/completions",
        headers=headers,
        json={"model": "o3", "temperature": 0.2, "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"
    r = httpx.post(
        f"{base}/responses", headers=headers, json={"model": "gpt-5", "temperature": 0.2, "input": "x"}
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "temperature"


def test_chat_sessions_on_a_reasoning_model(native, vendors):
    chat = native.post("/chats", json={"model": "gpt-5", "title": "r"}).json()["data"]
    r = native.post(
        f"/chats/{chat['id']}/messages",
        json={"message": "hello session", "temperature": 0.5, "max_tokens": 40},
    )
    assert r.status_code == 200, r.text
    assert_fitted(last_sent(vendors), 40)


def test_terminal_commands_on_a_reasoning_model(native, vendors):
    r = native.post("/terminal/commands", json={"prompt": "list files", "model": "o3"})
    assert r.status_code == 200, r.text
    sent = last_sent(vendors)
    assert "temperature" not in sent and "max_tokens" not in sent and sent["max_completion_tokens"] > 0


def test_openai_sdk_and_responses_door_on_a_reasoning_model(api_server, alice, vendors):
    client = openai.OpenAI(api_key=alice.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="gpt-5.2",
            messages=[{"role": "user", "content": "a b"}],
            temperature=0.7,
            max_tokens=30,
            stream=True,
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: a b"
    assert_fitted(last_sent(vendors), 30)
    resp = client.responses.create(
        model="gpt-5", input="c d", temperature=0.7, top_p=0.5, max_output_tokens=30
    )
    assert resp.output_text == "Echo: c d"
    sent = last_sent(vendors)
    assert "temperature" not in sent and "top_p" not in sent and sent["max_output_tokens"] == 30
    assert json.dumps(sent).count("temperature") == 0
