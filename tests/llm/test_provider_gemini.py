"""The Gemini chat adapter: OpenAI requests in, Gemini wire format out, and back, against the fake."""

import asyncio
import json

import httpx
import pytest

from llm.providers import http
from llm.providers.base import ChatRequest, ChunkBuilder, Route, UpstreamError, Usage
from llm.providers.gemini import (
    GeminiProvider,
    SKIP_SIGNATURE,
    _feed,
    _StreamState,
    build_body,
    clean_schema,
    generation_config,
    map_finish,
    map_messages,
    map_tool_choice,
    map_tools,
    map_usage,
    parse_error,
    thinking_config,
    to_completion,
)
from llm.upstreams import Upstream

from ..fakes.gemini import FakeGemini

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/PchI7wAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "strict": True,
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def fake():
    server = FakeGemini(api_key="test-key").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
async def _close_clients():
    """http.py pools httpx clients per event loop; each test has its own loop, so close ours."""
    yield
    for client in http._clients.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()


@pytest.fixture
def provider(fake):
    return GeminiProvider(Upstream(family="gemini", base_url=fake.base_url, api_key="test-key"))


ROUTE = Route("gemini", "gemini-2.0-flash")
THINKING_ROUTE = Route("gemini", "gemini-2.5-flash")


def chat(*messages, stream=False, slug="gemini-test", **extra) -> ChatRequest:
    msgs = [{"role": "user", "content": m} if isinstance(m, str) else m for m in messages]
    return ChatRequest(body={"model": slug, "messages": msgs, **extra}, slug=slug, stream=stream)


async def collect(provider, request, route=ROUTE) -> list:
    return [piece async for piece in provider.stream(request, route)]


def deltas(pieces) -> list[dict]:
    return [json.loads(p.data[6:])["choices"][0]["delta"] for p in pieces if not p.usage_only]


# --- against the fake -----------------------------------------------------------------------


async def test_plain_completion_and_usage(provider, fake):
    obj, usage = await provider.complete(chat("Hello there [[cached]]"), ROUTE)
    assert obj["object"] == "chat.completion" and obj["model"] == "gemini-test"
    choice = obj["choices"][0]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Echo: Hello there [[cached]]",
        "refusal": None,
    }
    assert choice["finish_reason"] == "stop"
    # prompt = 3 words + 3; cached = half of it; 4 words of reply
    assert usage == Usage(prompt_tokens=6, completion_tokens=4, cached_tokens=3, reasoning_tokens=0)
    assert obj["usage"]["total_tokens"] == 10
    sent = fake.requests[-1]
    assert sent["path"] == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert sent["headers"]["x-goog-api-key"] == "test-key"
    assert "thinkingConfig" not in sent["json"].get("generationConfig", {})


async def test_system_instruction_and_image_reach_the_fake(provider, fake):
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://ex.com/a/cat.png?x=1"}},
    ]
    request = chat(
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": "be kind"},
        {"role": "user", "content": content},
        max_tokens=50,
        temperature=0.2,
        stop="END",
    )
    obj, _ = await provider.complete(request, ROUTE)
    assert obj["choices"][0]["message"]["content"] == "Echo: what is this?"
    sent = fake.requests[-1]["json"]
    assert sent["systemInstruction"] == {"parts": [{"text": "be brief"}, {"text": "be kind"}]}
    assert sent["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "what is this?"},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
                {"fileData": {"mimeType": "image/png", "fileUri": "https://ex.com/a/cat.png?x=1"}},
            ],
        }
    ]
    assert sent["generationConfig"] == {"temperature": 0.2, "maxOutputTokens": 50, "stopSequences": ["END"]}


async def test_tools_round_trip(provider, fake):
    first = chat("What is the weather in Paris?", tools=[WEATHER_TOOL], tool_choice="auto")
    obj, usage = await provider.complete(first, ROUTE)
    message = obj["choices"][0]["message"]
    assert obj["choices"][0]["finish_reason"] == "tool_calls"
    assert message["content"] is None
    (call,) = message["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"location": "Paris"}
    declared = fake.requests[-1]["json"]
    assert declared["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"location": {"type": "STRING"}},
                        "required": ["location"],
                    },
                }
            ]
        }
    ]
    assert declared["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}

    second = chat(
        "What is the weather in Paris?",
        message,
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny and 22C"},
        tools=[WEATHER_TOOL],
    )
    obj, _ = await provider.complete(second, ROUTE)
    assert obj["choices"][0]["message"]["content"] == "The tool said: sunny and 22C"
    contents = fake.requests[-1]["json"]["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [{"functionCall": {"name": "get_weather", "args": {"location": "Paris"}}}]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"result": "sunny and 22C"}}}
    ]


async def test_stream_text_reassembly_and_usage(provider, fake):
    pieces = await collect(provider, chat("one two three four", stream=True), THINKING_ROUTE)
    assert fake.requests[-1]["path"].endswith(":streamGenerateContent")
    assert fake.requests[-1]["query"] == {"alt": "sse"}
    ds = deltas(pieces)
    assert ds[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content", "") for d in ds) == "Echo: one two three four"
    assert "".join(d.get("reasoning_content", "") for d in ds) == "Thinking about: one two three four"
    finals = [p for p in pieces if p.finish_reason]
    assert len(finals) == 1 and finals[0].finish_reason == "stop"
    assert sum(p.text_chars for p in pieces) == len(
        "Echo: one two three fourThinking about: one two three four"
    )
    last = pieces[-1]
    assert last.usage_only and last.chunk["choices"] == []
    # reply 5 words; thoughts 6 words, counted as completion and reasoning tokens
    assert last.usage == Usage(prompt_tokens=7, completion_tokens=11, cached_tokens=0, reasoning_tokens=6)
    assert last.chunk["usage"]["completion_tokens_details"] == {"reasoning_tokens": 6}
    assert all(json.loads(p.data[6:])["model"] == "gemini-test" for p in pieces)


async def test_streamed_tool_call(provider):
    pieces = await collect(provider, chat("weather in Paris please", stream=True, tools=[WEATHER_TOOL]))
    calls = [d["tool_calls"][0] for d in deltas(pieces) if "tool_calls" in d]
    assert len(calls) == 1
    assert calls[0]["index"] == 0 and calls[0]["id"].startswith("call_") and calls[0]["type"] == "function"
    assert calls[0]["function"] == {"name": "get_weather", "arguments": json.dumps({"location": "Paris"})}
    assert [p.finish_reason for p in pieces if p.finish_reason] == ["tool_calls"]
    assert pieces[-1].usage.completion_tokens > 0


async def test_thinking_reasoning_content(provider, fake):
    obj, usage = await provider.complete(chat("think hard", reasoning_effort="low"), THINKING_ROUTE)
    assert fake.requests[-1]["json"]["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 1024,
        "includeThoughts": True,
    }
    message = obj["choices"][0]["message"]
    assert message["reasoning_content"] == "Thinking about: think hard"
    assert message["content"] == "Echo: think hard"
    assert usage.reasoning_tokens == 4 and usage.completion_tokens == 3 + 4
    # a thinking model without reasoning_effort still surfaces its thoughts
    obj, _ = await provider.complete(chat("hello"), THINKING_ROUTE)
    assert fake.requests[-1]["json"]["generationConfig"]["thinkingConfig"] == {"includeThoughts": True}
    assert obj["choices"][0]["message"]["reasoning_content"] == "Thinking about: hello"


async def test_response_format_json_schema(provider, fake):
    schema = {
        "type": "object",
        "properties": {"answer": {"type": ["string", "null"]}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    await provider.complete(
        chat(
            "give json",
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "a", "strict": True, "schema": schema},
            },
        ),
        ROUTE,
    )
    config = fake.requests[-1]["json"]["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {
        "type": "OBJECT",
        "required": ["answer"],
        "properties": {"answer": {"type": "STRING", "nullable": True}},
    }


@pytest.mark.parametrize(
    "fault, kind, status",
    [
        ("429", "rate_limited", 429),
        ("400", "bad_request", 400),
        ("context", "context_length", 400),
        ("500", "server", 500),
        ("503", "server", 503),
        ("401", "auth", 401),
    ],
)
async def test_errors(provider, fault, kind, status):
    with pytest.raises(UpstreamError) as info:
        await provider.complete(chat(f"hi [[fault:{fault}]]"), ROUTE)
    assert (info.value.kind, info.value.status) == (kind, status)
    if fault == "400":
        assert info.value.message == "Request contains an invalid argument."
    if fault == "429":
        assert info.value.retry_after == 1.0 and info.value.retryable
    if fault == "500":
        assert "http" not in info.value.message  # the vendor's URL is scrubbed


async def test_stream_errors_before_first_piece(provider):
    with pytest.raises(UpstreamError) as info:
        await collect(provider, chat("hi [[fault:429]]", stream=True))
    assert info.value.kind == "rate_limited"


async def test_wrong_key_is_auth(fake):
    bad = GeminiProvider(Upstream(family="gemini", base_url=fake.base_url, api_key="wrong"))
    with pytest.raises(UpstreamError) as info:
        await bad.complete(chat("hi"), ROUTE)
    assert info.value.kind == "auth" and info.value.status == 400 and info.value.retryable


@pytest.mark.parametrize(
    "fault, kind", [("cutoff", "connect"), ("malformed", "malformed"), ("midstream_error", "server")]
)
async def test_broken_streams_raise(provider, fault, kind):
    got = []
    with pytest.raises(UpstreamError) as info:
        async for piece in provider.stream(chat(f"a b c d e f g h [[fault:{fault}]]", stream=True), ROUTE):
            got.append(piece)
    assert info.value.kind == kind
    assert got and not any(p.usage_only for p in got)


async def test_non_stream_malformed(provider):
    with pytest.raises(UpstreamError) as info:
        await provider.complete(chat("hi [[fault:malformed]]"), ROUTE)
    assert info.value.kind == "malformed"


# --- pure mapping functions -----------------------------------------------------------------


def test_safety_finish_is_content_filter():
    obj, usage = to_completion(
        {"candidates": [{"finishReason": "SAFETY", "index": 0}], "usageMetadata": {"promptTokenCount": 5}},
        "slug",
    )
    assert obj["choices"][0]["finish_reason"] == "content_filter"
    assert obj["choices"][0]["message"]["content"] == ""
    assert usage == Usage(prompt_tokens=5)
    state = _StreamState(ChunkBuilder(model="s"))
    pieces = state.feed({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "SAFETY"}]})
    assert pieces[-1].finish_reason == "content_filter" and state.finished


def test_blocked_prompt_is_content_policy():
    with pytest.raises(UpstreamError) as info:
        to_completion({"promptFeedback": {"blockReason": "SAFETY"}}, "slug")
    assert info.value.kind == "content_policy"
    with pytest.raises(UpstreamError) as info:
        to_completion({"candidates": []}, "slug")
    assert info.value.kind == "malformed"


def test_finish_and_usage_mapping():
    assert map_finish("STOP") == "stop" and map_finish("STOP", True) == "tool_calls"
    assert map_finish("MAX_TOKENS", True) == "length"
    assert {
        map_finish(r) for r in ("RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")
    } == {"content_filter"}
    assert map_finish("OTHER") == "stop" and map_finish(None) is None
    usage = map_usage(
        {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 40,
            "candidatesTokenCount": 7,
            "thoughtsTokenCount": 20,
            "totalTokenCount": 127,
        }
    )
    assert usage == Usage(prompt_tokens=100, completion_tokens=27, cached_tokens=40, reasoning_tokens=20)
    assert map_usage(None) is None


def test_multiple_candidates_and_logprobs():
    data = {
        "candidates": [
            {
                "index": 0,
                "content": {"parts": [{"text": "Hi"}]},
                "finishReason": "STOP",
                "logprobsResult": {
                    "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
                    "topCandidates": [
                        {
                            "candidates": [
                                {"token": "Hi", "logProbability": -0.1},
                                {"token": "Yo", "logProbability": -2.5},
                            ]
                        }
                    ],
                },
            },
            {"index": 1, "content": {"parts": [{"text": "Hey"}]}, "finishReason": "MAX_TOKENS"},
        ]
    }
    obj, usage = to_completion(data, "slug")
    assert usage is None and "usage" not in obj
    assert [c["message"]["content"] for c in obj["choices"]] == ["Hi", "Hey"]
    assert [c["finish_reason"] for c in obj["choices"]] == ["stop", "length"]
    logprobs = obj["choices"][0]["logprobs"]["content"][0]
    assert logprobs["token"] == "Hi" and logprobs["logprob"] == -0.1 and logprobs["bytes"] == [72, 105]
    assert [t["token"] for t in logprobs["top_logprobs"]] == ["Hi", "Yo"]


def test_message_mapping_merges_turns_and_names_tool_results():
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "sys"}]},
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"},
        {
            "role": "assistant",
            "content": "let me check",
            "reasoning_content": "hidden",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
                {"id": "c2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": '{"ok": true}'},
        {"role": "tool", "tool_call_id": "c1", "content": "plain text"},
        {"role": "user", "content": ""},
    ]
    system, contents = map_messages(messages, "gemini-2.5-pro")
    assert system == [{"text": "sys"}]
    assert contents == [
        {"role": "user", "parts": [{"text": "first"}, {"text": "second"}]},
        {
            "role": "model",
            "parts": [
                {"text": "let me check"},
                {"functionCall": {"name": "a", "args": {"x": 1}}},
                {"functionCall": {"name": "b", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "b", "response": {"content": {"ok": True}}}},
                {"functionResponse": {"name": "a", "response": {"result": "plain text"}}},
            ],
        },
    ]
    # Gemini 3 needs a thought signature on the first replayed call of a turn
    _, contents = map_messages(messages, "gemini-3-pro-preview")
    calls = [p for p in contents[1]["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] == SKIP_SIGNATURE and "thoughtSignature" not in calls[1]
    # a lone system prompt becomes the user turn
    assert map_messages([{"role": "system", "content": "only"}]) == (
        [],
        [{"role": "user", "parts": [{"text": "only"}]}],
    )


def test_clean_schema_keeps_gemini_subset():
    schema = {
        "$schema": "x",
        "type": "object",
        "additionalProperties": False,
        "title": "T",
        "$defs": {"Unit": {"type": "string", "enum": ["C", "F"]}},
        "properties": {
            "unit": {"$ref": "#/$defs/Unit", "description": "unit"},
            "when": {"type": "string", "format": "date-time"},
            "email": {"type": "string", "format": "email"},
            "kind": {"const": "fixed"},
            "n": {"type": ["integer", "string"]},
            "tags": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "alt": {"oneOf": [{"type": "number"}, {"type": "null"}]},
            "either": {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]},
        },
        "required": ["unit", "missing"],
    }
    assert clean_schema(schema) == {
        "type": "OBJECT",
        "title": "T",
        "required": ["unit"],
        "properties": {
            "unit": {"type": "STRING", "enum": ["C", "F"], "description": "unit"},
            "when": {"type": "STRING", "format": "date-time"},
            "email": {"type": "STRING"},
            "kind": {"enum": ["fixed"], "type": "STRING"},
            "n": {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]},
            "tags": {"type": "ARRAY", "items": {"type": "STRING", "minLength": 1}},
            "alt": {"type": "NUMBER", "nullable": True},
            "either": {"anyOf": [{"type": "NUMBER"}, {"type": "STRING"}], "nullable": True},
        },
    }


def test_tools_and_tool_choice_mapping():
    no_params = {
        "type": "function",
        "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
    }
    assert map_tools([no_params, {"type": "web_search"}]) == [{"functionDeclarations": [{"name": "now"}]}]
    assert map_tools([]) == []
    assert map_tool_choice("none") == {"functionCallingConfig": {"mode": "NONE"}}
    assert map_tool_choice("required") == {"functionCallingConfig": {"mode": "ANY"}}
    assert map_tool_choice({"type": "function", "function": {"name": "f"}}) == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}
    }
    assert map_tool_choice(None) is None
    # tool_choice without tools is not sent
    assert "toolConfig" not in build_body(chat("hi", tool_choice="required"), "gemini-2.0-flash")


def test_generation_config_mapping():
    body = {
        "temperature": 0.5,
        "top_p": 0.9,
        "max_completion_tokens": 300,
        "stop": ["a", "b"],
        "n": 2,
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logprobs": True,
        "top_logprobs": 3,
        "response_format": {"type": "json_object"},
    }
    assert generation_config(body, 200, "gemini-2.0-flash") == {
        "temperature": 0.5,
        "topP": 0.9,
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.2,
        "maxOutputTokens": 200,
        "stopSequences": ["a", "b"],
        "responseLogprobs": True,
        "logprobs": 3,
        "responseMimeType": "application/json",
    }
    assert generation_config({}, 1000)["maxOutputTokens"] == 1000
    assert generation_config({}) == {}


def test_thinking_config_mapping():
    assert thinking_config({"reasoning_effort": "medium"}, "gemini-2.5-flash") == {
        "thinkingBudget": 8192,
        "includeThoughts": True,
    }
    assert thinking_config({"reasoning_effort": "high"}, "gemini-2.5-pro")["thinkingBudget"] == 24576
    assert thinking_config({"reasoning_effort": "none"}, "gemini-2.5-flash") == {
        "thinkingBudget": 0,
        "includeThoughts": False,
    }
    assert thinking_config({"reasoning_effort": "none"}, "gemini-2.5-pro")["thinkingBudget"] == 128
    assert thinking_config({"reasoning_effort": "medium"}, "gemini-3-pro-preview") == {
        "thinkingLevel": "high",
        "includeThoughts": True,
    }
    assert (
        thinking_config({"reasoning_effort": "medium"}, "gemini-3-flash-preview")["thinkingLevel"] == "medium"
    )
    assert thinking_config({}, "gemini-3-pro-preview") == {"includeThoughts": True}
    assert thinking_config({}, "gemini-2.0-flash") is None
    assert thinking_config({}, "gemini-2.0-flash-thinking-exp") == {"includeThoughts": True}
    # an alias upstream id defers to the slug
    body = build_body(chat("hi", slug="gemini-2.5-pro"), "my-alias")["generationConfig"]
    assert body["thinkingConfig"] == {"includeThoughts": True}


@pytest.mark.parametrize(
    "status, error, kind",
    [
        (
            400,
            {
                "code": 400,
                "status": "INVALID_ARGUMENT",
                "message": "API key not valid.",
                "details": [{"reason": "API_KEY_INVALID"}],
            },
            "auth",
        ),
        (
            400,
            {
                "code": 400,
                "status": "INVALID_ARGUMENT",
                "message": "The input token count (5) exceeds the maximum number of tokens allowed (4).",
            },
            "context_length",
        ),
        (
            400,
            {"code": 400, "status": "FAILED_PRECONDITION", "message": "User location is not supported"},
            "bad_request",
        ),
        (403, {"code": 403, "status": "PERMISSION_DENIED", "message": "no"}, "auth"),
        (404, {"code": 404, "status": "NOT_FOUND", "message": "models/x is not found"}, "not_found"),
        (504, {"code": 504, "status": "DEADLINE_EXCEEDED", "message": "slow"}, "timeout"),
        (
            429,
            {
                "code": 429,
                "status": "RESOURCE_EXHAUSTED",
                "message": "quota",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}],
            },
            "rate_limited",
        ),
        (502, None, "server"),
    ],
)
def test_parse_error(status, error, kind):
    body = json.dumps({"error": error}).encode() if error else b"<html>bad gateway</html>"
    err = parse_error(status, body, httpx.Headers())
    assert err.kind == kind and err.status == status
    if kind == "rate_limited":
        assert err.retry_after == 17.0


def test_parse_error_array_body_and_retry_header():
    body = json.dumps(
        [{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "see https://x.y/z"}}]
    )
    err = parse_error(429, body.encode(), httpx.Headers({"retry-after": "3"}))
    assert (err.kind, err.retry_after, err.message) == ("rate_limited", 3.0, "see [url]")


def test_unexpected_shapes_are_malformed():
    state = _StreamState(ChunkBuilder(model="s"))
    for data in (b"[1, 2]", b'{"candidates": [{"content": {"parts": ["text"]}}]}', b"{nope"):
        with pytest.raises(UpstreamError) as info:
            _feed(state, data)
        assert info.value.kind == "malformed"


def test_stream_error_object_raises():
    state = _StreamState(ChunkBuilder(model="s"))
    with pytest.raises(UpstreamError) as info:
        state.feed({"error": {"code": 503, "status": "UNAVAILABLE", "message": "overloaded"}})
    assert info.value.kind == "server" and info.value.status == 503
