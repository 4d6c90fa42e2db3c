"""The Anthropic and Gemini translations through the gateway, with the official OpenAI SDK:
plain and streamed replies, tool round trips, reasoning, usage and cost."""

from decimal import Decimal

import openai
import pytest

from ..conftest import balance_of, make_user, usage_rows

CASES = [
    ("claude-haiku-4-5", "anthropic", Decimal("0.80"), Decimal("4.00")),
    ("gemini-2.5-pro", "gemini", Decimal("1.00"), Decimal("8.00")),
]
WEATHER_TOOL = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
]


@pytest.fixture
def ivy(committed):
    # Ivy: $5, talks to every vendor family.
    return make_user("ivy", "5")


@pytest.fixture
def client(api_server, ivy):
    return openai.OpenAI(api_key=ivy.raw_key, base_url=f"{api_server}/v1/openai", max_retries=0)


@pytest.mark.parametrize("slug,vendor,price_in,price_out", CASES)
def test_plain_reply_usage_and_exact_cost(client, ivy, vendors, slug, vendor, price_in, price_out):
    resp = client.chat.completions.create(
        model=slug,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello vendor family"},
        ],
    )
    assert resp.model == slug
    assert resp.choices[0].message.content == "Echo: Hello vendor family"
    usage = resp.usage
    expected = (usage.prompt_tokens * price_in + usage.completion_tokens * price_out) / 1_000_000
    assert Decimal(str(usage.model_extra["cost_usd"])) == expected
    assert balance_of(ivy) == Decimal("5") - expected
    assert usage_rows(ivy)[-1].route.startswith(vendor)
    assert vendors[vendor].requests, "the request reached the vendor's own API"


@pytest.mark.parametrize("slug,vendor,price_in,price_out", CASES)
def test_streamed_reply_with_usage(client, vendors, slug, vendor, price_in, price_out):
    chunks = list(
        client.chat.completions.create(
            model=slug,
            stream=True,
            stream_options={"include_usage": True},
            messages=[{"role": "user", "content": "stream it please"}],
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream it please"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage.completion_tokens > 0 and chunks[-1].usage.model_extra["cost_usd"] > 0


@pytest.mark.parametrize("slug,vendor,price_in,price_out", CASES)
@pytest.mark.parametrize("stream", [False, True])
def test_tools_round_trip_through_the_translation(client, vendors, slug, vendor, price_in, price_out, stream):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    if stream:
        calls = {}
        for chunk in client.chat.completions.create(
            model=slug, messages=messages, tools=WEATHER_TOOL, stream=True
        ):
            for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                slot = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = delta.id or slot["id"]
                slot["name"] += delta.function.name or ""
                slot["arguments"] += delta.function.arguments or ""
        call = calls[0]
        call_id, name, arguments = call["id"], call["name"], call["arguments"]
    else:
        first = client.chat.completions.create(model=slug, messages=messages, tools=WEATHER_TOOL)
        assert first.choices[0].finish_reason == "tool_calls"
        tool = first.choices[0].message.tool_calls[0]
        call_id, name, arguments = tool.id, tool.function.name, tool.function.arguments
    assert name == "get_weather" and '"location"' in arguments
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny"},
    ]
    second = client.chat.completions.create(model=slug, messages=messages, tools=WEATHER_TOOL)
    assert second.choices[0].message.content == "The tool said: sunny"


def test_anthropic_thinking_becomes_reasoning_content(client, vendors):
    resp = client.chat.completions.create(
        model="claude-sonnet-4-5",
        reasoning_effort="low",
        messages=[{"role": "user", "content": "think first"}],
    )
    message = resp.choices[0].message
    assert message.content == "Echo: think first"
    assert message.model_extra["reasoning_content"].startswith("Thinking about")
    assert vendors["anthropic"].requests[-1]["json"]["thinking"]["type"] in ("enabled", "adaptive")


def test_gemini_vendor_errors_map_to_catalog_codes(client, vendors):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gemini-2.5-pro", messages=[{"role": "user", "content": "[[fault:context]]"}]
        )
    assert caught.value.code == "context_length_exceeded"
