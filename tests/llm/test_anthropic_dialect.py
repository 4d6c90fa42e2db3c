"""The Anthropic dialect's translations on their own (no server): what a vendor receives for a
Messages body, what a client receives for a chat reply or chunk stream, and Anthropic error
types for every catalog code."""

import json
from decimal import Decimal

import pytest

from gpuniq_site.errors import CATALOG, ApiError, anthropic_error
from llm.catalog import ModelInfo, RouteInfo
from llm.dialects.anthropic_reply import StreamTranslator, message_from_chat
from llm.dialects.anthropic_request import to_chat
from llm.providers.base import Usage

ANTHROPIC_ERROR_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "billing_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
    "timeout_error",
}


def model(slug="gpt-x", vendor="openai", reasoning=False, provider="openai") -> ModelInfo:
    return ModelInfo(
        slug=slug,
        name=slug,
        vendor=vendor,
        kind="chat",
        category="chat",
        context_window=None,
        max_output=None,
        capabilities=(),
        reasoning=reasoning,
        first_byte_timeout=120,
        input_per_mtok=Decimal(1),
        output_per_mtok=Decimal(1),
        cached_input_per_mtok=None,
        per_image=None,
        per_video=None,
        video_options={},
        routes=(RouteInfo(provider, slug),),
    )


@pytest.mark.parametrize("code", sorted(CATALOG))
def test_every_catalog_code_has_an_anthropic_error_type(code):
    error = anthropic_error(ApiError(code))
    assert error["type"] in ANTHROPIC_ERROR_TYPES and error["code"] == code and error["message"]


def test_tool_results_come_first_with_their_images_after():
    body = {
        "model": "gpt-x",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "look"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t", "signature": "s"},
                    {"type": "text", "text": "calling"},
                    {"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {"a": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "bad"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"},
                            },
                        ],
                    },
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                    },
                    {"type": "text", "text": "and?"},
                ],
            },
        ],
    }
    messages = to_chat(body, model(), lenient=False)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "calling",
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "shot", "arguments": '{"a": 1}'}}
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: bad"}
    assert messages[3]["role"] == "user" and [p["type"] for p in messages[3]["content"]] == [
        "image_url",
        "file",
        "text",
    ]
    assert messages[3]["content"][0]["image_url"]["url"] == "data:image/jpeg;base64,AAAA"
    assert messages[3]["content"][1]["file"]["file_data"] == "data:application/pdf;base64,JVBE"


def test_thinking_budget_maps_to_effort_only_on_reasoning_models():
    body = {
        "model": "m",
        "max_tokens": 9000,
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "messages": [{"role": "user", "content": "x"}],
    }
    assert to_chat(body, model(reasoning=True), lenient=False)["reasoning_effort"] == "medium"
    assert "reasoning_effort" not in to_chat(body, model(reasoning=False), lenient=False)
    adaptive = {**body, "thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}
    assert to_chat(adaptive, model(reasoning=True), lenient=False)["reasoning_effort"] == "high"


def test_lenient_translation_keeps_cache_control_and_drops_server_tools():
    body = {
        "model": "c",
        "max_tokens": 5,
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "x"}],
    }
    out = to_chat(body, model(), lenient=True)
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}
    ]
    assert "tools" not in out
    with pytest.raises(ApiError) as caught:
        to_chat(body, model(), lenient=False)
    assert caught.value.code == "unsupported_parameter"


def test_a_chat_reply_becomes_a_message_with_anthropic_usage():
    reply = {
        "choices": [
            {
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "ok",
                    "reasoning_content": "hm",
                    "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": '{"x": 2}'}}],
                },
            }
        ]
    }
    message = message_from_chat(reply, Usage(prompt_tokens=10, completion_tokens=4, cached_tokens=3), "gpt-x")
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][2] == {"type": "tool_use", "id": "call_1", "name": "f", "input": {"x": 2}}
    assert message["stop_reason"] == "tool_use" and message["model"] == "gpt-x"
    assert message["usage"] == {
        "input_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 3,
        "output_tokens": 4,
    }


def _chunk(delta=None, finish=None, usage=None) -> bytes:
    obj = {"choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if usage is None else []}
    if usage:
        obj["usage"] = usage
    return b"data: " + json.dumps(obj).encode()


def test_a_chunk_stream_becomes_anthropic_events_with_parallel_tool_calls():
    translator = StreamTranslator("gpt-x", prompt_estimate=50)
    assert translator.feed(b": keep-alive") == [b": keep-alive\n\n"]  # before message_start: a comment
    events = []
    for raw in [
        _chunk({"role": "assistant", "content": "hi"}),
        b": keep-alive",  # after it: Anthropic's ping
        _chunk({"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "a", "arguments": ""}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":1}'}}]}),
        _chunk({"tool_calls": [{"index": 1, "id": "c1", "function": {"name": "b", "arguments": "{}"}}]}),
        _chunk(finish="tool_calls"),
        _chunk(usage={"prompt_tokens": 9, "completion_tokens": 5}),
        b"data: [DONE]",
    ]:
        for event in translator.feed(raw):
            name, data = event.decode().split("\n")[:2]
            events.append((name[7:], json.loads(data[6:])))
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "ping",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0][1]["message"]["usage"]["input_tokens"] == 50
    assert events[5][1]["content_block"] == {"type": "tool_use", "id": "c0", "name": "a", "input": {}}
    assert events[6][1] == {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"q":1}'},
    }
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert events[-2][1]["usage"] == {
        "input_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 5,
    }
