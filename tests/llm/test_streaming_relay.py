"""llm.streaming._relay: what leaves for the client, and when (no server needed)."""

import asyncio
from types import SimpleNamespace

import pytest

from llm.chat import Bill
from llm.gateway import OpenedStream
from llm.providers.base import SILENCE, Route, StreamPiece, UpstreamError, Usage
from llm.streaming import KEEPALIVE, _relay


def opened(pieces, fail: Exception | None = None) -> OpenedStream:
    async def rest():
        for piece in pieces[1:]:
            await asyncio.sleep(0)
            yield piece
        if fail:
            raise fail

    return OpenedStream(Route("openai", "m"), pieces[0], rest(), 1)


PREPARED = SimpleNamespace(started=0.0)


def fresh_state() -> Bill:
    """The bill a stream notes what it relays on (never closed here)."""
    return Bill(PREPARED)


async def relay(stream, state=None) -> list[bytes]:
    return [part async for part in _relay(state or fresh_state(), stream)]


async def test_events_that_arrived_together_leave_in_one_write_and_alone_ones_alone():
    pieces = [
        StreamPiece(b"a", text_chars=1, more=True),
        StreamPiece(b"b", text_chars=1, more=True),
        StreamPiece(b"c", text_chars=1),
        StreamPiece(b"d", text_chars=1),
    ]
    state = fresh_state()
    assert await relay(opened(pieces), state) == [b"abc", b"d"]
    assert state.chars == 4 and state.ttft_ms is not None


async def test_usage_chunk_is_kept_back_and_what_waited_for_it_still_leaves():
    usage = Usage(prompt_tokens=3, completion_tokens=2)
    pieces = [StreamPiece(b"a", more=True), StreamPiece(b"", usage=usage, usage_only=True, chunk={"id": "u"})]
    state = fresh_state()
    assert await relay(opened(pieces), state) == [b"a"]
    assert state.usage == usage and state.usage_chunk == {"id": "u"}


async def test_silence_becomes_a_keepalive_comment():
    assert await relay(opened([StreamPiece(b"a"), SILENCE, StreamPiece(b"b")])) == [b"a", KEEPALIVE, b"b"]


async def test_a_failure_after_events_that_were_held_back_delivers_them_first():
    stream = opened(
        [StreamPiece(b"a", more=True), StreamPiece(b"b", more=True)], fail=UpstreamError("connect", "cut")
    )
    parts = []
    with pytest.raises(UpstreamError):
        async for part in _relay(fresh_state(), stream):
            parts.append(part)
    assert parts == [b"ab"]


async def test_silence_longer_than_the_idle_timeout_ends_the_stream(settings):
    settings.GPUNIQ_STREAM_IDLE_TIMEOUT = 0.05

    async def rest():
        await asyncio.sleep(0.1)
        yield SILENCE

    parts = []
    with pytest.raises(UpstreamError) as caught:
        async for part in _relay(
            fresh_state(), OpenedStream(Route("openai", "m"), StreamPiece(b"a"), rest(), 1)
        ):
            parts.append(part)
    assert caught.value.kind == "timeout" and parts == [b"a"]
