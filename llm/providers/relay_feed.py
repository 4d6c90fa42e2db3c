"""The vendor's transport delivering straight into the fused relay (llm.providers.openai_relay).

While a pass-through stream is relayed, each network read of the vendor's connection is decoded,
split into events, swapped and written to the client inside the transport's own callback
(data_received): no stream reader buffer, no future and no task step per read. The relay's task
only waits for the end: [DONE], the end of the body, an error, a client that needs draining, or
a keep-alive tick (the stream's Ticker cancels the wait as it cancels a read).

Anything that arrives once the feed has its outcome (the chunked body's terminator after [DONE])
goes to the stream reader, as it would have without the feed; the relay gives the transport back
to the reader when it ends, so the connection's tail is read and the connection pooled as before.
"""

import asyncio
from typing import Any

from . import wire
from .http import transport_error

DRAIN = object()  # the feed's outcome when the client's transport is full: reading paused


class Feed(asyncio.Protocol):
    """One stream's reads for `relay` (an openai_relay.Relay: its received() and eof()) on
    `transport`, whose previous protocol (the stream reader's) is `original` (both known once the
    transport was handed over: wire.Response.hand_reads_to)."""

    def __init__(self, relay: Any, transport: Any = None, original: Any = None):
        self.relay, self.transport, self.original = relay, transport, original
        self.outcome: Any = None  # True ([DONE]), False (body ended without it), DRAIN
        self.error: BaseException | None = None
        self.waiter: asyncio.Future | None = None

    async def wait(self) -> Any:
        """The next outcome (raises the feed's error). A tick may cancel this wait: the outcome
        is kept for the next one."""
        if self.outcome is None and self.error is None:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        if self.error is not None:
            raise self.error
        outcome = self.outcome
        if outcome is DRAIN:
            self.outcome = None
        return outcome

    def resume(self) -> None:
        """The client's transport drained: reads carry on."""
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def _end(self, outcome: Any = None, error: BaseException | None = None) -> None:
        self.outcome, self.error = outcome, error
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _ended(self) -> bool:
        return self.error is not None or (self.outcome is not None and self.outcome is not DRAIN)

    def data_received(self, data: bytes) -> None:
        outcome = self.outcome  # self._ended(), inline: this runs on every read of every stream
        if self.error is not None or (outcome is not None and outcome is not DRAIN):
            self.original.data_received(data)  # the stream is over: the tail is the stream reader's
            return
        try:
            outcome = self.relay.received(data)
        except wire.WireError as exc:
            self._end(error=transport_error(exc))
        except wire.FAILURES as exc:
            self._end(error=transport_error(wire.wrap(exc)))
        except Exception as exc:  # the relay's own (UpstreamError): raised in the relay's task
            self._end(error=exc)
        else:
            if outcome is not None:
                self._end(outcome)
            elif self.relay.writer.flow.write_paused:
                self.transport.pause_reading()
                self._end(DRAIN)

    def eof_received(self) -> bool | None:
        if self._ended():
            return self.original.eof_received()
        try:
            self._end(self.relay.eof())
        except wire.WireError as exc:
            self._end(error=transport_error(exc))
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.original.connection_lost(exc)
        if not self._ended():
            error = wire.wrap(exc) if exc is not None else wire.WireError("connection closed mid-body")
            self._end(error=transport_error(error))

    def pause_writing(self) -> None:  # the request went out before the feed: the reader's concern
        self.original.pause_writing()

    def resume_writing(self) -> None:
        self.original.resume_writing()
