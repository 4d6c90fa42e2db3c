"""Pieces of llm.providers.wire's response body reading that have no socket of their own:
HTTP/1.1 chunked decoding fed from a buffer, and the ticking read of a stream."""

import asyncio
from collections.abc import Awaitable, Callable

_HEX = b"0123456789abcdefABCDEF"


class _Tick(bytes):
    pass


TICK = _Tick()  # what a ticking read returns when its interval passed with no event


class ChunkedDecoder:
    """Chunked transfer decoding of whatever has arrived: feed() bytes, take() the data found
    so far (maybe b""). Bad framing raises ValueError. `done` once the last chunk and trailer
    are in; `extra` when bytes followed the body (that connection cannot be trusted again).

    This runs on every network read of every stream: the usual read (whole chunks, nothing left
    over) is cut out of the bytes as they came, with no copy into a buffer first."""

    def __init__(self, line_limit: int):
        self.line_limit = line_limit
        self.buf = b""  # what arrived and is not decoded yet
        self.left = 0  # bytes of the current chunk's data still to come
        self.crlf = self.trailer = self.done = self.extra = False

    def feed(self, data: bytes) -> None:
        self.buf = self.buf + data if self.buf else data

    def one_chunk(self, data: bytes) -> int:
        """Where the chunk's data starts when `data` is exactly one whole chunk with data, arriving
        between chunks (the usual read of whole_chunks, told without cutting it out); 0 otherwise."""
        if self.buf or self.left or self.crlf or self.trailer or self.done:
            return 0
        end = data.find(b"\r\n", 0, 18)
        if end <= 0 or data[:end].strip(_HEX):
            return 0
        size = int(data[:end], 16)
        if size == 0 or size != len(data) - end - 4 or not data.endswith(b"\r\n"):
            return 0
        return end + 2

    def whole_chunks(self, data: bytes) -> list[bytes] | None:
        """The data of each chunk in `data` when it is exactly whole chunks with data, arriving
        between chunks with nothing buffered (the usual network read of a stream: one event's
        chunk, or a few when the reader fell behind): the decoder is then already in the state
        after them. None for anything else, which feed() and take() decode."""
        if self.buf or self.left or self.crlf or self.trailer or self.done or not data:
            return None
        out, pos, end_of_data = [], 0, len(data)
        while pos < end_of_data:
            end = data.find(b"\r\n", pos, pos + 18)
            if end <= pos:
                return None
            size = data[pos:end]
            if size.strip(_HEX):
                return None
            start = end + 2
            stop = start + int(size, 16)
            if stop == start or not data.startswith(b"\r\n", stop):
                return None
            out.append(data[start:stop])
            pos = stop + 2
        return out

    def take(self) -> bytes:
        buf, pos, out = self.buf, 0, []
        end_of_buf = len(buf)
        while not self.done and pos < end_of_buf:
            if self.left:  # inside a chunk's data
                take = min(self.left, end_of_buf - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self.left -= take
                self.crlf = not self.left
                continue
            if self.crlf:  # the CRLF after a chunk's data
                if end_of_buf - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise ValueError("malformed chunk")
                pos, self.crlf = pos + 2, False
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if end_of_buf - pos > self.line_limit:
                    raise ValueError("chunk size line too long")
                break
            line, pos = buf[pos:end], end + 2
            if self.trailer:  # trailer fields (ignored) up to an empty line
                self.done = not line
                continue
            size = line.split(b";", 1)[0].strip()
            if not size or size.strip(_HEX):
                raise ValueError("malformed chunk size")
            self.left = int(size, 16)
            self.trailer = not self.left
        self.buf = buf[pos:] if pos < end_of_buf else b""
        self.extra = self.done and bool(self.buf)
        return out[0] if len(out) == 1 else b"".join(out)


class Ticker:
    """A read that reports every `interval` seconds without an event (saw_event()) as TICK,
    without disturbing the read.

    The timer cancels the reading task only while it waits in read(), and read() turns that
    cancellation back into TICK (the way asyncio.timeout() does): the socket buffer and the
    decoding state are untouched, so the next read carries on. One timer per stream, re-armed
    only when it fires: an event costs a clock read, not timer work."""

    def __init__(self, interval: float):
        loop = self.loop = asyncio.get_running_loop()
        self.interval, self.clock = interval, loop.time
        self.last_event = loop.time()
        self.reading: asyncio.Task | None = None
        self.ticked, self.base = False, 0
        self.handle = loop.call_at(self.last_event + interval, self._fire)

    def saw_event(self) -> None:
        self.last_event = self.clock()

    def stop(self) -> None:
        self.handle.cancel()

    def _fire(self) -> None:
        now, due = self.clock(), self.last_event + self.interval
        if now >= due:
            if self.reading is not None and not self.ticked:
                self.ticked = True
                self.reading.cancel()
            self.last_event = now
            due = now + self.interval
        # an event came meanwhile: the next look is when its silence would be an interval long
        # (one interval later could miss every silence shorter than two intervals)
        self.handle = self.loop.call_at(due, self._fire)

    async def read(self, read: Callable[[], Awaitable[bytes]]) -> bytes:
        task = self.reading = asyncio.current_task(self.loop)  # with the loop: no getpid() per read
        assert task is not None  # a coroutine's read runs in a task
        # cancellations requested before this read: counted here, not when the timer fires, or a
        # real cancel that lands in the same loop iteration as a tick would be taken for the tick
        self.base = task.cancelling()
        try:
            return await read()
        except asyncio.CancelledError:
            if not self.ticked:
                raise
            self.ticked = False
            if task.uncancel() > self.base:  # cancelled for real as well
                raise
            return TICK
        finally:
            self.reading = None
