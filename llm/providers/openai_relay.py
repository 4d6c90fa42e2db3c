"""The fused relay of an OpenAI-compatible pass-through stream: one loop per stream from the
vendor's socket to the client's.

The generic path hands each event through several generators (wire.Response.aiter_bytes,
http.sse_data, the provider's stream, llm.streaming's relay and body) and each client write
through the ASGI send. For the hot case — OpenAI-family vendors, whose bytes go out with only the
model id swapped — this loop does the same work in one place: read (through the stream's own
ticking read, so keep-alives and timers carry on), decode chunked (wire.Response), split SSE events
exactly as sse_data does, swap the model id and note billing facts exactly as the provider's
_piece and llm.streaming._relay do, and write the events of one read in one chunk straight to the
client (gpuniq_site.direct_send). llm.streaming hands a stream over only after its first read
went out the ordinary way, with no event of that read left, and only when a writer exists;
everything else keeps the generic path, which this mirrors event for event (tests/llm/
test_fused_relay.py checks both give the same bytes and the same bill).
"""

from collections.abc import Callable
from typing import Any

from gpuniq_site import metrics

from . import wire
from .base import KEEPALIVE, StreamPiece, UpstreamError
from .http import transport_error
from .relay_feed import DRAIN, Feed
from .sse import event_data, split_events
from .wire_body import TICK, ChunkedDecoder


class PassThrough:
    """What a pass-through stream offers a relay: its response (read up to the end of an SSE
    event boundary, the rest in `response.sse_rest`), the model swapper and the adapter's per-event
    functions (openai_compat's _piece and _without_null_usage)."""

    __slots__ = ("response", "swap", "include_usage", "piece", "strip_null_usage")

    def __init__(self, response, swap, include_usage: bool, piece: Callable, strip_null_usage: Callable):
        self.response, self.swap, self.include_usage = response, swap, include_usage
        self.piece, self.strip_null_usage = piece, strip_null_usage

    def ready(self) -> bool:
        """The response is still being read through its ticking read (keep-alives and idle timer)."""
        response = self.response
        return response.ticker is not None and not response.done and not response.ended


class Relay:
    """One stream's loop. `bill` is llm.chat.Bill (chars, partial, usage, usage_chunk, ttft_ms);
    `writer` a direct_send.ChunkedWriter; `started`/`last` llm.streaming's clocks (loop time) and
    `idle`/`total` its timeouts. run() returns at [DONE] and raises as the generic path does."""

    def __init__(self, stream: PassThrough, bill: Any, writer: Any, clock: Callable[[], float]):
        self.stream, self.bill, self.writer, self.clock = stream, bill, writer, clock
        self.started = self.last = self.idle = self.total = 0.0
        self.pending: list[bytes] = []
        self.buffer = b""  # an unfinished SSE event
        self.decoder = stream.response.chunked_decoder()  # its framing checks are the fast paths'
        self.ticker = stream.response.ticker  # set while the response is read with ticks (ready())

    async def run(self) -> None:
        try:
            if not await self._loop():
                raise UpstreamError("connect", "the stream ended without [DONE]")
        except Exception:
            self._flush()  # what the client has not got yet goes out before the error event
            raise
        self._flush()

    def _flush(self) -> None:
        """Write the pending events as one chunk."""
        pending = self.pending
        if pending:
            self.writer.write(pending[0] if len(pending) == 1 else b"".join(pending))
            pending.clear()

    async def _loop(self) -> bool:
        """Read until [DONE] (True) or the end of the body (False): fed by the vendor's transport
        when it can be handed over, else by awaiting each read."""
        self.buffer = self.stream.response.sse_rest
        fed = await self._fed()
        return fed if fed is not None else await self._read_loop()

    async def _fed(self) -> bool | None:
        """The relay with the vendor's reads delivered by its transport (relay_feed.Feed): this
        task only waits for the end, a keep-alive tick or a full client. None: not handed over."""
        response = self.stream.response
        feed = Feed(self)
        handed = response.hand_reads_to(feed)
        if handed is None:
            return None
        transport, original, unread = handed
        feed.transport, feed.original = transport, original
        metrics.FED_STREAMS.inc()
        ticker = response.ticker
        try:
            if unread:  # arrived while the first read went out: the feed's first read
                feed.data_received(unread)
            while True:
                outcome = await ticker.read(feed.wait)
                if outcome is TICK:
                    self._silence()
                elif outcome is DRAIN:
                    await self.writer.drain()
                    feed.resume()
                else:
                    return outcome
        finally:
            response.take_reads_back(transport, original)

    async def _read_loop(self) -> bool:
        response = self.stream.response
        ticker, read = response.ticker, response.read_some
        while not response.done:
            try:
                chunk = await ticker.read(read)
            except wire.WireError as exc:
                raise transport_error(exc) from None
            except wire.FAILURES as exc:
                raise transport_error(wire.wrap(exc)) from None
            if chunk is TICK:
                self._silence()
            elif chunk:
                if self._decoded(chunk):
                    return True
            else:
                continue
            if self.writer.flow.write_paused:
                await self.writer.drain()
        return self._rest()

    def received(self, data: bytes) -> bool | None:
        """One network read of the vendor's, from the transport feed: True at [DONE], False at
        the end of the body without it, None to carry on. Raises as a read of _read_loop would."""
        decoder = self.decoder
        if decoder is not None and not self.buffer and not self.pending:
            if self._one_chunk(decoder, data):
                return None
            payloads = decoder.whole_chunks(data)
            if payloads is not None:
                quick = self._usual(payloads)  # (pending)
                events: list[bytes] = []
                if quick < len(payloads):  # the rest, decoded as any read is (the body goes on)
                    events, self.buffer = split_events(b"", b"".join(payloads[quick:]))
                if events:  # the quick ones leave with them, as _events decides
                    return True if self._events(events) else None
                self._flush()  # the events of one read leave in one write
                return None
        response = self.stream.response
        chunk = response.feed(data)
        if chunk and self._decoded(chunk):
            return True
        return self._rest() if response.done else None

    def _one_chunk(self, decoder: ChunkedDecoder, data: bytes) -> bool:
        """The usual read of all, one whole chunk holding one ordinary content event like the last,
        in one pass: what whole_chunks, _usual and _flush do for it (openai_compat's
        like_last_chunk frames the client's chunk). False: not that read, nothing done."""
        start = decoder.one_chunk(data)
        if not start:
            return False
        now = self.clock()
        if now - self.started > self.total:  # _events raises the timeout
            return False
        try:
            known = self.stream.swap.like_last_chunk(data, start)
        except UnicodeDecodeError:
            return False
        if known is None:
            return False
        self.writer.write_chunk(known[0])
        self.ticker.last_event = self.last = now
        self.bill.chars += known[1]
        return True

    def _usual(self, payloads: list[bytes]) -> int:
        """The usual read, whole chunks: the leading ones that each hold one ordinary content event
        like the last (openai_compat's like_last) are noted and pending, exactly as _events would
        note them. Returns how many; the rest is decoded as any read is."""
        now = self.clock()
        if now - self.started > self.total:  # _events raises the timeout
            return 0
        stream, out, chars = self.stream, self.pending, 0
        for payload in payloads:
            if payload[:6] != b"data: " or payload[-2:] != b"\n\n":
                break
            data = payload[6:-2]
            if b"\n" in data or b"\r" in data or (not stream.include_usage and b'"usage":null' in data):
                break
            try:
                known = stream.swap.like_last(data)
            except UnicodeDecodeError:
                break
            if known is None:
                break
            out.append(known[0])
            chars += known[1]
        if out:
            self.ticker.last_event = self.last = now
            self.bill.chars += chars
        return len(out)

    def _decoded(self, chunk: bytes) -> bool:
        """Body bytes, decoded: their whole events relayed (True at [DONE]), the rest kept."""
        events, self.buffer = split_events(self.buffer, chunk)
        return bool(events) and self._events(events)  # (_events notes the event on the ticker)

    def eof(self) -> bool:
        """The vendor closed its side (transport feed): the end of a body that runs until then."""
        self.stream.response.feed_eof()
        return self._rest()

    def _rest(self) -> bool:
        """The body ended: an event without its closing blank line is still one (True: [DONE])."""
        buffer = self.buffer
        if buffer.strip():
            data = event_data(buffer.strip(b"\n"))
            if data is not None:
                return self._events([data])
        return False

    def _silence(self) -> None:
        """A keep-alive interval without an event: a keep-alive comment, or the stream timed out."""
        now = self.clock()
        if now - self.started > self.total or now - self.last > self.idle:
            raise UpstreamError("timeout", "the provider stopped sending")
        self.writer.write(KEEPALIVE)

    def _events(self, events: list[bytes]) -> bool:
        """The events of one read, as the provider's stream and llm.streaming._relay treat them:
        True at [DONE]. They leave in one write unless the last is a held-back usage chunk."""
        stream, bill, pending = self.stream, self.bill, self.pending
        swap, now, held = stream.swap, self.clock(), False
        self.ticker.last_event = now  # what saw_event() does, with the clock read once
        for data in events:
            if data == b"[DONE]":
                stream.response.ended = True
                return True
            if now - self.started > self.total:
                raise UpstreamError("timeout", "the provider stopped sending")
            self.last = now
            if not stream.include_usage and b'"usage":null' in data:
                data = stream.strip_null_usage(data)
            try:
                known = swap.like_last(data)  # the usual content event: its text is all that is new
            except UnicodeDecodeError:
                known = None
            if known is not None:
                pending.append(known[0])
                bill.chars += known[1]
                held = False
            else:
                held = self._piece(stream.piece(data, swap))
        if not held:
            self._flush()
        return False

    def _piece(self, piece: StreamPiece) -> bool:
        """Note an event the adapter parsed; True for the usage-only chunk, which is held back.
        (No ttft here: a stream is handed over only after its first event reached the client.)"""
        if self.bill.note(piece):
            return True
        self.pending.append(piece.data)
        return False
