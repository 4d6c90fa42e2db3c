"""The SSE body of a streamed completion: pass pieces through, keep idle connections alive,
bill exactly once whatever happens (normal end, upstream failure mid-way, client gone)."""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

from django.conf import settings

from gpuniq_site.errors import error_body

from . import chat
from .gateway import OpenedStream, to_api_error
from .providers.base import SSE_DONE, StreamPiece, UpstreamError, dumps

log = logging.getLogger("gpuniq.streaming")
KEEPALIVE = b": keep-alive\n\n"
_background: set[asyncio.Task] = set()


def run_to_completion(coro) -> asyncio.Task:
    """Start work that must finish even if the request task is cancelled (client disconnect)."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


async def _pieces(opened: OpenedStream) -> AsyncIterator[StreamPiece]:
    yield opened.first
    async for piece in opened.rest:
        yield piece


async def with_keepalive(pieces: AsyncIterator[StreamPiece], *, interval: float, idle: float, total: float
                         ) -> AsyncIterator[StreamPiece | None]:
    """Yield pieces; None each time `interval` passes in silence. Raises UpstreamError("timeout")
    after `idle` seconds without a piece or `total` seconds in all.

    One task per stream reads the upstream into a small queue, and a watchdog timer (re-armed
    only when it fires, so a piece costs no timer work) drops keep-alive and timeout markers into
    the same queue. The upstream read itself is never cancelled by a timeout: that would break the
    provider's generator.
    """
    queue: asyncio.Queue = asyncio.Queue(maxsize=256)
    watch = _Watchdog(queue, interval=interval, idle=idle, total=total)
    pump = asyncio.ensure_future(_pump(pieces, queue, watch))
    try:
        while True:
            item = await queue.get()
            if item is _END:
                return
            if item is _KEEPALIVE:
                yield None
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:  # stop the upstream read before anyone closes the generators
        watch.stop()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


_END, _KEEPALIVE = object(), object()


class _Watchdog:
    def __init__(self, queue: asyncio.Queue, *, interval: float, idle: float, total: float):
        self.queue, self.interval, self.idle = queue, interval, idle
        self.loop = asyncio.get_running_loop()
        self.started = self.last = self.last_beat = self.loop.time()
        self.deadline = self.started + total
        self.handle = self.loop.call_at(self._next_check(), self._check)

    def _next_check(self) -> float:
        return min(self.last_beat + self.interval, self.last + self.idle, self.deadline)

    def saw_piece(self) -> None:
        self.last = self.last_beat = self.loop.time()

    def _check(self) -> None:
        now = self.loop.time()
        if now >= self.last + self.idle or now >= self.deadline:
            try:
                self.queue.put_nowait(UpstreamError("timeout", "the provider stopped sending"))
                return
            except asyncio.QueueFull:  # the client is behind, not the vendor: look again soon
                self.handle = self.loop.call_later(1.0, self._check)
                return
        if now >= self.last_beat + self.interval:
            self.last_beat = now
            if self.queue.empty():
                self.queue.put_nowait(_KEEPALIVE)
        self.handle = self.loop.call_at(self._next_check(), self._check)

    def stop(self) -> None:
        self.handle.cancel()


async def _pump(pieces: AsyncIterator[StreamPiece], queue: asyncio.Queue, watch: _Watchdog) -> None:
    try:
        async for piece in pieces:
            watch.saw_piece()
            await queue.put(piece)
    except Exception as exc:  # handed to the consumer, which raises it in the request's task
        await queue.put(exc)
        return
    await queue.put(_END)


def _usage_event(prepared: chat.Prepared, opened: OpenedStream, chunk: dict | None, usage, cost) -> bytes:
    if chunk is None:
        chunk = {"id": "chatcmpl-usage", "object": "chat.completion.chunk", "created": int(time.time()),
                 "model": prepared.request.slug, "choices": []}
    chunk["usage"] = {**usage.to_openai(), **(chunk.get("usage") or {}), "cost_usd": float(cost)}
    return b"data: " + dumps(chunk) + b"\n\n"


async def stream_body(prepared: chat.Prepared, opening: "asyncio.Future[OpenedStream]") -> AsyncIterator[bytes]:
    state = {"usage": None, "chars": 0, "ttft": None, "chunk": None, "route": None, "finished": False}
    opened: OpenedStream | None = None
    request = prepared.request
    try:
        while not opening.done():  # still choosing a route: keep the client's connection alive
            await asyncio.wait({opening}, timeout=settings.GPUNIQ_KEEPALIVE_SECONDS)
            if not opening.done():
                yield KEEPALIVE
        opened = opening.result()
        state["route"] = opened.route
        async for piece in with_keepalive(_pieces(opened), interval=settings.GPUNIQ_KEEPALIVE_SECONDS,
                                          idle=settings.GPUNIQ_STREAM_IDLE_TIMEOUT,
                                          total=settings.GPUNIQ_STREAM_TOTAL_TIMEOUT):
            if piece is None:
                yield KEEPALIVE
                continue
            state["chars"] += piece.text_chars
            if piece.usage is not None:
                state["usage"] = piece.usage
            if piece.usage_only:
                state["chunk"] = piece.chunk
                continue
            if state["ttft"] is None:
                state["ttft"] = int((time.perf_counter() - prepared.started) * 1000)
            yield piece.data
        usage = state["usage"] or chat.usage_from_text(prepared, state["chars"])
        state["finished"] = True
        settled = await chat.finish(prepared, usage=usage, route=opened.route, ttft_ms=state["ttft"])
        if request.include_usage:
            yield _usage_event(prepared, opened, state["chunk"], usage, settled.cost)
        yield SSE_DONE
    except Exception as exc:
        error = exc if not isinstance(exc, UpstreamError) else to_api_error(exc, request.slug)
        if not hasattr(error, "code"):
            raise
        if not state["finished"]:
            state["finished"] = True
            usage = state["usage"] or (chat.usage_from_text(prepared, state["chars"]) if state["chars"] else None)
            await chat.finish(prepared, usage=usage, route=state["route"], status="error", error_code=error.code,
                              ttft_ms=state["ttft"])
        yield b"data: " + json.dumps({"error": error_body(error)}).encode() + b"\n\n"
    finally:
        try:
            if opened is not None:
                await opened.aclose()  # closes the upstream connection at once
            elif not opening.done():
                opening.cancel()
        except Exception:
            log.exception("closing the upstream stream failed")
        if not state["finished"]:  # the client went away: pay for what was produced, nothing more
            usage = state["usage"] or (chat.usage_from_text(prepared, state["chars"]) if state["chars"] else None)
            await asyncio.shield(run_to_completion(chat.finish(
                prepared, usage=usage, route=state["route"], status="cancelled", error_code="client_disconnected",
                ttft_ms=state["ttft"])))
