"""The SSE body of a streamed completion: pass pieces through, keep idle connections alive,
bill exactly once whatever happens (normal end, upstream failure mid-way, client gone).

One task per stream reads the vendor and writes the client. Keep-alives and the idle timeout
need no second task: the vendor read itself reports each keep-alive interval of silence
(SILENCE, from wire.Response's ticking read), and the total deadline is checked per piece."""

import asyncio
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator

from django.conf import settings

from gpuniq_site.direct_send import DirectSink
from gpuniq_site import metrics
from gpuniq_site.errors import ApiError, error_body
from gpuniq_site.responses import LastPart

from . import chat
from .gateway import OpenedStream, to_api_error
from .providers.openai_relay import Relay
from .providers.base import (
    KEEPALIVE,
    SILENCE,
    SSE_DONE,
    Parsed,
    StreamPiece,
    TranslatedPiece,
    UpstreamError,
    dumps,
)

log = logging.getLogger("gpuniq.streaming")
__all__ = ["KEEPALIVE", "stream_body"]


async def _pieces(opened: OpenedStream) -> AsyncGenerator[StreamPiece, None]:
    yield opened.first
    async for piece in opened.rest:
        yield piece


def _usage_event(prepared: chat.Prepared, opened: OpenedStream, chunk: dict | None, usage, cost) -> bytes:
    if chunk is None:
        chunk = {
            "id": "chatcmpl-usage",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": prepared.request.slug,
            "choices": [],
        }
    chunk["usage"] = {**usage.to_openai(), **(chunk.get("usage") or {}), "cost_usd": float(cost)}
    return b"data: " + dumps(chunk) + b"\n\n"


def _together(pending: list[StreamPiece], parsed: bool) -> "bytes | Parsed":
    if parsed and all(type(piece) is TranslatedPiece for piece in pending):
        return Parsed([piece.chunk for piece in pending])
    return pending[0].data if len(pending) == 1 else b"".join([piece.data for piece in pending])


async def _relay(
    bill: chat.Bill, opened: OpenedStream, sink: DirectSink | None = None, parsed: bool = False
) -> AsyncIterator["bytes | Parsed"]:
    """The vendor's events for the client, noting usage and text on the bill. Events that arrived
    together (one network read) leave together, in one write. With a writer in `sink`, a
    pass-through stream is handed to the fused relay once its first read has gone out.
    `parsed`: a read whose events are all translated chunks goes out as Parsed, not bytes."""
    prepared = bill.prepared
    clock = asyncio.get_running_loop().time
    last = started = clock()
    idle, total = settings.GPUNIQ_STREAM_IDLE_TIMEOUT, settings.GPUNIQ_STREAM_TOTAL_TIMEOUT
    pending: list[StreamPiece] = []
    fused: Relay | None = None
    checked = False  # for a fused relay: once the first part has gone out, and the writer with it
    pieces = _pieces(opened)
    try:
        async for piece in pieces:
            now = clock()
            if now - started > total or (piece is SILENCE and now - last > idle):
                raise UpstreamError("timeout", "the provider stopped sending")
            if piece is SILENCE:  # a keep-alive interval of vendor silence (see wire.Response)
                yield KEEPALIVE
                continue
            last = now
            if bill.note(piece):  # the usage-only chunk: held back
                continue
            if bill.ttft_ms is None:
                bill.ttft_ms = int((time.perf_counter() - prepared.started) * 1000)
            pending.append(piece)
            if not piece.more:
                yield _together(pending, parsed)
                pending.clear()
                if not checked:
                    fused, checked = _fused(opened, bill, sink, clock), True
                if fused is not None and fused.stream.ready():  # nothing of this read is left
                    fused.started, fused.last, fused.idle, fused.total = started, last, idle, total
                    metrics.FUSED_STREAMS.inc()
                    await pieces.aclose()  # not left to the loop's finalizer: the stream is ours now
                    await fused.run()
                    return
    except Exception:
        if pending:  # what the client has not got yet goes out before the error event
            yield _together(pending, parsed)
        raise
    if pending:
        yield _together(pending, parsed)


def _fused(opened: OpenedStream, bill: chat.Bill, sink: DirectSink | None, clock) -> Relay | None:
    """The fused relay for this stream, if its provider offers one and the client has a writer."""
    stream = opened.first.relay
    if stream is None or sink is None or sink.writer is None or not settings.GPUNIQ_STREAM_FUSED_RELAY:
        return None
    return Relay(stream, bill, sink.writer, clock)


async def stream_body(
    prepared: chat.Prepared,
    opening: "asyncio.Future[OpenedStream]",
    bill: chat.Bill | None = None,
    sink: DirectSink | None = None,
    parsed: bool = False,
) -> AsyncIterator["bytes | Parsed"]:
    """The client's SSE body. The bill closes the hold once whatever happens: settled at the end,
    failed with what reached the client, or (client gone) the prompt and the output so far.
    `sink`: where the ASGI layer may put a direct writer to the client (the fused relay's).
    `parsed`: for a front door that renders chat chunks in its own dialect, the translated
    chunks of a read come as one Parsed list instead of OpenAI bytes (everything else as ever)."""
    bill = bill or chat.Bill(prepared, sent=True)
    opened: OpenedStream | None = None
    request = prepared.request
    async with bill:
        try:
            while not opening.done():  # still choosing a route: keep the client's connection alive
                await asyncio.wait({opening}, timeout=settings.GPUNIQ_KEEPALIVE_SECONDS)
                if not opening.done():
                    yield KEEPALIVE
            opened = opening.result()
            bill.route = opened.route
            async for part in _relay(bill, opened, sink, parsed):
                yield part
            usage = bill.produced()
            settled = await bill.settle(usage)
            if request.include_usage:
                yield _usage_event(prepared, opened, bill.usage_chunk, usage, settled.cost)
            yield LastPart(SSE_DONE)  # on its own: chat sessions store the turn when they see it
        except Exception as exc:
            error = exc if not isinstance(exc, UpstreamError) else to_api_error(exc, request.slug)
            if not isinstance(error, ApiError):
                raise
            await bill.fail(error.code)  # nothing delivered: nothing charged
            yield b"data: " + json.dumps({"error": error_body(error)}).encode() + b"\n\n"
        finally:
            try:
                if opened is not None:
                    await opened.aclose()  # closes the upstream connection at once
                elif not opening.done():
                    opening.cancel()
            except Exception:
                log.exception("closing the upstream stream failed")
