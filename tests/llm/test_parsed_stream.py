"""The Responses and Messages doors take a translated stream as chunk dicts (llm.streaming's parsed
mode): the client gets the same bytes as when the chunks were rendered as OpenAI SSE and parsed
back, and the OpenAI rendering is never made. The pieces come from the Anthropic adapter's own mapper fed
with Anthropic's documented stream events (thinking, text, a tool call, the end)."""

import json
import re

import pytest

from llm.dialects.anthropic_reply import StreamTranslator, anthropic_events
from llm.front.responses import reply
from llm.front.responses.events import ResponseEvents
from llm.front.responses.relay import Relay
from llm.providers.anthropic import _StreamMapper
from llm.providers.base import UNRENDERED, Parsed, StreamPiece, sse
from llm.streaming import _together

ANTHROPIC_EVENTS = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [],
            "usage": {"input_tokens": 12, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "think."}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Héllo, "}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "wörld \u2603"}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    },
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
    },
    {
        "type": "content_block_delta",
        "index": 2,
        "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'},
    },
    {"type": "content_block_stop", "index": 2},
    {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 30}},
    {"type": "message_stop"},
]
USAGE = {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42, "cost_usd": 0.0001}
USAGE_EVENT = sse({"id": "x", "object": "chat.completion.chunk", "choices": [], "usage": USAGE})


def translated_reads(group: int) -> list[list[StreamPiece]]:
    """The adapter's pieces for ANTHROPIC_EVENTS (the usage-only piece held back, as the bill
    does), `group` pieces to a network read."""
    mapper = _StreamMapper("claude-haiku-4-5", json_tool=False)
    pieces = [p for event in ANTHROPIC_EVENTS for p in mapper.feed(json.dumps(event).encode())]
    shown = [p for p in pieces if not p.usage_only]
    assert all(p.chunk is not None for p in shown)
    return [shown[i : i + group] for i in range(0, len(shown), group)]


def numbered(stream: bytes) -> bytes:
    """The stream with the item ids it made up (random) numbered in order of appearance."""
    ids: dict[bytes, bytes] = {}
    return re.sub(
        rb"\b(?:msg|rs|fc)_[0-9a-f]{16,}", lambda m: ids.setdefault(m[0], b"id%d" % len(ids)), stream
    )


async def relayed(parts: list) -> bytes:
    async def body():
        for part in parts:
            yield part

    shell = reply.shell(
        {"model": "claude-haiku-4-5"},
        response_id="resp_1",
        slug="claude-haiku-4-5",
        status="in_progress",
        created_at=1,
    )
    done: list[dict] = []

    async def on_done(response: dict) -> None:
        done.append(response)

    out = b"".join([part async for part in Relay(ResponseEvents(shell), on_done).run(body())])
    assert len(done) == 1
    return numbered(out)


async def both_ways(door, group: int) -> tuple[bytes, bytes]:
    """What `door` sends its client for the reads rendered as OpenAI bytes, then as Parsed (whose
    pieces are checked never to have been rendered)."""
    tail = [USAGE_EVENT, b"data: [DONE]\n\n"]
    rendered = await door([_together(read, parsed=False) for read in translated_reads(group)] + tail)
    reads = translated_reads(group)
    parsed = await door([_together(read, parsed=True) for read in reads] + tail)
    assert all(piece.__dict__["_data"] is UNRENDERED for read in reads for piece in read)
    return rendered, parsed


@pytest.mark.parametrize("group", [1, 2, 5])
async def test_a_parsed_stream_reaches_the_client_as_the_rendered_one_does(group):
    rendered, parsed = await both_ways(relayed, group)

    assert parsed == rendered
    assert (
        b"response.reasoning_summary_text.delta" in parsed
        and b"response.function_call_arguments.done" in parsed
    )
    assert "wörld ☃".encode() in parsed and b'"total_tokens":42' in parsed


def test_a_read_with_a_pass_through_event_goes_out_as_bytes():
    [[translated, *_]] = translated_reads(100)
    passed = StreamPiece(data=b'data: {"choices":[]}\n\n')  # an OpenAI-compatible vendor's own bytes
    assert type(_together([translated], parsed=True)) is Parsed
    assert _together([translated, passed], parsed=True) == sse(translated.chunk) + passed.data


def test_a_translated_piece_renders_its_chunk_once_when_read():
    [[piece, *_]] = translated_reads(100)
    assert piece.data == sse(piece.chunk) and piece.data is piece.data


async def messages_door(parts: list) -> bytes:
    async def body():
        for part in parts:
            yield part

    translator = StreamTranslator("gemini-2.5-flash", prompt_estimate=12)
    return numbered(b"".join([part async for part in anthropic_events(body(), translator)]))


@pytest.mark.parametrize("group", [1, 3])
async def test_the_messages_door_gets_the_same_events_from_a_parsed_stream(group):
    rendered, parsed = await both_ways(messages_door, group)

    assert parsed == rendered
    assert b"event: message_start" in parsed and b'"type":"thinking_delta"' in parsed
    assert b'"partial_json":"\\"Oslo\\"}"' in parsed and b'"stop_reason":"tool_use"' in parsed
    assert b"event: message_stop" in parsed
