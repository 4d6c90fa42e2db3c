"""The canonical reply (an OpenAI chat.completion, or its chunk stream) → Anthropic Messages.

Follows https://docs.claude.com/en/api/messages (the Message object) and
https://docs.claude.com/en/docs/build-with-claude/streaming (named events: message_start,
content_block_start / _delta (text_delta, thinking_delta, input_json_delta) / _stop,
message_delta with stop_reason and cumulative usage, message_stop, ping, error).

A reply that already is Anthropic's (a route to Anthropic itself, llm.providers.anthropic_native)
passes through: a Message dict as it is, stream events byte for byte.
"""

import json
from collections.abc import AsyncIterator
from json.encoder import encode_basestring
from typing import Any

from gpuniq_site.errors import ANTHROPIC_TYPES, CATALOG
from gpuniq_site.ids import unique_hex

from ..providers.base import Parsed, Usage, dumps, text_of

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
PING = b'event: ping\ndata: {"type":"ping"}\n\n'


def message_id() -> str:
    return "msg_" + unique_hex(96)


def usage_object(usage: Usage | None) -> dict:
    """Anthropic's usage: input_tokens excludes cache reads and writes, which are counted apart."""
    usage = usage or Usage()
    written = usage.cache_write_tokens + usage.cache_write_1h_tokens
    out: dict[str, Any] = {
        "input_tokens": max(usage.prompt_tokens - usage.cached_tokens - written, 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }
    if written:
        out["cache_creation"] = {
            "ephemeral_5m_input_tokens": usage.cache_write_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        }
    return out


def _tool_input(arguments) -> dict:
    try:
        value = json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def message_from_chat(response: dict, usage: Usage | None, slug: str) -> dict:
    """An OpenAI chat.completion → an Anthropic Message."""
    if response.get("type") == "message":  # Anthropic's own reply, forwarded
        return response
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if text := text_of(message.get("content")):
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "toolu_" + unique_hex(96),
                "name": function.get("name") or "",
                "input": _tool_input(function.get("arguments")),
            }
        )
    stop = STOP_REASONS.get(choice.get("finish_reason"), "end_turn")
    if any(block["type"] == "tool_use" for block in content):
        stop = "tool_use"
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": slug,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage_object(usage),
    }


def error_event(error: dict) -> bytes:
    """Our OpenAI-style error object (llm.streaming) → Anthropic's `event: error`."""
    spec = CATALOG.get(error.get("code") or "")
    kind = ANTHROPIC_TYPES.get(spec.status, "api_error") if spec else "api_error"
    body = {
        "type": "error",
        "error": {"type": kind, "message": error.get("message") or "", "code": error.get("code")},
    }
    return b"event: error\ndata: " + dumps(body) + b"\n\n"


def _event(obj: dict) -> bytes:
    return b"event: " + obj["type"].encode() + b"\ndata: " + dumps(obj) + b"\n\n"


_TEXT_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'


def text_delta(index: int, text: str) -> bytes:
    """_event() of a text block's content_block_delta, most of a reply's events, without building
    and encoding its dict: only the text is quoted (json's encode_basestring, as dumps does)."""
    quoted = encode_basestring(text).encode()
    return b"".join(
        (_TEXT_DELTA_HEAD, b"%d" % index, b',"delta":{"type":"text_delta","text":', quoted, b"}}\n\n")
    )


class StreamTranslator:
    """OpenAI chunk events (what llm.streaming sends) → Anthropic events. Anthropic's own events
    (a route to Anthropic) pass through; our [DONE] and usage chunk are then dropped."""

    def __init__(self, slug: str, prompt_estimate: int):
        self.slug, self.prompt_estimate = slug, prompt_estimate
        self.started = self.native = self.stopped = False
        self.block: str | None = None  # kind of the open content block
        self.index = -1
        self.tools: dict[int, int] = {}  # OpenAI tool call index → our block index
        self.stop_reason = "end_turn"
        self.usage: Usage | None = None

    def feed(self, event: bytes) -> list[bytes]:
        if event.startswith(b":"):  # our keep-alive: a ping once the message has started
            return [PING] if self.started else [event + b"\n\n"]  # message_start always comes first
        if event.startswith(b"event:"):
            self.native = self.started = True
            return [event + b"\n\n"]
        data = event[6:] if event.startswith(b"data: ") else event
        if data == b"[DONE]":
            return [] if self.native else self._finish()
        try:
            chunk = json.loads(data)
        except ValueError:
            return []
        if not isinstance(chunk, dict):
            return []
        return self.chunk(chunk)

    def chunk(self, chunk: dict) -> list[bytes]:
        """One OpenAI chunk, parsed (from feed, or as it came in a Parsed read)."""
        if "error" in chunk:
            return [error_event(chunk["error"] if isinstance(chunk["error"], dict) else {})]
        if self.native:
            return []  # the usage chunk llm.streaming adds: Anthropic's message_delta already has it
        out = self._start()
        if chunk.get("usage"):
            self.usage = Usage.from_openai(chunk["usage"])
        for choice in chunk.get("choices") or ():
            out += self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                out += self._close()
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")
        return out

    def _start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        message: dict[str, Any] = {
            "id": message_id(),
            "type": "message",
            "role": "assistant",
            "model": self.slug,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.prompt_estimate, "output_tokens": 0},
        }
        return [_event({"type": "message_start", "message": message})]

    def _open(self, kind: str, block: dict) -> list[bytes]:
        out = self._close()
        self.index += 1
        self.block = kind
        return out + [_event({"type": "content_block_start", "index": self.index, "content_block": block})]

    def _close(self) -> list[bytes]:
        if self.block is None:
            return []
        self.block = None
        return [_event({"type": "content_block_stop", "index": self.index})]

    def _delta(self, delta: dict) -> list[bytes]:
        out = []
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            if self.block != "thinking":
                out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            out.append(self._block_delta({"type": "thinking_delta", "thinking": reasoning}))
        if isinstance(delta.get("content"), str) and delta["content"]:
            if self.block != "text":
                out += self._open("text", {"type": "text", "text": ""})
            out.append(text_delta(self.index, delta["content"]))
        for call in delta.get("tool_calls") or ():
            out += self._tool_delta(call)
        return out

    def _tool_delta(self, call: dict) -> list[bytes]:
        out, position = [], call.get("index", 0)
        function = call.get("function") or {}
        if position not in self.tools:
            out += self._open(
                "tool_use",
                {
                    "type": "tool_use",
                    "id": call.get("id") or "toolu_" + unique_hex(96),
                    "name": function.get("name") or "",
                    "input": {},
                },
            )
            self.tools[position] = self.index
        if function.get("arguments") and self.tools[position] == self.index and self.block == "tool_use":
            out.append(self._block_delta({"type": "input_json_delta", "partial_json": function["arguments"]}))
        return out

    def _block_delta(self, delta: dict) -> bytes:
        return _event({"type": "content_block_delta", "index": self.index, "delta": delta})

    def _finish(self) -> list[bytes]:
        out = self._start() + self._close()
        if self.tools:
            self.stop_reason = "tool_use"
        usage = usage_object(self.usage) if self.usage else {"output_tokens": 0}
        out.append(
            _event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                    "usage": usage,
                }
            )
        )
        out.append(_event({"type": "message_stop"}))
        return out


async def anthropic_events(
    chunks: AsyncIterator[bytes], translator: StreamTranslator
) -> AsyncIterator[bytes]:
    """llm.streaming's body re-framed as Anthropic events; what arrived in one write leaves in one.
    A translated route's chunks come as dicts (start_stream's parsed mode): no bytes to parse."""
    async for part in chunks:
        if type(part) is Parsed:
            out = [event for chunk in part for event in translator.chunk(chunk)]
            if out:
                yield b"".join(out)
            continue
        if b"\r" in part:
            part = part.replace(b"\r\n", b"\n")
        out = []
        for event in part.split(b"\n\n"):
            if event.strip():
                out += translator.feed(event.strip(b"\n"))
        if out:
            yield b"".join(out)
