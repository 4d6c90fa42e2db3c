"""Anthropic Messages API (POST /v1/messages) behind the OpenAI Chat Completions interface.

Request: system/developer messages → `system`; user/assistant/tool messages → alternating
`messages` with content blocks (text, image, document, tool_use, tool_result); tools and
tool_choice; `response_format` → `output_config.format` on models with GA structured outputs
(Claude 4.5+), a forced `json_response` tool on older ones; `reasoning_effort` → adaptive
thinking + `output_config.effort` (Claude 4.6+) or a `budget_tokens` thinking budget (older).
Reply: text → content, thinking → reasoning_content, tool_use → tool_calls; streams are mapped
event by event into OpenAI chunks (see _StreamMapper).
"""

import json
import re
from collections.abc import AsyncGenerator
from typing import Any

from gpuniq_site.json_body import as_object

from ..upstreams import Upstream
from .base import (
    SILENCE,
    ChatRequest,
    ChunkBuilder,
    Route,
    StreamPiece,
    TranslatedPiece,
    UpstreamError,
    Usage,
    completion_object,
    text_of,
)
from . import anthropic_native
from .anthropic_api import API_VERSION, PATH, map_usage, parse_error
from .http import post_json, post_stream, scrub, sse_data
from .wire import TICK

DEFAULT_MAX_TOKENS = 4096
JSON_TOOL = "json_response"
JSON_OBJECT_INSTRUCTION = (
    "Respond only with a single valid JSON object. Do not add any text outside the JSON."
)
EFFORTS: dict[object, str] = {
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
_TOOL_CHOICES: dict[object, str] = {"required": "any", "none": "none"}  # OpenAI tool_choice strings
BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# keywords Anthropic's constrained decoding rejects (structured outputs / strict tools)
_UNSUPPORTED_SCHEMA = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "maxItems",
    "minProperties",
    "maxProperties",
    "uniqueItems",
)
_SCHEMA_MAPS = ("properties", "$defs", "definitions", "patternProperties")
_SCHEMA_VALUES = ("items", "prefixItems", "contains", "not", "anyOf", "oneOf", "allOf")
_VERSION = re.compile(r"claude-(?:[a-z]+-)?(\d+)(?:[-.](\d{1,2})(?!\d))?")


def model_version(model: str) -> tuple[int, int]:
    """(major, minor) of a Claude model id: claude-opus-4-7 → (4, 7), claude-3-5-haiku-… → (3, 5).
    Unknown names count as newest."""
    match = _VERSION.search(model or "")
    if not match:
        return (99, 0)
    return (int(match.group(1)), int(match.group(2) or 0))


# --- request: messages ------------------------------------------------------------------


def _tool_id(value) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", str(value or "call"))


def _tool_input(arguments) -> dict:
    try:
        parsed = (
            json.loads(arguments) if isinstance(arguments, str) and arguments.strip() else arguments or {}
        )
    except ValueError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def _media_block(url: str, kind: str) -> dict:
    """An image (or PDF) from a data URL or an http(s) URL."""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64" or not data:
            raise UpstreamError("bad_request", "image data URLs must be base64-encoded")
        if media_type == "application/pdf":
            kind = "document"
        return {"type": kind, "source": {"type": "base64", "media_type": media_type, "data": data}}
    if url.startswith(("https://", "http://")):
        return {"type": kind, "source": {"type": "url", "url": url}}
    raise UpstreamError("bad_request", "unsupported image URL: use a data URL or an https URL")


def _part_block(part) -> dict | None:
    if isinstance(part, str):
        return {"type": "text", "text": part} if part else None
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        block = {"type": "text", "text": part.get("text") or ""} if part.get("text") else None
    elif kind == "image_url":
        image = part.get("image_url")
        block = _media_block(str((image.get("url") if isinstance(image, dict) else image) or ""), "image")
    elif kind == "file" and str((part.get("file") or {}).get("file_data", "")).startswith("data:"):
        block = _media_block(part["file"]["file_data"], "document")
    else:
        raise UpstreamError("bad_request", f"content part type {kind!r} is not supported by this model")
    if block is not None and part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def _content_blocks(content) -> list[dict]:
    parts = [content] if isinstance(content, str) else (content or [])
    return [block for block in map(_part_block, parts) if block is not None]


def _assistant_blocks(message: dict) -> list[dict]:
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": text}] if (text := text_of(message.get("content"))) else []
    )
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": _tool_id(call.get("id")),
                "name": function.get("name") or "",
                "input": _tool_input(function.get("arguments")),
            }
        )
    return blocks


def _tool_result(message: dict) -> dict:
    content = message.get("content")
    return {
        "type": "tool_result",
        "tool_use_id": _tool_id(message.get("tool_call_id")),
        "content": _content_blocks(content) if isinstance(content, list) else str(content or ""),
    }


def map_messages(messages: list[dict]) -> tuple[str | list, list[dict]]:
    """OpenAI messages → (Anthropic `system`, alternating `messages`). Consecutive same-role
    messages merge; tool results go first in their user message, as Anthropic requires."""
    system: list[dict] = []
    out: list[dict] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system += [b for b in _content_blocks(message.get("content")) if b["type"] == "text"]
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message)]
        elif role == "assistant":
            blocks = _assistant_blocks(message)
        else:
            role, blocks = "user", _content_blocks(message.get("content"))
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for message in out:
        content = message["content"]
        message["content"] = [b for b in content if b["type"] == "tool_result"] + [
            b for b in content if b["type"] != "tool_result"
        ]
    if any("cache_control" in block for block in system):
        return system, out
    return "\n\n".join(block["text"] for block in system), out


# --- request: everything else -----------------------------------------------------------


def strict_schema(schema):
    """A JSON schema in the subset Anthropic's constrained decoding accepts: unsupported bounds
    dropped, closed objects. Only schema-valued keywords are walked (not enum/const/default)."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in _UNSUPPORTED_SCHEMA or (key == "minItems" and isinstance(value, int) and value > 1):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            value = {name: strict_schema(sub) for name, sub in value.items()}
        elif key in _SCHEMA_VALUES:
            value = strict_schema(value)
        out[key] = value
    if out.get("type") == "object" or "properties" in out:
        out["additionalProperties"] = False
    return out


def _map_tools(body: dict, out: dict, native: bool) -> None:
    tools = []
    for tool in body.get("tools") or ():
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not function:
            continue
        item = {
            "name": function.get("name") or "",
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            item["description"] = function["description"]
        if function.get("strict") and native:
            item["strict"], item["input_schema"] = True, strict_schema(item["input_schema"])
        tools.append(item)
    if not tools:
        return
    out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        mapped = {"type": "tool", "name": choice["function"]["name"]}
    else:  # a string; an object naming no function (allowed_tools, custom) leaves the choice to Claude
        mapped = {"type": _TOOL_CHOICES.get(choice, "auto") if isinstance(choice, str) else "auto"}
    if body.get("parallel_tool_calls") is False and mapped["type"] != "none":
        mapped["disable_parallel_tool_use"] = True
    if choice is not None or len(mapped) > 1:
        out["tool_choice"] = mapped


def _map_response_format(body: dict, out: dict, native: bool) -> bool:
    """Structured output; True when emulated with the forced JSON_TOOL."""
    response_format = body.get("response_format") or {}
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        system = out.get("system")
        out["system"] = (
            system + [{"type": "text", "text": JSON_OBJECT_INSTRUCTION}]
            if isinstance(system, list)
            else "\n\n".join(filter(None, [system, JSON_OBJECT_INSTRUCTION]))
        )
    if kind != "json_schema":
        return False
    schema = (response_format.get("json_schema") or {}).get("schema") or {"type": "object"}
    if native:
        out.setdefault("output_config", {})["format"] = {
            "type": "json_schema",
            "schema": strict_schema(schema),
        }
        return False
    out.setdefault("tools", []).append(
        {
            "name": JSON_TOOL,
            "input_schema": schema,
            "description": "Give the final answer as JSON matching this schema.",
        }
    )
    out["tool_choice"] = {"type": "tool", "name": JSON_TOOL}
    return True


def _thinking_allowed(out: dict) -> bool:
    """Forced tool choice excludes thinking; so does continuing a tool loop, whose assistant turn
    would have to start with the (signed) thinking block that OpenAI messages do not carry."""
    if (out.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return False
    last = out["messages"][-1] if out["messages"] else {}
    return not (last.get("role") == "user" and any(b["type"] == "tool_result" for b in last["content"]))


def _map_thinking(body: dict, out: dict, version: tuple[int, int]) -> None:
    thinking, effort = body.get("thinking"), EFFORTS.get(body.get("reasoning_effort"))
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        thinking = dict(thinking)
    elif effort:
        thinking = (
            {"type": "adaptive"}
            if version >= (4, 6)
            else {"type": "enabled", "budget_tokens": BUDGETS[effort]}
        )
    else:
        return
    if not _thinking_allowed(out):
        return
    if thinking["type"] == "enabled" and version >= (4, 7):
        thinking = {"type": "adaptive"}  # Opus 4.7 has no budget form
    if thinking["type"] == "adaptive":
        if effort:
            out.setdefault("output_config", {})["effort"] = effort
        if version >= (4, 7):
            thinking.setdefault("display", "summarized")  # Opus 4.7 omits thinking text by default
    else:
        budget = int(thinking.setdefault("budget_tokens", BUDGETS["medium"]))
        if budget >= out["max_tokens"]:
            out["max_tokens"] = budget + out["max_tokens"]
    out["thinking"] = thinking


def _map_sampling(body: dict, out: dict, version: tuple[int, int]) -> None:
    if version >= (4, 7):
        return  # Opus 4.7 rejects temperature / top_p / top_k
    temperature, top_p = body.get("temperature"), body.get("top_p")
    if "thinking" in out:  # thinking allows no temperature and top_p only in [0.95, 1]
        if isinstance(top_p, (int, float)) and top_p >= 0.95:
            out["top_p"] = top_p
    elif isinstance(temperature, (int, float)):  # Claude 4.x takes only one of the two
        out["temperature"] = max(0.0, min(float(temperature), 1.0))
    elif isinstance(top_p, (int, float)):
        out["top_p"] = top_p


def build_body(request: ChatRequest, route: Route, *, stream: bool) -> tuple[dict, bool]:
    """The Anthropic request body, and whether structured output is emulated with JSON_TOOL."""
    body = request.body
    if isinstance(body.get("n"), int) and body["n"] > 1:
        raise UpstreamError("bad_request", "n > 1 is not supported by this model")
    version = model_version(route.upstream_model)
    system, messages = map_messages(body.get("messages") or [])
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or request.max_output_tokens
    out = {
        "model": route.upstream_model,
        "messages": messages,
        "max_tokens": int(max_tokens or DEFAULT_MAX_TOKENS),
    }
    if system:
        out["system"] = system
    _map_tools(body, out, native=version >= (4, 5))
    json_tool = _map_response_format(body, out, native=version >= (4, 5))
    _map_thinking(body, out, version)
    _map_sampling(body, out, version)
    stop = body.get("stop")
    stop = [stop] if isinstance(stop, str) else stop
    if stop := [s for s in stop or () if isinstance(s, str) and s.strip()]:
        out["stop_sequences"] = stop
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])[:256]}
    if stream:
        out["stream"] = True
    return out, json_tool


# --- reply --------------------------------------------------------------------------------


def _finish_reason(stop_reason, json_tool: bool, has_calls: bool) -> str:
    if stop_reason == "tool_use" and json_tool and not has_calls:
        return "stop"
    return FINISH.get(stop_reason, "stop")


def map_message(data, slug: str, json_tool: bool = False) -> tuple[dict, Usage | None]:
    """An Anthropic Message → (OpenAI chat.completion, Usage)."""
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise UpstreamError("malformed", "the provider's reply has no content")
    text, reasoning, calls = [], [], []
    for block in data["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
        elif kind == "tool_use" and json_tool and block.get("name") == JSON_TOOL:
            text.append(json.dumps(block.get("input") or {}, ensure_ascii=False))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    usage = map_usage(data.get("usage"), len(message.get("reasoning_content") or ""))
    finish = _finish_reason(data.get("stop_reason"), json_tool, bool(calls))
    return completion_object(model=slug, message=message, finish_reason=finish, usage=usage), usage


class _StreamMapper:
    """Anthropic stream events → OpenAI chunk StreamPieces, one event at a time."""

    def __init__(self, slug: str, json_tool: bool):
        self.builder = ChunkBuilder(model=slug)
        self.json_tool = json_tool
        self.blocks: dict[int, tuple[str, int]] = {}  # Anthropic block index → (kind, tool call index)
        self.tool_calls = 0
        self.usage: dict = {}
        self.reasoning_chars = 0
        self.stop_reason = None
        self.done = False

    def _piece(
        self, delta: dict | None = None, finish_reason: str | None = None, chars: int = 0
    ) -> StreamPiece:
        chunk = self.builder.chunk(delta, finish_reason)
        return TranslatedPiece.of(chunk, text_chars=chars, finish_reason=finish_reason)

    def feed(self, data: bytes) -> list[StreamPiece]:
        try:
            event = json.loads(data)
            kind = event["type"]
        except (ValueError, KeyError, TypeError):
            raise UpstreamError("malformed", "the provider sent an unreadable stream event") from None
        if kind == "error":
            error = as_object(event.get("error"))
            raise UpstreamError(
                "overloaded" if error.get("type") == "overloaded_error" else "server",
                scrub(str(error.get("message") or "stream error")),
            )
        if kind == "message_start":
            self._add_usage((event.get("message") or {}).get("usage"))
            piece = self._piece({"role": "assistant", "content": ""})
            piece.partial_usage = map_usage(self.usage or None)
            return [piece]
        if kind == "content_block_start":
            return self._block_start(event.get("index"), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(event.get("index"), event.get("delta") or {})
        if kind == "message_delta":
            self.stop_reason = (event.get("delta") or {}).get("stop_reason") or self.stop_reason
            self._add_usage(event.get("usage"))
        elif kind == "message_stop":
            return self._finish()
        return []  # ping, content_block_stop, and event types added later

    def _add_usage(self, usage) -> None:
        if isinstance(usage, dict):
            self.usage.update((key, value) for key, value in usage.items() if value is not None)

    def _block_start(self, index, block: dict) -> list[StreamPiece]:
        kind = block.get("type")
        if kind == "tool_use" and self.json_tool and block.get("name") == JSON_TOOL:
            self.blocks[index] = ("json", 0)
        elif kind == "tool_use":
            self.blocks[index] = ("tool", self.tool_calls)
            self.tool_calls += 1
            call = {
                "index": self.blocks[index][1],
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._piece({"tool_calls": [call]})]
        elif kind in ("text", "thinking"):
            self.blocks[index] = (kind, 0)
            initial = block.get(kind) or ""
            if initial:
                return self._block_delta(index, {"type": f"{kind}_delta", kind: initial})
        return []

    def _block_delta(self, index, delta: dict) -> list[StreamPiece]:
        kind, tool_index = self.blocks.get(index, ("", 0))
        dtype = delta.get("type")
        if dtype == "text_delta" and (text := delta.get("text")):
            return [self._piece({"content": text}, chars=len(text))]
        if dtype == "thinking_delta" and (text := delta.get("thinking")):
            self.reasoning_chars += len(text)
            return [self._piece({"reasoning_content": text}, chars=len(text))]
        if dtype == "input_json_delta" and (text := delta.get("partial_json")):
            if kind == "json":
                return [self._piece({"content": text}, chars=len(text))]
            if kind == "tool":
                call = {"index": tool_index, "function": {"arguments": text}}
                return [self._piece({"tool_calls": [call]}, chars=len(text))]
        return []  # signature_delta, citations_delta, empty fragments

    def _finish(self) -> list[StreamPiece]:
        self.done = True
        has_calls = any(kind == "tool" for kind, _ in self.blocks.values())
        finish = _finish_reason(self.stop_reason, self.json_tool, has_calls)
        pieces = [self._piece({}, finish)]
        usage = map_usage(self.usage or None, self.reasoning_chars)
        if usage is not None:
            pieces.append(self.builder.usage_piece(usage))
        return pieces


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self._headers = {
            "x-api-key": upstream.api_key,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        }

    async def complete(self, request: ChatRequest, route: Route) -> tuple[dict, Usage | None]:
        if request.anthropic is not None:  # came in as Anthropic Messages: forward as sent
            return await anthropic_native.complete(self.upstream, request, route)
        body, json_tool = build_body(request, route, stream=False)
        data = await post_json(
            self.upstream,
            PATH,
            headers=self._headers,
            body=body,
            first_byte=request.first_byte_timeout,
            error_parser=parse_error,
        )
        return map_message(data, request.slug, json_tool)

    def stream(self, request: ChatRequest, route: Route) -> AsyncGenerator[StreamPiece, None]:
        if request.anthropic is not None:  # one generator, so closing it closes the vendor stream at once
            return anthropic_native.stream(self.upstream, request, route)
        return self._stream(request, route)

    async def _stream(self, request: ChatRequest, route: Route) -> AsyncGenerator[StreamPiece, None]:
        body, json_tool = build_body(request, route, stream=True)
        mapper = _StreamMapper(request.slug, json_tool)
        async with post_stream(
            self.upstream,
            PATH,
            headers=self._headers,
            body=body,
            first_byte=request.first_byte_timeout,
            error_parser=parse_error,
        ) as response:
            async for data in sse_data(response):
                if data is TICK:
                    yield SILENCE
                    continue
                for piece in mapper.feed(data):
                    yield piece
                if mapper.done:
                    return
        raise UpstreamError("connect", "stream cut off")
