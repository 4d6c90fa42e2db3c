"""The Anthropic Messages adapter against the fake vendor, and its pure mapping functions."""

import json

import pytest

from llm.providers.anthropic import (
    JSON_TOOL,
    AnthropicProvider,
    build_body,
    map_message,
    map_messages,
    model_version,
    strict_schema,
)
from llm.providers.anthropic_api import parse_error
from llm.providers.base import ChatRequest, Route, UpstreamError
from llm.upstreams import Upstream
from tests.fakes.anthropic import FakeAnthropic

MODEL = "claude-haiku-4-5-20251001"
WEATHER_TOOL = {
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
PNG = "data:image/png;base64,iVBORw0KGgo="


@pytest.fixture(scope="module")
def fake():
    server = FakeAnthropic(api_key="test-key").start()
    yield server
    server.stop()


@pytest.fixture
def provider(fake):
    fake.reset()
    return AnthropicProvider(Upstream(family="anthropic", base_url=fake.base_url, api_key="test-key"))


def chat(messages, *, stream=False, slug="claude-haiku-4-5", max_output_tokens=None, **body) -> ChatRequest:
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return ChatRequest(
        body={"model": slug, "messages": messages, **body},
        slug=slug,
        stream=stream,
        max_output_tokens=max_output_tokens,
    )


def route(model=MODEL) -> Route:
    return Route("anthropic", model)


async def collect(provider, request, model=MODEL):
    return [piece async for piece in provider.stream(request, route(model))]


def deltas(pieces):
    return [p.chunk["choices"][0]["delta"] for p in pieces if p.chunk and p.chunk["choices"]]


# --- completions against the fake ---------------------------------------------------------


async def test_plain_completion_text_and_usage(provider, fake):
    completion, usage = await provider.complete(chat("Hello there"), route())
    assert completion["object"] == "chat.completion" and completion["model"] == "claude-haiku-4-5"
    choice = completion["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Echo: Hello there", "refusal": None}
    assert choice["finish_reason"] == "stop"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (5, 3, 0)
    assert completion["usage"]["total_tokens"] == 8
    sent = fake.requests[-1]
    assert sent["path"] == "/v1/messages" and sent["headers"]["x-api-key"] == "test-key"
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert (
        sent["json"]["model"] == MODEL and sent["json"]["max_tokens"] == 4096 and "stream" not in sent["json"]
    )


async def test_cached_tokens_count_into_prompt(provider):
    _, usage = await provider.complete(chat("a b c d [[cached]]", max_tokens=50), route())
    assert usage.prompt_tokens == 8 and usage.cached_tokens == 4


async def test_system_and_images_reach_vendor_in_anthropic_format(provider, fake):
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": [{"type": "text", "text": "and kind"}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": PNG}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        },
    ]
    await provider.complete(chat(messages, max_tokens=100), route())
    sent = fake.requests[-1]["json"]
    assert sent["system"] == "be brief\n\nand kind" and sent["max_tokens"] == 100
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


async def test_tools_round_trip(provider, fake):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    completion, _ = await provider.complete(chat(ask, tools=[WEATHER_TOOL], tool_choice="auto"), route())
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    sent = fake.requests[-1]["json"]
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert sent["tool_choice"] == {"type": "auto"}

    follow = ask + [choice["message"], {"role": "tool", "tool_call_id": call["id"], "content": "Rainy, 12C"}]
    completion, _ = await provider.complete(chat(follow, tools=[WEATHER_TOOL]), route())
    assert completion["choices"][0]["message"]["content"] == "The tool said: Rainy, 12C"
    assert completion["choices"][0]["finish_reason"] == "stop"
    sent = fake.requests[-1]["json"]["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": call["id"], "name": "get_weather", "input": {"location": "Paris"}}
        ],
    }
    assert sent[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "Rainy, 12C"}],
    }


async def test_thinking_becomes_reasoning_content(provider, fake):
    completion, usage = await provider.complete(chat("Why is the sky blue?", reasoning_effort="low"), route())
    message = completion["choices"][0]["message"]
    assert message["reasoning_content"] == "Thinking about: Why is the sky blue?"
    assert message["content"] == "Echo: Why is the sky blue?"
    assert 0 < usage.reasoning_tokens <= usage.completion_tokens
    sent = fake.requests[-1]["json"]
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert sent["max_tokens"] > 1024


async def test_response_format_json_schema_uses_output_config(provider, fake):
    schema = {"type": "object", "properties": {"answer": {"type": "string", "maxLength": 5}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    await provider.complete(chat("give json", response_format=fmt), route())
    sent = fake.requests[-1]["json"]
    assert sent["output_config"] == {
        "format": {
            "type": "json_schema",
            "schema": {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "additionalProperties": False,
            },
        }
    }
    assert "tools" not in sent


async def test_response_format_json_schema_emulated_on_older_models(provider, fake):
    schema = {"type": "object", "properties": {"location": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    old = "claude-3-7-sonnet-20250219"
    completion, _ = await provider.complete(chat("give json", response_format=fmt), route(old))
    choice = completion["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"location": "Paris"}
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"
    sent = fake.requests[-1]["json"]
    assert (
        sent["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
        and sent["tools"][0]["input_schema"] == schema
    )

    pieces = await collect(provider, chat("give json", stream=True, response_format=fmt), old)
    assert json.loads("".join(d.get("content", "") for d in deltas(pieces))) == {"location": "Paris"}
    assert not any("tool_calls" in d for d in deltas(pieces))
    assert [p.finish_reason for p in pieces if p.finish_reason] == ["stop"]


async def test_stop_becomes_stop_sequences(provider, fake):
    await provider.complete(chat("hi", stop="END", temperature=1.7, top_p=0.5, user="u-1", seed=3), route())
    sent = fake.requests[-1]["json"]
    assert sent["stop_sequences"] == ["END"] and sent["temperature"] == 1.0 and "top_p" not in sent
    assert sent["metadata"] == {"user_id": "u-1"} and "seed" not in sent
    await provider.complete(chat("hi", stop=["a", "b"]), route())
    assert fake.requests[-1]["json"]["stop_sequences"] == ["a", "b"]


async def test_max_tokens_truncation_is_length(provider):
    completion, usage = await provider.complete(chat("one two three four", max_tokens=2), route())
    assert completion["choices"][0]["finish_reason"] == "length"
    assert completion["choices"][0]["message"]["content"] == "Echo: one"


# --- streaming ----------------------------------------------------------------------------


async def test_stream_text(provider, fake):
    pieces = await collect(provider, chat("Hello there streaming world", stream=True))
    assert fake.requests[-1]["json"]["stream"] is True
    first = deltas(pieces)[0]
    assert first == {"role": "assistant", "content": ""}
    text = "".join(d.get("content", "") for d in deltas(pieces))
    assert text == "Echo: Hello there streaming world"
    assert sum(p.text_chars for p in pieces) == len(text)
    finishing = [p for p in pieces if p.finish_reason]
    assert len(finishing) == 1 and finishing[0].finish_reason == "stop"
    assert finishing[0].chunk["choices"][0]["finish_reason"] == "stop"
    last = pieces[-1]
    assert last.usage_only and last.chunk["choices"] == [] and last.usage.prompt_tokens == 7
    assert last.usage.completion_tokens == 5 and last.chunk["usage"]["total_tokens"] == 12
    assert all(p.data.startswith(b"data: {") and p.data.endswith(b"\n\n") for p in pieces)
    assert {p.chunk["model"] for p in pieces} == {"claude-haiku-4-5"}
    assert len({p.chunk["id"] for p in pieces}) == 1


async def test_stream_tool_call_deltas_reassemble(provider):
    pieces = await collect(provider, chat("weather in Paris?", stream=True, tools=[WEATHER_TOOL]))
    calls = [c for d in deltas(pieces) for c in d.get("tool_calls", [])]
    assert calls[0]["index"] == 0 and calls[0]["id"].startswith("toolu_") and calls[0]["type"] == "function"
    assert calls[0]["function"] == {"name": "get_weather", "arguments": ""}
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == {"location": "Paris"}
    assert all(c["index"] == 0 for c in calls)
    assert sum(p.text_chars for p in pieces) == len(arguments)
    assert [p.finish_reason for p in pieces if p.finish_reason] == ["tool_calls"]
    assert pieces[-1].usage is not None


async def test_stream_thinking(provider, fake):
    pieces = await collect(
        provider, chat("Why so?", stream=True, reasoning_effort="high", max_tokens=100), "claude-opus-4-7"
    )
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas(pieces))
    assert reasoning == "Thinking about: Why so?"
    assert "".join(d.get("content", "") for d in deltas(pieces)) == "Echo: Why so?"
    assert pieces[-1].usage.reasoning_tokens == len(reasoning) // 4
    sent = fake.requests[-1]["json"]
    assert sent["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert sent["output_config"] == {"effort": "high"} and sent["max_tokens"] == 100


async def test_stream_cut_off_raises(provider, fake):
    fake.script("cutoff")
    with pytest.raises(UpstreamError) as caught:
        await collect(provider, chat("Hello there", stream=True))
    assert caught.value.kind == "connect" and caught.value.retryable


async def test_stream_midstream_error_raises(provider, fake):
    fake.script("midstream_error")
    with pytest.raises(UpstreamError) as caught:
        await collect(provider, chat("Hello there", stream=True))
    assert caught.value.kind == "overloaded"


async def test_stream_malformed_event_raises(provider, fake):
    fake.script("malformed")
    with pytest.raises(UpstreamError) as caught:
        await collect(provider, chat("Hello there", stream=True))
    assert caught.value.kind == "malformed"


async def test_stream_without_usage_has_no_usage_piece(provider, fake):
    fake.script("no_usage")
    pieces = await collect(provider, chat("Hello there", stream=True))
    assert [p.finish_reason for p in pieces if p.finish_reason] == ["stop"]
    assert not any(p.usage_only for p in pieces)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault, kind, status",
    [
        ("429", "rate_limited", 429),
        ("529", "overloaded", 529),
        ("503", "overloaded", 529),
        ("context", "context_length", 400),
        ("400", "bad_request", 400),
        ("401", "auth", 401),
        ("500", "server", 500),
    ],
)
async def test_vendor_errors(provider, fake, fault, kind, status):
    fake.script(fault)
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(chat("Hello there"), route())
    error = caught.value
    assert (error.kind, error.status) == (kind, status)
    if fault == "429":
        assert error.retry_after == 1.0 and "[url]" in error.message and "https://" not in error.message
    if fault == "400":
        assert error.message == "messages: fake invalid request"


async def test_stream_errors_before_first_byte(provider, fake):
    fake.script("429")
    with pytest.raises(UpstreamError) as caught:
        await collect(provider, chat("Hello there", stream=True))
    assert caught.value.kind == "rate_limited" and caught.value.retry_after == 1.0


async def test_bad_key_is_auth(fake):
    bad = AnthropicProvider(Upstream(family="anthropic", base_url=fake.base_url, api_key="wrong"))
    with pytest.raises(UpstreamError) as caught:
        await bad.complete(chat("Hello there"), route())
    assert caught.value.kind == "auth" and caught.value.retryable


async def test_n_greater_than_one_rejected(provider, fake):
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(chat("hi", n=2), route())
    assert caught.value.kind == "bad_request" and "n > 1" in caught.value.message
    assert fake.requests == []


def test_parse_error_kinds():
    def parse(status, etype, message, headers=None):
        body = json.dumps({"type": "error", "error": {"type": etype, "message": message}}).encode()
        return parse_error(status, body, headers or {})

    assert (
        parse(400, "invalid_request_error", "input length and `max_tokens` exceed context limit").kind
        == "context_length"
    )
    assert (
        parse(400, "invalid_request_error", "Output blocked by content filtering policy").kind
        == "content_policy"
    )
    assert parse(403, "permission_error", "no").kind == "auth"
    assert parse(404, "not_found_error", "model: x").kind == "not_found"
    assert parse(504, "timeout_error", "slow").kind == "timeout"
    assert parse(529, "overloaded_error", "Overloaded").kind == "overloaded"
    assert parse_error(502, b"<html>bad gateway</html>", {}).kind == "server"


# --- pure mapping -------------------------------------------------------------------------


def test_consecutive_same_role_messages_merge():
    system, messages = map_messages(
        [
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "a"},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "three"},
        ]
    )
    assert system == ""
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "user", "content": [{"type": "text", "text": "three"}]},
    ]


def test_tool_results_merge_into_one_user_message():
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
        {"id": "call.2", "type": "function", "function": {"name": "g", "arguments": "not json"}},
    ]
    _, messages = map_messages(
        [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "calling", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_1", "content": "r1"},
            {"role": "tool", "tool_call_id": "call.2", "content": [{"type": "text", "text": "r2"}]},
            {"role": "user", "content": "thanks"},
        ]
    )
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "calling"},
            {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 1}},
            {"type": "tool_use", "id": "call_2", "name": "g", "input": {"_raw": "not json"}},
        ],
    }
    assert messages[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "r1"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "r2"}]},
            {"type": "text", "text": "thanks"},
        ],
    }
    assert len(messages) == 3


def test_system_with_cache_control_stays_blocks():
    system, _ = map_messages(
        [
            {
                "role": "system",
                "content": [{"type": "text", "text": "long", "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "user", "content": "hi"},
        ]
    )
    assert system == [{"type": "text", "text": "long", "cache_control": {"type": "ephemeral"}}]


def test_unsupported_parts_are_bad_request():
    with pytest.raises(UpstreamError) as caught:
        map_messages([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])
    assert caught.value.kind == "bad_request"
    with pytest.raises(UpstreamError):
        map_messages([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}])


def body_for(model=MODEL, **fields):
    return build_body(chat("hi", **fields), route(model), stream=False)[0]


def test_tool_choice_mapping():
    tools = [WEATHER_TOOL]
    assert body_for(tools=tools, tool_choice="required")["tool_choice"] == {"type": "any"}
    assert body_for(tools=tools, tool_choice="none")["tool_choice"] == {"type": "none"}
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert body_for(tools=tools, tool_choice=named)["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert body_for(tools=tools, parallel_tool_calls=False)["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }
    assert "tool_choice" not in body_for(tools=tools) and "tools" not in body_for(tool_choice="auto")


def test_thinking_mapping():
    assert body_for(reasoning_effort="medium", max_tokens=1000)["thinking"] == {
        "type": "enabled",
        "budget_tokens": 4096,
    }
    assert body_for(reasoning_effort="medium", max_tokens=1000)["max_tokens"] == 5096
    high = body_for(reasoning_effort="high", max_completion_tokens=30000)
    assert high["thinking"]["budget_tokens"] == 16384 and high["max_tokens"] == 30000
    adaptive = body_for("claude-sonnet-4-6", reasoning_effort="low", temperature=0.2)
    assert adaptive["thinking"] == {"type": "adaptive"} and adaptive["output_config"] == {"effort": "low"}
    assert "temperature" not in adaptive
    passthrough = body_for(thinking={"type": "enabled", "budget_tokens": 2000})
    assert passthrough["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert "thinking" not in body_for(reasoning_effort="high", tools=[WEATHER_TOOL], tool_choice="required")
    assert "thinking" not in body_for(reasoning_effort="none")


def test_thinking_dropped_mid_tool_loop():
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
    ]
    body, _ = build_body(chat(messages, reasoning_effort="low"), route(), stream=False)
    assert "thinking" not in body


def test_opus_4_7_gets_no_sampling_params():
    body = body_for("claude-opus-4-7", temperature=0.3, top_p=0.9)
    assert "temperature" not in body and "top_p" not in body


def test_json_object_adds_instruction():
    body = build_body(
        chat(
            [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
            response_format={"type": "json_object"},
        ),
        route(),
        stream=False,
    )[0]
    assert body["system"].startswith("sys\n\n") and "JSON" in body["system"]


def test_strict_schema():
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1},
            "maximum": {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
            "xs": {"type": "array", "minItems": 2, "items": {"type": "object", "properties": {}}},
            "kind": {"enum": [{"minimum": 1}], "default": {"type": "object"}},
        },
    }
    assert strict_schema(schema) == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "n": {"type": "integer"},
            "maximum": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "xs": {
                "type": "array",
                "items": {"type": "object", "properties": {}, "additionalProperties": False},
            },
            "kind": {"enum": [{"minimum": 1}], "default": {"type": "object"}},
        },
    }


def test_map_message_and_usage():
    data = {
        "content": [
            {"type": "thinking", "thinking": "x" * 40, "signature": "s"},
            {"type": "text", "text": "Hi"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 10,
            "cache_read_input_tokens": 5,
            "cache_creation_input_tokens": 2,
            "output_tokens": 7,
        },
    }
    completion, usage = map_message(data, "slug")
    message = completion["choices"][0]["message"]
    assert message["content"] == "Hi" and message["reasoning_content"] == "x" * 40
    assert message["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    ]
    assert completion["choices"][0]["finish_reason"] == "tool_calls"
    assert (usage.prompt_tokens, usage.cached_tokens, usage.completion_tokens, usage.reasoning_tokens) == (
        17,
        5,
        7,
        7,
    )
    refused, _ = map_message({"content": [], "stop_reason": "refusal"}, "slug")
    assert refused["choices"][0]["finish_reason"] == "content_filter"
    assert map_message({"content": [], "stop_reason": "end_turn"}, "slug")[1] is None
    with pytest.raises(UpstreamError) as caught:
        map_message({"id": "broken"}, "slug")
    assert caught.value.kind == "malformed"


def test_model_version():
    assert model_version("claude-opus-4-7") == (4, 7)
    assert model_version("claude-haiku-4-5-20251001") == (4, 5)
    assert model_version("claude-sonnet-4-20250514") == (4, 0)
    assert model_version("claude-3-5-sonnet-20241022") == (3, 5)
