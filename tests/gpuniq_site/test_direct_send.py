"""gpuniq_site.direct_send against uvicorn's own httptools request cycle: a stream's start and first
part leave in one write, framed exactly as uvicorn frames them, and the cycle's state and transport
are uvicorn's again afterwards (the direct writer attached then writes to the real transport)."""

import asyncio
import logging

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from gpuniq_site.direct_send import send_together, writer_for

START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
FIRST = {"type": "http.response.body", "body": b"data: first\n\n", "more_body": True}


class Transport:
    def __init__(self):
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def cycle(transport: Transport) -> RequestResponseCycle:
    scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    log = logging.getLogger("test")
    return RequestResponseCycle(
        scope,  # type: ignore[arg-type]
        transport,  # type: ignore[arg-type]
        FlowControl(transport),  # type: ignore[arg-type]
        log,
        log,
        False,
        [],
        asyncio.Event(),
        False,
        True,
        lambda: None,
    )


async def test_the_start_and_the_first_part_leave_in_one_write_as_uvicorn_frames_them():
    together, apart = Transport(), Transport()
    one, two = cycle(together), cycle(apart)
    await send_together(one.send, [START, FIRST])
    await two.send(START)
    await two.send(FIRST)

    assert len(together.writes) == 1 and len(apart.writes) == 2
    assert together.writes[0] == b"".join(apart.writes)
    assert together.writes[0].endswith(b"\r\n\r\nd\r\ndata: first\n\n\r\n")
    assert one.transport is together and one.response_started and one.chunked_encoding is True
    writer = writer_for(one.send)
    assert writer is not None and writer.transport is together
    writer.write(b"data: next\n\n")
    assert together.writes[1] == b"c\r\ndata: next\n\n\r\n"


async def test_a_send_that_is_not_uvicorns_own_gets_each_message():
    sent: list[dict] = []

    async def wrapped(message: dict) -> None:
        sent.append(message)

    await send_together(wrapped, [START, FIRST])
    assert sent == [START, FIRST]


async def test_nothing_is_written_once_the_client_is_gone():
    transport = Transport()
    gone = cycle(transport)
    gone.disconnected = True
    await send_together(gone.send, [START, FIRST])
    assert transport.writes == [] and gone.transport is transport


class ClosingTransport(Transport):
    def __init__(self):
        super().__init__()
        self.events: list[str] = []

    def write(self, data: bytes) -> None:
        super().write(data)
        self.events.append("write")

    def close(self) -> None:
        self.events.append("close")


WHOLE_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")],
}
WHOLE_BODY = {"type": "http.response.body", "body": b'{"ok":true}', "more_body": False}


async def test_a_whole_response_leaves_in_one_write_and_a_close_uvicorn_asks_for_follows_it():
    together, apart = ClosingTransport(), ClosingTransport()
    one, two = cycle(together), cycle(apart)
    one.keep_alive = two.keep_alive = False  # the client asked for connection: close
    await send_together(one.send, [WHOLE_START, WHOLE_BODY])
    await two.send(WHOLE_START)
    await two.send(WHOLE_BODY)

    assert apart.events == ["write", "write", "close"]
    assert together.events == ["write", "close"]  # the bytes leave before the connection closes
    assert together.writes[0] == b"".join(apart.writes)
    assert together.writes[0].endswith(b'content-length: 11\r\nconnection: close\r\n\r\n{"ok":true}')
    assert one.response_complete and one.transport is together
