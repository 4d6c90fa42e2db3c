"""Writing a streamed response's body straight to the client's transport, for a body that can do
its own writing (llm.providers.openai_relay: an OpenAI-compatible pass-through stream).

Only under uvicorn's httptools protocol, only once the response has started with chunked framing,
and only when the ASGI `send` the app was given is that protocol's own (no wrapper in between:
CORS, message logging). The writer frames each body part exactly as uvicorn's send would
(`%x\\r\\n<part>\\r\\n`), writes nothing once the client is gone, and waits while uvicorn's flow
control has paused writing. The response still ends through the ASGI send (gpuniq_site.fast_asgi),
so uvicorn's own state (response_complete, keep-alive) stays right. Anywhere else: no writer, and
the body's parts go through `send` as usual.
"""

from typing import Any

_Cycle: Any = None
try:
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as _Cycle
except ImportError:  # pragma: no cover - httptools missing: no direct writes, ever
    pass


class DirectSink:
    """Set on a streaming response (`response.direct_sink`): `body` is the body iterator that may
    write for itself; `writer` is set by the ASGI layer when it may (else it stays None)."""

    __slots__ = ("body", "writer")

    def __init__(self) -> None:
        self.body: Any = None
        self.writer: ChunkedWriter | None = None


class ChunkedWriter:
    """Chunked body parts straight to the client's transport (see the module docstring)."""

    __slots__ = ("cycle", "transport", "flow")

    def __init__(self, cycle: Any):
        self.cycle, self.transport, self.flow = cycle, cycle.transport, cycle.flow

    def write(self, part: bytes) -> None:
        """One part, one chunk; nothing when the client has gone (the ASGI layer then cancels)."""
        if part and not self.cycle.disconnected:
            self.transport.write(b"%x\r\n%b\r\n" % (len(part), part))

    def write_chunk(self, chunk: bytes) -> None:
        """A part already framed as one chunk (llm.providers.openai_relay's usual read)."""
        if not self.cycle.disconnected:
            self.transport.write(chunk)

    async def drain(self) -> None:
        """Wait while the transport's buffer is over its high-water mark, as uvicorn's send does."""
        if self.flow.write_paused and not self.cycle.disconnected:
            await self.flow.drain()


def _cycle_of(send: Any) -> Any:
    """uvicorn's httptools request cycle whose own `send` this is, or None."""
    cycle: Any = getattr(send, "__self__", None)
    if _Cycle is None or type(cycle) is not _Cycle or getattr(send, "__func__", None) is not _Cycle.send:
        return None
    return cycle


class _Held:
    """Stands in for the client's transport while send_together's messages are framed: what they
    write is kept, and a close (a response that ends a connection not kept alive) waits for it."""

    __slots__ = ("transport", "parts", "closed")

    def __init__(self, transport: Any):
        self.transport: Any = transport
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def is_closing(self) -> bool:
        return self.closed or bool(self.transport.is_closing())

    def close(self) -> None:
        self.closed = True


async def send_together(send: Any, messages: list[dict]) -> None:
    """Send ASGI messages (a stream's start and its first part, or a whole response's start and
    body): under uvicorn's httptools protocol their bytes, framed by uvicorn's send as ever, leave in
    one write instead of one each, and a close uvicorn asked for follows that write. Anywhere else:
    one send each."""
    cycle = _cycle_of(send)
    if cycle is None or cycle.disconnected:
        for message in messages:
            await send(message)
        return
    transport = cycle.transport
    held = cycle.transport = _Held(transport)
    try:
        for message in messages:
            await send(message)
    finally:
        cycle.transport = transport
        if held.parts and not cycle.disconnected:
            transport.write(b"".join(held.parts))
        if held.closed:
            transport.close()


def writer_for(send: Any) -> ChunkedWriter | None:
    """A writer for the response `send` has started, or None when its preconditions do not hold."""
    cycle = _cycle_of(send)
    if cycle is None:
        return None
    if not cycle.response_started or cycle.response_complete or cycle.chunked_encoding is not True:
        return None
    if cycle.scope.get("method") == "HEAD" or cycle.disconnected:
        return None
    return ChunkedWriter(cycle)


def attach(response: Any, send: Any) -> None:
    """Give the response's self-writing body a writer, if it has one and it is what gets sent
    (a view that wrapped the body, e.g. to record a chat turn, keeps the ordinary path)."""
    sink = getattr(response, "direct_sink", None)
    if sink is not None and sink.body is not None and getattr(response, "chunks", None) is sink.body:
        sink.writer = writer_for(send)
