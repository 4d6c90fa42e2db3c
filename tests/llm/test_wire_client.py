"""llm.providers.wire, the chat providers' HTTP/1.1 client, through http.post_json / post_stream.

The fake vendors (uvicorn) cover real-server framing; `Raw`, a tiny asyncio server on the test's
own loop, scripts the edge cases byte by byte and counts TCP connections server-side.
"""

import asyncio
import json
import re
import time

import pytest

from llm.providers import http, wire, wire_pool
from llm.providers.anthropic import AnthropicProvider
from llm.providers.base import ChatRequest, Route, UpstreamError
from llm.providers.openai_compat import OpenAICompatProvider
from llm.providers.openai_errors import parse_error as openai_parse_error
from llm.upstreams import Upstream
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.common import closed_port_url
from tests.fakes.openai_compat import FakeOpenAI

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello wire"}]}
OK_JSON = b'{"ok":true}'


@pytest.fixture(autouse=True)
async def _fresh_pool():
    """Each test has its own loop: start and end with an empty pool of ours."""
    await wire.close_pool()
    yield
    await wire.close_pool()


@pytest.fixture(scope="module")
def fake_openai():
    with FakeOpenAI(api_key="test-key", stall_seconds=5) as server:
        yield server


@pytest.fixture(scope="module")
def fake_anthropic():
    with FakeAnthropic(api_key="test-key") as server:
        yield server


def upstream(url: str) -> Upstream:
    return Upstream(family="openai", base_url=url, api_key="test-key")


async def post_json(url: str, first_byte: float = 5.0, **kwargs):
    return await http.post_json(
        upstream(url),
        "/v1/chat/completions",
        headers={"Authorization": "Bearer test-key"},
        body=kwargs.pop("body", BODY),
        first_byte=first_byte,
        **kwargs,
    )


def idle_count() -> int:
    return wire.pool().count


# --- a scriptable raw server ----------------------------------------------------------------


def response(body: bytes = OK_JSON, status: str = "200 OK", headers: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    ).encode() + body


class Raw:
    """Each request is answered by `script(raw, reader, writer, conn_no, nth_request_on_conn)`, which
    returns False to close the connection. `connections` counts accepted TCP connections; `eof` lists
    the connections the client closed between requests; `closed` is set when a handler ends."""

    def __init__(self, script):
        self.script, self.connections, self.requests, self.eof = script, 0, [], []
        self.closed = asyncio.Event()

    async def __aenter__(self) -> "Raw":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _handle(self, reader, writer) -> None:
        self.connections += 1
        conn_no, nth = self.connections, 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    self.eof.append(conn_no)
                    return
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                self.requests.append((conn_no, head, await reader.readexactly(length)))
                nth += 1
                if not await self.script(self, reader, writer, conn_no, nth):
                    return
        finally:
            writer.close()
            self.closed.set()


def always(data: bytes, keep: bool = True):
    async def script(raw, reader, writer, conn_no, nth):
        writer.write(data)
        await writer.drain()
        return keep

    return script


# --- against the fake vendors ---------------------------------------------------------------


async def test_content_length_json_and_keep_alive_with_fake_openai(fake_openai):
    fake_openai.reset()
    first = await post_json(fake_openai.base_url)
    conn = wire.pool().idle[("http", "127.0.0.1", fake_openai.port)][-1]
    second = await post_json(fake_openai.base_url)
    assert first["choices"][0]["message"]["content"] == "Echo: Hello wire"
    assert second["object"] == "chat.completion" and idle_count() == 1
    assert wire.pool().idle[("http", "127.0.0.1", fake_openai.port)][-1] is conn, "the connection was reused"
    sent = fake_openai.requests[-1]
    assert sent["json"] == BODY and sent["headers"]["authorization"] == "Bearer test-key"
    assert (
        sent["headers"]["accept-encoding"] == "identity" and sent["headers"]["user-agent"] == "gpuniq-gateway"
    )


async def test_error_status_goes_through_the_parser_with_case_insensitive_headers(fake_openai):
    with pytest.raises(UpstreamError) as caught:
        await post_json(
            fake_openai.base_url,
            body={**BODY, "messages": [{"role": "user", "content": "[[fault:429]]"}]},
            error_parser=openai_parse_error,
        )
    assert (
        caught.value.kind == "rate_limited" and caught.value.status == 429 and caught.value.retry_after == 1.0
    )
    assert idle_count() == 1, "an error reply read to the end keeps its connection"


async def test_non_stream_cutoff_is_connect_and_stall_is_timeout(fake_openai):
    cut = {**BODY, "messages": [{"role": "user", "content": "[[fault:cutoff]]"}]}
    with pytest.raises(UpstreamError) as caught:
        await post_json(fake_openai.base_url, body=cut)
    assert caught.value.kind == "connect"
    stall = {**BODY, "messages": [{"role": "user", "content": "[[fault:stall]]"}]}
    with pytest.raises(UpstreamError) as caught:
        await post_json(fake_openai.base_url, body=stall, first_byte=0.5)
    assert caught.value.kind == "timeout" and idle_count() == 0


async def wait_idle(count: int) -> None:
    """Finished streams are pooled once their tail is read, which happens in the background."""
    for _ in range(100):
        if idle_count() == count:
            return
        await asyncio.sleep(0.01)
    assert idle_count() == count


def stream_request(text: str, slug: str = "gpt-4o") -> ChatRequest:
    return ChatRequest(
        body={"model": slug, "messages": [{"role": "user", "content": text}]},
        slug=slug,
        stream=True,
        max_output_tokens=None,
    )


async def test_chunked_stream_with_fake_anthropic_returns_connection_to_pool(fake_anthropic):
    provider = AnthropicProvider(
        Upstream(family="anthropic", base_url=fake_anthropic.base_url, api_key="test-key")
    )
    request = stream_request("Hi there", "claude-haiku-4-5")
    for _ in range(3):
        pieces = [p async for p in provider.stream(request, Route("anthropic", "claude-haiku-4-5-20251001"))]
        text = "".join(
            p.chunk["choices"][0]["delta"].get("content", "")
            for p in pieces
            if p.chunk and p.chunk["choices"]
        )
        assert text == "Echo: Hi there"
        await wait_idle(1)
    assert fake_anthropic.disconnects == 0


async def test_openai_stream_after_done_returns_connection_to_pool(fake_openai):
    provider = OpenAICompatProvider(upstream(fake_openai.base_url + "/v1"))
    first = None
    for _ in range(3):
        pieces = [p async for p in provider.stream(stream_request("Hello stream"), Route("openai", "gpt-4o"))]
        assert pieces[-1].usage is not None
        await wait_idle(1)
        conn = wire.pool().idle[("http", "127.0.0.1", fake_openai.port)][-1]
        first = first or conn
        assert conn is first, "one connection served every stream"


async def test_abandoned_stream_closes_its_connection():
    slow = FakeOpenAI(api_key="test-key", chunk_delay=0.2).start()
    try:
        provider = OpenAICompatProvider(upstream(slow.base_url + "/v1"))
        pieces = provider.stream(stream_request("one two three four five six"), Route("openai", "gpt-4o"))
        assert (await anext(pieces)).data.startswith(b"data: {")
        await pieces.aclose()  # what the view does when its client goes away
        assert idle_count() == 0
        assert await asyncio.to_thread(slow.wait_for_disconnects, 1), "the server saw the client leave"
    finally:
        slow.stop()


async def test_exception_inside_the_stream_block_closes_the_connection():
    body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: x\n\n\r\n"

    async def script(raw, reader, writer, conn_no, nth):
        writer.write(body)
        await reader.read()  # until the client closes
        return False

    async with Raw(script) as raw:
        with pytest.raises(RuntimeError):
            async with http.post_stream(
                upstream(raw.url), "/x", headers={}, body={}, first_byte=5
            ) as response:
                async for _ in http.sse_data(response):
                    raise RuntimeError("the consumer failed")
        await asyncio.wait_for(raw.closed.wait(), 2)
    assert idle_count() == 0


async def test_connection_refused_is_connect_without_the_address():
    url = closed_port_url()
    with pytest.raises(UpstreamError) as caught:
        await post_json(url)
    assert caught.value.kind == "connect" and url.rsplit(":", 1)[1] not in str(caught.value)


# --- edge cases on the raw server -----------------------------------------------------------


async def test_request_is_one_write_with_the_expected_head():
    async with Raw(always(response())) as raw:
        await http.post_json(
            upstream(raw.url + "/v1"),
            "/chat/completions",
            headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
            body={"text": "héllo ✓", "n": [1, 2]},
            first_byte=5,
        )
    _, head, body = raw.requests[0]
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
    assert lines[1] == raw.url.replace("http://", "Host: ")
    assert [line.lower() for line in lines].count("content-type: application/json") == 1
    assert (
        body
        == json.dumps({"text": "héllo ✓", "n": [1, 2]}, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert f"Content-Length: {len(body)}" in lines and "Authorization: Bearer k" in lines


async def test_keep_alive_reuses_one_connection():
    async with Raw(always(response())) as raw:
        for _ in range(5):
            assert await post_json(raw.url) == {"ok": True}
    assert raw.connections == 1 and len(raw.requests) == 5


async def test_connection_close_is_not_reused():
    async with Raw(always(response(headers="Connection: close\r\n"), keep=False)) as raw:
        for _ in range(3):
            assert await post_json(raw.url) == {"ok": True}
    assert raw.connections == 3 and idle_count() == 0


async def test_chunked_body_with_extensions_and_trailers():
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;name=value\r\n{"ok\r\n7\r\n":true}\r\n0\r\nX-Trailer: yes\r\n\r\n'
    )
    async with Raw(always(chunked)) as raw:
        assert await post_json(raw.url) == {"ok": True}
        assert await post_json(raw.url) == {"ok": True}
    assert raw.connections == 1


async def test_chunked_body_arriving_a_byte_at_a_time_is_decoded_and_pooled():
    body = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;ext=1\r\n{"ok\r\n7\r\n":true}\r\n0\r\nX-Trailer: yes\r\n\r\n'
    )

    async def dribble(raw, reader, writer, conn_no, nth):
        head, rest = body.split(b"\r\n\r\n", 1)
        writer.write(head + b"\r\n\r\n")
        for i in range(len(rest)):
            writer.write(rest[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0.001)
        return True

    async with Raw(dribble) as raw:
        assert await post_json(raw.url) == {"ok": True}
        assert await post_json(raw.url) == {"ok": True}
    assert raw.connections == 1


async def test_bytes_after_a_chunked_body_make_the_connection_unusable():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nGARBAGE"
    async with Raw(always(chunked)) as raw:
        assert await post_json(raw.url) == {}
        assert await post_json(raw.url) == {}
    assert raw.connections == 2


async def test_body_until_close_is_read_and_connection_not_reused():
    async with Raw(
        always(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + OK_JSON, keep=False)
    ) as raw:
        assert await post_json(raw.url) == {"ok": True}
        assert idle_count() == 0
        assert await post_json(raw.url) == {"ok": True}
    assert raw.connections == 2


async def test_idle_connection_closed_by_the_server_is_not_used():
    async with Raw(always(response(), keep=False)) as raw:  # closes after each reply, without saying so
        assert await post_json(raw.url) == {"ok": True}
        await raw.closed.wait()
        await asyncio.sleep(0.05)  # the client's loop takes in the FIN
        assert await post_json(raw.url) == {"ok": True}
    assert raw.connections == 2


async def test_stale_pooled_connection_is_retried_once_on_a_fresh_one():
    async def script(raw, reader, writer, conn_no, nth):
        if nth == 2:  # the server had dropped the idle connection: the request dies unanswered
            return False
        writer.write(response())
        return True

    async with Raw(script) as raw:
        assert await post_json(raw.url) == {"ok": True}
        assert await post_json(raw.url) == {"ok": True}
    assert raw.connections == 2 and [r[0] for r in raw.requests] == [1, 1, 2]


async def test_no_retry_on_a_fresh_connection_nor_twice():
    async def script(raw, reader, writer, conn_no, nth):
        if conn_no == 1 and nth == 1:
            writer.write(response())
            return True
        return False  # every later request gets EOF before any byte

    async with Raw(script) as raw:
        await post_json(raw.url)
        with pytest.raises(UpstreamError) as caught:
            await post_json(raw.url)  # reused (dropped) -> one retry on a fresh one (dropped) -> error
        assert caught.value.kind == "connect"
        assert raw.connections == 2
        with pytest.raises(UpstreamError):
            await post_json(raw.url)  # fresh connection: no retry
        assert raw.connections == 3


async def test_eof_after_part_of_the_status_line_is_not_retried():
    async with Raw(always(b"HTTP/1.1 2", keep=False)) as raw:
        with pytest.raises(UpstreamError) as caught:
            await post_json(raw.url)
    assert caught.value.kind == "connect" and raw.connections == 1


async def test_first_byte_timeout():
    async def silent(raw, reader, writer, conn_no, nth):
        await asyncio.wait_for(reader.read(), 5)  # returns when the client closes
        return False

    async with Raw(silent) as raw:
        started = time.monotonic()
        with pytest.raises(UpstreamError) as caught:
            await post_json(raw.url, first_byte=0.3)
        assert caught.value.kind == "timeout" and time.monotonic() - started < 2
        await asyncio.wait_for(raw.closed.wait(), 2)  # the timed-out connection was closed
    assert idle_count() == 0


async def test_idle_timeout_mid_body():
    """A reply body that stops mid-way; streams leave this to their watchdog (llm.streaming)."""

    async def stall(raw, reader, writer, conn_no, nth):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n")
        await asyncio.wait_for(reader.read(), 5)  # returns when the client closes
        return False

    async with Raw(stall) as raw:
        started = time.monotonic()
        with pytest.raises(UpstreamError) as caught:
            await post_json(raw.url, first_byte=0.3)
        assert caught.value.kind == "timeout" and time.monotonic() - started < 2
    assert idle_count() == 0


async def test_eof_mid_body_is_connect_and_not_pooled():
    async with Raw(always(response()[:-3], keep=False)) as raw:
        with pytest.raises(UpstreamError) as caught:
            await post_json(raw.url)
    assert caught.value.kind == "connect" and idle_count() == 0


async def test_oversized_header_is_rejected():
    huge = b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (wire.LINE_LIMIT + 10) + b"\r\nContent-Length: 0\r\n\r\n"
    async with Raw(always(huge, keep=False)) as raw:
        with pytest.raises(UpstreamError) as caught:
            await post_json(raw.url)
    assert caught.value.kind == "connect"


async def test_non_json_success_is_malformed_and_interim_1xx_is_skipped():
    reply = b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"<html>", headers="X-A: 1\r\n")
    async with Raw(always(reply)) as raw:
        with pytest.raises(UpstreamError) as caught:
            await post_json(raw.url)
    assert caught.value.kind == "malformed" and caught.value.status == 200


async def test_cancelled_request_closes_its_connection():
    async def silent(raw, reader, writer, conn_no, nth):
        await asyncio.wait_for(reader.read(), 5)  # returns when the client closes
        return False

    async with Raw(silent) as raw:
        task = asyncio.ensure_future(post_json(raw.url))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(raw.closed.wait(), 2)
    assert idle_count() == 0


async def test_idle_expiry_and_idle_bound(monkeypatch):
    async with Raw(always(response())) as raw:
        await post_json(raw.url)
        monkeypatch.setattr(wire_pool, "IDLE_EXPIRY", 0.0)
        await post_json(raw.url)
        assert raw.connections == 2, "the expired idle connection was not reused"
        monkeypatch.setattr(wire_pool, "IDLE_EXPIRY", 60.0)
        monkeypatch.setattr(wire_pool, "MAX_IDLE", 1)
        await asyncio.gather(post_json(raw.url), post_json(raw.url))
        assert idle_count() == 1


async def test_a_full_pool_makes_room_by_closing_the_connection_idle_longest(monkeypatch):
    """A burst to one vendor fills the pool; a connection to another vendor returned then is kept,
    and the one idle longest (of the first vendor) is closed, so the next request to either vendor
    opens exactly what it must."""
    monkeypatch.setattr(wire_pool, "MAX_IDLE", 2)
    async with Raw(always(response())) as busy, Raw(always(response())) as other:
        await asyncio.gather(post_json(busy.url), post_json(busy.url))
        assert busy.connections == 2 and idle_count() == 2
        await post_json(other.url)
        await asyncio.wait_for(busy.closed.wait(), 5)  # one of the burst's two went to make room
        assert idle_count() == 2
        await post_json(other.url)
        assert other.connections == 1, "the other vendor's connection was closed on return"
        await asyncio.gather(post_json(busy.url), post_json(busy.url))
        assert busy.connections == 3, "the burst's warmer connection was not kept"


async def test_header_injection_is_refused():
    async with Raw(always(response())) as raw:
        with pytest.raises(UpstreamError) as caught:
            await http.post_json(
                upstream(raw.url), "/x", headers={"X-Key": "a\r\nX-Evil: 1"}, body={}, first_byte=5
            )
    assert caught.value.kind == "connect" and raw.requests == []


def test_headers_are_case_insensitive_and_join_repeats():
    headers = wire.Headers([("Retry-After", "2"), ("Set-Thing", "a"), ("set-thing", "b")])
    assert headers.get("retry-after") == "2" and headers.get("RETRY-AFTER") == "2"
    assert headers.get("set-thing") == "a, b" and headers.get("missing", "x") == "x"
    assert headers.items()[0] == ("Retry-After", "2")
    assert http.retry_after(headers) == 2.0


async def test_stream_with_headers_then_silence_fails_over_after_the_first_byte_timeout(monkeypatch):
    """Stream reads have no timeout of their own: opening a stream bounds the wait for its first event."""
    from types import SimpleNamespace

    from gpuniq_site.errors import ApiError
    from llm import gateway, route_health

    async def silent(raw, reader, writer, conn_no, nth):
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        await asyncio.wait_for(reader.read(), 5)  # until the client closes
        return False

    async with Raw(silent) as raw:
        provider = OpenAICompatProvider(upstream(raw.url))
        monkeypatch.setattr(gateway, "live_provider", lambda route: provider)

        async def nothing_cooling(names):
            return set()

        async def noted(name):
            noted.calls.append(name)

        noted.calls = []
        monkeypatch.setattr(route_health, "cooling", nothing_cooling)
        monkeypatch.setattr(route_health, "record_failure", noted)
        model = SimpleNamespace(
            slug="gpt-4o",
            live_routes=lambda: [SimpleNamespace(provider="openai", upstream_model="gpt-4o")] * 2,
        )
        request = stream_request("hello")
        request.first_byte_timeout = 0.3
        started = time.monotonic()
        with pytest.raises(ApiError) as caught:
            await gateway.open_stream(request, model)
        assert caught.value.code == "all_routes_failed" and time.monotonic() - started < 2
        assert len(noted.calls) == 2  # both routes were tried, each given up after 0.3 s
        await asyncio.wait_for(raw.closed.wait(), 2)  # and the silent connections were closed
    assert idle_count() == 0


async def test_a_silent_vendor_mid_stream_yields_ticks_and_the_stream_carries_on(settings):
    """Keep-alive intervals of silence come up as wire.TICK without disturbing the read: the event
    split around the pause arrives whole, and the connection goes back to the pool."""
    settings.GPUNIQ_KEEPALIVE_SECONDS = 0.1

    async def pausing(raw, reader, writer, conn_no, nth):
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"9\r\ndata: a\n\n\r\n5\r\ndata:\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.35)
        writer.write(b"4\r\n b\n\n\r\n0\r\n\r\n")
        await writer.drain()
        return True

    async with Raw(pausing) as raw:
        async with http.post_stream(upstream(raw.url), "/x", headers={}, body={}, first_byte=5) as response:
            seen = [data async for data in http.sse_data(response)]
        assert seen[0] == b"a" and seen[-1] == b"b"
        assert 2 <= seen.count(wire.TICK) <= 4 and len(seen) == seen.count(wire.TICK) + 2
        await wait_idle(1)


async def test_cancelling_a_ticking_read_still_cancels(settings):
    settings.GPUNIQ_KEEPALIVE_SECONDS = 0.05

    async def silent(raw, reader, writer, conn_no, nth):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await asyncio.wait_for(reader.read(), 5)
        return False

    async with Raw(silent) as raw:
        ticks = []

        async def consume():
            async with http.post_stream(
                upstream(raw.url), "/x", headers={}, body={}, first_byte=5
            ) as response:
                async for data in http.sse_data(response):
                    ticks.append(data)

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0.28)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(ticks) >= 3 and set(ticks) == {wire.TICK}
        await asyncio.wait_for(raw.closed.wait(), 2)  # the abandoned stream's connection was closed
