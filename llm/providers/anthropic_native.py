"""Anthropic Messages as sent: the Anthropic front door's requests to Anthropic's own API.

When a request came in as Anthropic Messages (ChatRequest.anthropic), nothing is translated:
the client's body goes to POST /v1/messages with only `model` swapped for the vendor's id
(thinking blocks and their signatures, cache_control, betas and every other field intact), the
client's `anthropic-beta` / `anthropic-version` headers go along, and the reply comes back as
Anthropic's Message (model swapped back to our slug) or as Anthropic's named stream events,
relayed byte for byte except `message_start` (model swapped). Usage is read on the way for
billing, with the same mapping (anthropic_api.map_usage) as the Chat Completions path.
"""

import json
from collections.abc import AsyncGenerator

from gpuniq_site.json_body import as_object

from ..upstreams import Upstream
from .anthropic_api import API_VERSION, PATH, map_usage, parse_error
from .base import SILENCE, AnthropicOriginal, ChatRequest, Route, StreamPiece, UpstreamError, Usage, dumps
from .http import post_json, post_stream, scrub, sse_data
from .wire import TICK

COUNT_PATH = "/v1/messages/count_tokens"
# what the token-counting endpoint takes (it refuses max_tokens, stream, sampling fields)
COUNT_FIELDS = (
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
    "context_management",
    "output_config",
    "output_format",
)
_FORWARDED_HEADERS = ("anthropic-beta", "anthropic-version")
_DELTA_TEXT: dict[object, str] = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
}


def headers_for(upstream: Upstream, request: ChatRequest) -> dict:
    headers = {
        "x-api-key": upstream.api_key,
        "anthropic-version": API_VERSION,
        "content-type": "application/json",
    }
    for name in _FORWARDED_HEADERS:
        if value := _original(request).headers.get(name):
            headers[name] = value
    return headers


def _unsigned_thinking(block) -> bool:
    """A thinking block another vendor's reply produced (no signature): Anthropic would refuse it."""
    return isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature")


def forward_body(request: ChatRequest, route: Route, *, stream: bool) -> dict:
    body = {**_original(request).body, "model": route.upstream_model}
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    messages = body.get("messages")
    if isinstance(messages, list) and any(
        isinstance(m, dict)
        and isinstance(m.get("content"), list)
        and any(map(_unsigned_thinking, m["content"]))
        for m in messages
    ):
        body["messages"] = [
            {**m, "content": [b for b in m["content"] if not _unsigned_thinking(b)]}
            if isinstance(m, dict) and isinstance(m.get("content"), list)
            else m
            for m in messages
        ]
    return body


def _original(request: ChatRequest) -> AnthropicOriginal:
    """The request as the client sent it to /v1/messages: this module forwards nothing else."""
    if request.anthropic is None:
        raise ValueError("only a request that came in on Anthropic's surface is forwarded as it is")
    return request.anthropic


def _path(request: ChatRequest, path: str = PATH) -> str:
    return path + "?beta=true" if _original(request).beta else path


def _thinking_chars(content) -> int:
    return sum(len(b.get("thinking") or "") for b in content or () if isinstance(b, dict))


async def complete(upstream: Upstream, request: ChatRequest, route: Route) -> tuple[dict, Usage | None]:
    """The vendor's Message, `model` set to our slug, and its Usage."""
    data = await post_json(
        upstream,
        _path(request),
        headers=headers_for(upstream, request),
        body=forward_body(request, route, stream=False),
        first_byte=request.first_byte_timeout,
        error_parser=parse_error,
    )
    if (
        not isinstance(data, dict)
        or data.get("type") != "message"
        or not isinstance(data.get("content"), list)
    ):
        raise UpstreamError("malformed", "the provider's reply is not a Message")
    data["model"] = request.slug
    return data, map_usage(data.get("usage"), _thinking_chars(data["content"]))


class _Relay:
    """Anthropic stream events → StreamPieces carrying the same event, noting usage for billing."""

    def __init__(self, slug: str):
        self.slug = slug
        self.usage: dict = {}
        self.reasoning_chars = 0
        self.done = False

    def piece(self, data: bytes, more: bool) -> StreamPiece:
        try:
            event = json.loads(data)
            kind = event["type"]
        except (ValueError, KeyError, TypeError):
            raise UpstreamError("malformed", "the provider sent an unreadable stream event") from None
        usage, partial, chars = None, None, 0
        if kind == "error":
            error = as_object(event.get("error"))
            raise UpstreamError(
                "overloaded" if error.get("type") == "overloaded_error" else "server",
                scrub(str(error.get("message") or "stream error")),
            )
        if kind == "message_start":
            message = event.get("message") or {}
            self._add_usage(message.get("usage"))
            event["message"] = {**message, "model": self.slug}
            data = dumps(event)
            partial = map_usage(self.usage)  # the prompt as Anthropic counted it: what a cut stream bills
        elif kind == "content_block_delta":
            delta = event.get("delta") or {}
            chars = len(delta.get(_DELTA_TEXT.get(delta.get("type"), ""), "") or "")
            if delta.get("type") == "thinking_delta":
                self.reasoning_chars += chars
        elif kind == "message_delta":
            self._add_usage(event.get("usage"))
            usage = map_usage(self.usage, self.reasoning_chars)
        elif kind == "message_stop":
            self.done = True
        return StreamPiece(
            data=b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n",
            usage=usage,
            text_chars=chars,
            more=more and not self.done,
            partial_usage=partial,
        )

    def _add_usage(self, usage) -> None:
        if isinstance(usage, dict):
            self.usage.update((key, value) for key, value in usage.items() if value is not None)


async def stream(upstream: Upstream, request: ChatRequest, route: Route) -> AsyncGenerator[StreamPiece, None]:
    relay = _Relay(request.slug)
    async with post_stream(
        upstream,
        _path(request),
        headers=headers_for(upstream, request),
        body=forward_body(request, route, stream=True),
        first_byte=request.first_byte_timeout,
        error_parser=parse_error,
    ) as response:
        async for data in sse_data(response):
            if data is TICK:
                yield SILENCE
                continue
            yield relay.piece(data, response.more)
            if relay.done:
                return
    raise UpstreamError("connect", "stream cut off")


async def count_tokens(upstream: Upstream, request: ChatRequest, route: Route) -> int:
    """Anthropic's own count for the request (free at the vendor, as here)."""
    body = {key: value for key, value in _original(request).body.items() if key in COUNT_FIELDS}
    body["model"] = route.upstream_model
    data = await post_json(
        upstream,
        _path(request, COUNT_PATH),
        headers=headers_for(upstream, request),
        body=body,
        first_byte=request.first_byte_timeout,
        error_parser=parse_error,
    )
    tokens = data.get("input_tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        raise UpstreamError("malformed", "the provider's count has no input_tokens")
    return tokens
