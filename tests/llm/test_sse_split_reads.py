"""An SSE stream read in two network reads, split at every byte position, gives the same events:
in particular a CRLF vendor whose `\\r` ends one read and `\\n` starts the next still ends with a
clean `[DONE]` (it used to arrive as `[DONE]\\r` and fail the stream as malformed)."""

import pytest

from llm.providers import http, wire
from tests.fakes.common import make_plan, Turn
from tests.fakes.openai_compat import FakeOpenAI


class TwoReads:
    """A stand-in for wire.Response whose body arrives in the given reads."""

    def __init__(self, parts: list[bytes]):
        self.parts, self.more = parts, False

    async def aiter_bytes(self, timed: bool = True, tick: float = 0.0):
        for part in self.parts:
            yield part

    def saw_event(self) -> None:
        pass


def recorded_stream(crlf: bool) -> bytes:
    """A stream as the OpenAI fake sends it (usage included), in LF or CRLF line endings, with a
    comment and an `event:` line as other vendors send them."""
    fake = FakeOpenAI()
    plan = make_plan(model="gpt-4o", turns=[Turn("user", "split me at every byte")])
    request = type("R", (), {"json": {"stream_options": {"include_usage": True}}})()
    body = b": keep-alive\n\n" + b"event: message\n" + b"".join(fake.render_stream(plan, False, request))
    return body.replace(b"\n", b"\r\n") if crlf else body


async def events(parts: list[bytes]) -> list[bytes]:
    return [data async for data in http.sse_data(TwoReads(parts)) if data is not wire.TICK]


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
async def test_every_split_position_gives_the_same_events(crlf):
    body = recorded_stream(crlf)
    whole = await events([body])
    assert whole[-1] == b"[DONE]" and len(whole) > 5
    assert all(not data.endswith(b"\r") for data in whole)
    for cut in range(1, len(body)):
        assert await events([body[:cut], body[cut:]]) == whole, (
            f"split at byte {cut}: {body[cut - 3 : cut + 3]!r}"
        )
