"""Running one prepared chat completion, for every surface (OpenAI-compatible, native, chat
sessions, the web chat, the Anthropic and Responses doors): the non-streamed call, the opened
stream, and the native reply shape. Views render what these return; jobs call them too."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import cast

from django.conf import settings

from gpuniq_site import metrics
from gpuniq_site.direct_send import DirectSink
from gpuniq_site.responses import EventStreamResponse

from . import chat, gateway
from .providers.base import text_of
from .streaming import stream_body


def sandbox_headers(route) -> dict:
    return {"x-gpuniq-simulated": "true"} if is_sandbox(route) else {}


def is_sandbox(route) -> bool:
    from .upstreams import upstream_for

    upstream = upstream_for(route.provider)
    return bool(upstream and upstream.sandbox)


async def complete_once(prepared: chat.Prepared):
    """Non-streaming: the gateway call, then settle. Returns (response dict, usage, settled, route)."""
    async with chat.Bill(prepared, sent=True) as bill:
        done = await gateway.complete(prepared.request, prepared.model)
        usage = done.usage or chat.usage_from_text(prepared, chat.reply_chars(done.response))
        settled = await bill.settle(usage, route=done.route)
    prepared.upstream_seconds = done.upstream_seconds
    return done.response, usage, settled, done.route


async def start_stream(prepared: chat.Prepared, *, parsed: bool = False) -> EventStreamResponse:
    """Open the upstream stream; errors in the first moments still get a proper HTTP status.
    `parsed`: the body is for a front door, which takes translated chunks as dicts
    (llm.providers.base.Parsed) from `response.chunks` (Django's streaming_content would turn them
    into bytes of their repr); such a body is never sent as it is."""
    bill = chat.Bill(prepared, sent=True)
    loop = asyncio.get_running_loop()
    ready = loop.create_future()  # set by the opening itself, or by the keep-alive timer
    marks = metrics.stream_marks(prepared.started)  # the money was held as `prepared` was made
    opening = asyncio.ensure_future(_open(prepared, ready, marks))
    timer = loop.call_later(settings.GPUNIQ_KEEPALIVE_SECONDS, _set, ready)
    try:
        await ready
        if opening.done() and (failure := opening.exception()) is not None:
            raise failure
    except BaseException as error:
        opening.cancel()
        await bill.close(error)
        raise
    finally:
        timer.cancel()
    sink = DirectSink()
    body = stream_body(prepared, opening, bill, sink, parsed)
    response = EventStreamResponse(cast("AsyncIterator[bytes]", body))  # Parsed parts: a door's only
    sink.body = response.chunks  # gpuniq_site.fast_asgi gives it a writer if nothing wrapped the body
    response.direct_sink = sink
    if opening.done() and is_sandbox(opening.result().route):
        response["x-gpuniq-simulated"] = "true"
    return response


async def _open(
    prepared: chat.Prepared, ready: "asyncio.Future[None]", marks: metrics.StreamMarks
) -> gateway.OpenedStream:
    """The opening, which wakes start_stream in its own last step: awaiting the task (or
    asyncio.wait on it) would cost the waiter one or two more turns of a busy event loop."""
    try:
        opened = await gateway.open_stream(prepared.request, prepared.model)
        marks.opened = time.perf_counter()  # the vendor's first event is in
        return opened
    finally:
        _set(ready)


def _set(ready: "asyncio.Future[None]") -> None:
    if not ready.done():
        ready.set_result(None)


def overhead_header(request, prepared: chat.Prepared) -> dict:
    """Our own time on this request: everything but waiting on the vendor."""
    spent = time.perf_counter() - request.started_at - prepared.upstream_seconds
    return {"x-gpuniq-overhead-ms": f"{max(spent, 0) * 1000:.2f}"}


def native_reply(response: dict, usage, settled: chat.Settled, slug: str) -> dict:
    choice = (response.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    data = {
        "content": text_of(message.get("content")),
        "model": slug,
        "finish_reason": choice.get("finish_reason"),
        "tokens_used": usage.total_tokens,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_tokens": usage.cached_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
        "cost_usd": float(settled.cost),
        "balance_usd": float(settled.balance),
    }
    if message.get("reasoning_content"):
        data["reasoning_content"] = message["reasoning_content"]
    if message.get("tool_calls"):
        data["tool_calls"] = message["tool_calls"]
    return data
