"""OpenAI's own Responses API (POST /v1/responses), for requests that came in through the
Responses front door and are routed to OpenAI: the client's body goes to the vendor with only
`model` swapped (and the conversation already expanded by the front door), and the reply or the
typed event stream comes back as it is, with the model id swapped for our slug.

Billing reads `usage` of the final response object (response.completed / .incomplete / .failed)
and the length of the text and argument deltas, for a stream cut short.
Follows https://platform.openai.com/docs/api-reference/responses.
"""

import json
from collections.abc import AsyncGenerator

from ..upstreams import Upstream
from .base import SILENCE, ChatRequest, Route, StreamPiece, UpstreamError, Usage
from .http import post_json, post_stream, sse_data
from .openai_errors import parse_error
from .wire import TICK

_FINAL = {"response.completed", "response.incomplete", "response.failed"}
_DELTAS = {
    "response.output_text.delta",
    "response.function_call_arguments.delta",
    "response.reasoning_summary_text.delta",
    "response.reasoning_text.delta",
    "response.refusal.delta",
}


def usage_of(usage) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    cached = (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens") or 0
    return Usage(
        prompt_tokens=int(usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=int(cached),
        reasoning_tokens=int(reasoning),
    )


def _body(request: ChatRequest, route: Route, stream: bool) -> dict:
    """The client's body for the vendor. Without `max_output_tokens` OpenAI writes up to the
    model's own output limit; the gateway sends the limit its hold covers instead (the default the
    Chat Completions providers send too)."""
    assert request.responses_body is not None  # only a Responses request is forwarded as it is
    body = {**request.responses_body, "model": route.upstream_model}
    if body.get("max_output_tokens") is None and request.max_output_tokens:
        body["max_output_tokens"] = request.max_output_tokens
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    return body


async def complete(
    upstream: Upstream, headers: dict, request: ChatRequest, route: Route
) -> tuple[dict, Usage | None]:
    data = await post_json(
        upstream,
        "/responses",
        headers=headers,
        body=_body(request, route, False),
        first_byte=request.first_byte_timeout,
        error_parser=parse_error,
    )
    if not isinstance(data, dict) or data.get("object") != "response":
        raise UpstreamError("malformed", "the provider's reply is not a response object")
    data["model"] = request.slug
    return data, usage_of(data.get("usage"))


def _piece(data: bytes, slug: str, more: bool) -> StreamPiece:
    try:
        event = json.loads(data)
    except ValueError:
        raise UpstreamError("malformed", "the provider sent an unreadable stream event") from None
    kind = event.get("type") if isinstance(event, dict) else None
    if not isinstance(kind, str):
        raise UpstreamError("malformed", "the provider sent an event without a type")
    if kind == "error":
        raise UpstreamError("server", str(event.get("message") or "the provider reported an error"))
    usage = None
    response = event.get("response")
    if isinstance(response, dict):
        response["model"] = slug
        if kind in _FINAL:
            usage = usage_of(response.get("usage"))
        data = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    chars = len(event.get("delta") or "") if kind in _DELTAS and isinstance(event.get("delta"), str) else 0
    return StreamPiece(
        data=f"event: {kind}\ndata: ".encode() + data + b"\n\n",
        usage=usage,
        text_chars=chars,
        finish_reason=kind if kind in _FINAL else None,
        more=more,
    )


async def stream(
    upstream: Upstream, headers: dict, request: ChatRequest, route: Route
) -> AsyncGenerator[StreamPiece, None]:
    final = False
    async with post_stream(
        upstream,
        "/responses",
        headers=headers,
        body=_body(request, route, True),
        first_byte=request.first_byte_timeout,
        error_parser=parse_error,
    ) as response:
        async for data in sse_data(response):
            if data is TICK:
                yield SILENCE
                continue
            if data == b"[DONE]":
                break
            piece = _piece(data, request.slug, response.more)
            final = final or piece.finish_reason is not None
            yield piece
    if not final:
        raise UpstreamError("connect", "the stream ended before the response was complete")
