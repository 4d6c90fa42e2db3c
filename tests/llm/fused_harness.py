"""A vendor connection whose response arrives in exactly the reads a test chooses, and one stream
relayed over it by llm.streaming._relay, either the generic way or through the fused relay.

The vendor side is the real client (wire.post through the pool, wire.Response, http.sse_data, the
OpenAI-compatible provider): the test puts a connection in the pool whose reader it feeds itself,
one part per read (the next part only once the previous one was taken). The client side records
each chunk the way uvicorn's httptools protocol frames it, whether it came through the ASGI send
(a part the relay yielded) or was written straight to the transport (gpuniq_site.direct_send)."""

import array
import asyncio
import fcntl
import json
import socket
import termios
from dataclasses import dataclass, field
from types import SimpleNamespace

from uvicorn.protocols.http.flow_control import FlowControl

from gpuniq_site import metrics
from gpuniq_site.direct_send import ChunkedWriter, DirectSink
from llm.chat import Bill
from llm.gateway import OpenedStream
from llm.providers import openai_relay, wire
from llm.providers.base import SILENCE, ChatRequest, Route, UpstreamError
from llm.providers.openai_compat import OpenAICompatProvider
from llm.streaming import _relay
from llm.upstreams import Upstream

BASE = "http://vendor.test:8080/v1"
KEY = ("http", "vendor.test", 8080)
SLUG = "gpt-4o"
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def head_with_length(length: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % length


def chunked(body: bytes, cuts: list[int], terminated: bool = True) -> bytes:
    """`body` in HTTP chunks cut at `cuts`, with the last chunk (if `terminated`)."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(body)}), len(body)]
    out = b"".join(b"%x\r\n%b\r\n" % (b - a, body[a:b]) for a, b in zip(bounds, bounds[1:]) if b > a)
    return out + (b"0\r\n\r\n" if terminated else b"")


def reads_of(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


class Vendor:
    """A pooled connection to BASE whose response the test sends read by read, over a real
    socket pair (so the relay may take the reads from the transport itself, relay_feed)."""

    def __init__(self, head: bytes, reads: list[bytes], eof: bool = False):
        self.parts, self.eof = [head, *reads], eof
        self.resume = asyncio.Event()  # set by a test to release a part held with `None`
        self.sock = self.ours = self.reader = None

    async def open(self) -> None:
        self.ours, self.sock = socket.socketpair()
        self.reader, writer = await asyncio.open_connection(sock=self.ours, limit=wire.LINE_LIMIT)
        wire.pool().give(wire._Conn(KEY, self.reader, writer))

    def _unread(self) -> int:
        """Bytes sent and not yet taken: in the socket, or in the stream reader's buffer."""
        waiting = array.array("i", [0])
        fcntl.ioctl(self.ours.fileno(), termios.FIONREAD, waiting)
        return waiting[0] + len(self.reader._buffer)

    async def feed(self) -> None:
        """Each part in a read of its own: the next only once the previous was taken.
        A `None` part waits for `resume` (a vendor silent until the test says)."""
        for part in self.parts:
            if part is None:
                await self.resume.wait()
                continue
            self.sock.sendall(part)
            while self._unread():
                await asyncio.sleep(0)
        if self.eof:
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


class Transport:
    """uvicorn's transport as the writer sees it: what was written, in order."""

    def __init__(self, frames: list):
        self.frames = frames

    def write(self, data: bytes) -> None:
        self.frames.append(("direct", data))


@dataclass
class Outcome:
    frames: list = field(default_factory=list)  # (how, chunk as uvicorn frames it)
    bill: tuple = ()
    error: tuple | None = None
    fed: int = 0  # streams whose reads the vendor's transport delivered to the relay (relay_feed)
    pooled: int = 0  # connections back in the pool once the stream ended (its tail read)
    quick: int = 0  # events the relay's fast paths took (openai_relay.Relay._one_chunk and _usual)
    one_chunk: int = 0  # of those, reads of one whole chunk taken in one pass (Relay._one_chunk)

    @property
    def body(self) -> bytes:
        return b"".join(chunk for _, chunk in self.frames)

    @property
    def direct(self) -> int:
        return sum(how == "direct" for how, _ in self.frames)


def bill_facts(bill: Bill) -> tuple:
    chunk = json.dumps(bill.usage_chunk, sort_keys=True) if bill.usage_chunk is not None else None
    return bill.chars, bill.partial, bill.usage, chunk, bill.ttft_ms is not None


async def relay(
    vendor: Vendor,
    include_usage: bool,
    fused: bool,
    cycle=None,
    outcome: Outcome | None = None,
    late: bool = False,
) -> Outcome:
    """One stream over `vendor`, as llm.streaming relays it (fused: with a direct writer).
    `late`: the relay starts only once the vendor's next read waits in the stream reader, as when
    the request's wake-up after the opening takes a few turns of a busy event loop."""
    outcome = outcome or Outcome()
    await vendor.open()
    feeding = asyncio.ensure_future(vendor.feed())
    provider = OpenAICompatProvider(Upstream(family="openai", base_url=BASE, api_key="k"), "openai")
    body = {"model": SLUG, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    request = ChatRequest(body=body, slug=SLUG, stream=True, include_usage=include_usage)
    stream = provider.stream(request, Route("openai", "gpt-4o"))
    sink = DirectSink()
    if fused:
        cycle = cycle or SimpleNamespace(disconnected=False, flow=FlowControl(None))  # type: ignore[arg-type]
        cycle.transport = Transport(outcome.frames)
        sink.writer = ChunkedWriter(cycle)
    bill = Bill(SimpleNamespace(started=0.0))  # type: ignore[arg-type]
    fed = metrics.FED_STREAMS._value.get()
    usual, one_chunk = openai_relay.Relay._usual, openai_relay.Relay._one_chunk

    def counted(self, payloads: list[bytes]) -> int:
        taken = usual(self, payloads)
        outcome.quick += taken
        return taken

    def counted_one(self, decoder, data: bytes) -> bool:
        taken = one_chunk(self, decoder, data)
        outcome.quick += taken
        outcome.one_chunk += taken
        return taken

    openai_relay.Relay._usual = counted  # type: ignore[method-assign]
    openai_relay.Relay._one_chunk = counted_one  # type: ignore[method-assign]
    try:
        first = await anext(stream)
        while first is SILENCE:
            first = await anext(stream)
        opened = OpenedStream(Route("openai", "gpt-4o"), first, stream, 1)
        while late and not vendor.reader._buffer:
            await asyncio.sleep(0.001)
        async for part in _relay(bill, opened, sink):
            if part:
                outcome.frames.append(("send", b"%x\r\n%b\r\n" % (len(part), part)))
    except UpstreamError as exc:
        outcome.error = (exc.kind, str(exc))
    except StopAsyncIteration:
        outcome.error = ("empty", "")
    finally:
        await stream.aclose()
        if wire._draining:  # a finished stream's tail is read in the background (Response.release)
            await asyncio.wait(set(wire._draining), timeout=5)
        outcome.pooled = wire.pool().count
        outcome.fed = int(metrics.FED_STREAMS._value.get() - fed)
        openai_relay.Relay._usual, openai_relay.Relay._one_chunk = usual, one_chunk  # type: ignore[method-assign]
        feeding.cancel()
        vendor.close()
        await wire.close_pool()
    outcome.bill = bill_facts(bill)
    return outcome
