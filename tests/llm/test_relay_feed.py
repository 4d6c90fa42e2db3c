"""The transport feed's own contract (llm.providers.relay_feed.Feed), on a real socket pair and
the stream reader's real protocol: what arrives once the stream has its outcome stays the
reader's (the chunked terminator after [DONE], so the connection can be pooled), a lost
connection fails the stream and reaches the reader too, and a keep-alive tick that interrupts the
wait loses no outcome. The relay side is a recorder of the reads it is given; the whole path is
in test_fused_relay.py and test_fused_relay_live.py."""

import asyncio
import socket
from types import SimpleNamespace

import pytest

from llm.providers import wire
from llm.providers.base import UpstreamError
from llm.providers.relay_feed import DRAIN, Feed


class Reads:
    """What a relay sees: each read, and what it answers (None: carry on)."""

    def __init__(self, answers):
        self.reads, self.answers = [], list(answers)
        self.writer = SimpleNamespace(flow=SimpleNamespace(write_paused=False))

    def received(self, data):
        self.reads.append(data)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def eof(self):
        raise wire.WireError("connection closed mid-body")  # a chunked body cut short


async def connection():
    ours, theirs = socket.socketpair()
    reader, writer = await asyncio.open_connection(sock=ours)
    transport = writer.transport
    return reader, writer, transport, transport.get_protocol(), theirs


async def test_bytes_after_the_outcome_stay_the_stream_readers():
    reader, writer, transport, original, theirs = await connection()
    relay = Reads([None, True])
    feed = Feed(relay, transport, original)
    transport.set_protocol(feed)
    feed.data_received(b"event 1")
    feed.data_received(b"[DONE]")
    feed.data_received(b"0\r\n\r\n")  # before the relay's task took the transport back
    assert await feed.wait() is True and relay.reads == [b"event 1", b"[DONE]"]
    transport.set_protocol(original)
    theirs.sendall(b"more")
    async with asyncio.timeout(10):
        assert await reader.readexactly(9) == b"0\r\n\r\nmore"
    writer.close()
    theirs.close()


@pytest.mark.parametrize("how", ["closed by the vendor", "aborted here"])
async def test_a_lost_connection_fails_the_stream_and_reaches_the_reader(how):
    reader, writer, transport, original, theirs = await connection()
    feed = Feed(Reads([]), transport, original)
    transport.set_protocol(feed)
    if how == "closed by the vendor":
        theirs.close()
    else:
        transport.abort()
    with pytest.raises(UpstreamError) as failed:
        await feed.wait()
    assert failed.value.kind == "connect"
    async with asyncio.timeout(10):
        assert await reader.read() == b""  # the reader saw the end as well
    writer.close()
    theirs.close()


async def test_an_error_of_the_relay_is_raised_by_the_wait():
    reader, writer, transport, original, theirs = await connection()
    feed = Feed(Reads([UpstreamError("timeout", "the provider stopped sending")]), transport, original)
    feed.data_received(b"late event")
    with pytest.raises(UpstreamError, match="stopped sending"):
        await feed.wait()
    writer.close()
    theirs.close()


async def test_an_interrupted_wait_keeps_the_outcome_for_the_next():
    reader, writer, transport, original, theirs = await connection()
    relay = Reads([True])
    feed = Feed(relay, transport, original)
    waiting = asyncio.ensure_future(feed.wait())
    await asyncio.sleep(0)
    feed.data_received(b"[DONE]")
    waiting.cancel()  # a tick lands in the same turn as the outcome
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert await feed.wait() is True
    writer.close()
    theirs.close()


async def test_a_full_client_pauses_the_vendor_reads_until_resumed():
    reader, writer, transport, original, theirs = await connection()
    relay = Reads([None, None])
    feed = Feed(relay, transport, original)
    transport.set_protocol(feed)
    relay.writer.flow.write_paused = True
    feed.data_received(b"event")
    assert await feed.wait() is DRAIN and not transport.is_reading()
    feed.resume()
    assert transport.is_reading()
    relay.writer.flow.write_paused = False
    theirs.sendall(b"next")
    waiting = asyncio.ensure_future(feed.wait())
    while len(relay.reads) < 2:
        await asyncio.sleep(0.001)
    assert relay.reads == [b"event", b"next"] and not waiting.done()
    waiting.cancel()
    writer.close()
    theirs.close()
