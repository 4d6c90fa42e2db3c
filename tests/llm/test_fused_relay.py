"""The fused relay (llm.providers.openai_relay) against the generic path it replaces: for OpenAI
streams of every shape, cut into HTTP chunks and network reads at arbitrary places, the client
gets the same chunks (byte for byte, framing included), the bill the same facts (text, partial and
final usage, the held-back usage chunk) and the stream the same end (or the same error).

The vendor side is the real client over a connection whose reads the test chooses
(tests/llm/fused_harness.py); a live uvicorn serves the end-to-end tests in
test_fused_relay_live.py."""

import asyncio
import json

from hypothesis import HealthCheck, event, given, settings as hsettings, strategies as st
import pytest

from .fused_harness import CHUNKED_HEAD, Vendor, chunked, head_with_length, reads_of, relay
from .test_sse_split_reads import recorded_stream

MODEL = "gpt-4o-2024-08-06"  # the vendor's dated id; the client sees the slug


def chunk(delta=None, finish=None, *, usage="absent", choices=True) -> dict:
    obj: dict = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    obj["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []
    if usage != "absent":
        obj["usage"] = usage
    return obj


USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
text = st.text(min_size=0, max_size=12)
events = st.one_of(
    text.map(lambda t: ("content", t)),
    text.map(lambda t: ("reasoning", t)),
    text.map(lambda t: ("tool", t)),
    st.just(("comment", "")),
    st.just(("finish", "")),
    st.just(("usage_only", "")),
    st.just(("usage_on_content", "")),
    st.just(("error", "")),
    st.just(("malformed", "")),
    st.just(("event_line", "")),
)


mostly_content = st.one_of(st.text(alphabet="abc é", max_size=6).map(lambda t: ("content", t)), events)


def render(kind: str, value: str, null_usage: bool, spaced: bool, ascii_only: bool) -> bytes:
    """One SSE event as a vendor sends it."""
    usage = None if null_usage else "absent"
    if kind == "comment":
        return b": ping\n\n"
    if kind == "malformed":
        return b"data: {not json\n\n"
    if kind == "error":
        obj: dict = {"error": {"message": "overloaded https://vendor.test/x", "type": "server_error"}}
    elif kind == "content":
        obj = chunk({"content": value}, usage=usage)
    elif kind == "reasoning":
        obj = chunk({"reasoning_content": value}, usage=usage)
    elif kind == "tool":
        call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": value}}
        obj = chunk({"tool_calls": [call]}, usage=usage)
    elif kind == "finish":
        obj = chunk({}, "stop", usage=usage)
    elif kind == "usage_only":
        obj = chunk(usage=USAGE, choices=False)
    else:  # usage_on_content
        obj = chunk({"content": value or "x"}, usage=USAGE)
    separators = (", ", ": ") if spaced else (",", ":")
    data = json.dumps(obj, separators=separators, ensure_ascii=ascii_only).encode()
    prefix = b"event: message\n" if kind == "event_line" else b""
    return prefix + b"data: " + data + b"\n\n"


@st.composite
def vendor_streams(draw):
    """(head, reads, eof) of one vendor response, and whether the client asked for usage."""
    null_usage, spaced, ascii_only = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    kinds = draw(st.lists(events, max_size=14))
    body = render("content", "", null_usage, spaced, ascii_only)  # the role chunk's shape
    body += b"".join(render(k, v, null_usage, spaced, ascii_only) for k, v in kinds)
    ending = draw(st.sampled_from(["done", "done_then_more", "none", "done_no_blank"]))
    body += {
        "done": b"data: [DONE]\n\n",
        "done_then_more": b"data: [DONE]\n\n" + render("content", "late", null_usage, spaced, ascii_only),
        "none": b"",
        "done_no_blank": b"data: [DONE]",
    }[ending]
    if draw(st.booleans()) and draw(st.booleans()):
        body = body.replace(b"\n", b"\r\n")
    framing = draw(st.sampled_from(["chunked", "chunked_cut", "length"]))
    cuts = st.lists(st.integers(1, max(1, len(body) + 64)), max_size=12)
    if framing == "length":
        head, payload, eof = head_with_length(len(body)), body, False
    else:
        head, payload = CHUNKED_HEAD, chunked(body, draw(cuts), terminated=framing == "chunked")
        eof = framing == "chunked_cut"
    return head, reads_of(payload, draw(cuts)), eof, draw(st.booleans())


def both(head, reads, eof, include_usage):
    async def run():
        generic = await relay(Vendor(head, reads, eof), include_usage, fused=False)
        fused = await relay(Vendor(head, reads, eof), include_usage, fused=True)
        return generic, fused

    return asyncio.run(run())


def assert_same(generic, fused):
    assert fused.error == generic.error
    assert fused.bill == generic.bill
    assert [chunk for _, chunk in fused.frames] == [chunk for _, chunk in generic.frames]
    assert fused.pooled == generic.pooled  # a finished stream's connection is kept either way
    assert generic.fed == 0


@pytest.fixture(autouse=True)
def _quiet_vendor(settings):
    settings.GPUNIQ_KEEPALIVE_SECONDS = 30.0  # no tick in these tests unless one asks for it


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(vendor_streams())
def test_fused_and_generic_paths_give_the_same_bytes_and_bill(stream):
    head, reads, eof, include_usage = stream
    generic, fused = both(head, reads, eof, include_usage)
    assert_same(generic, fused)
    assert generic.direct == 0
    event("fused relay wrote" if fused.direct else "generic path only")
    event("reads fed by the transport" if fused.fed else "reads awaited")
    event("fast path taken" if fused.quick else "no read for the fast path")


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(mostly_content, max_size=14),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.data(),
)  # noqa: E501
def test_whole_chunks_per_read_give_the_same_bytes_and_bill(kinds, null_usage, spaced, ascii, usage, data):
    """The usual network reads (one event per chunk, one or a few whole chunks per read) of every
    kind of event: the relay's fast path takes the leading ordinary content events of a read and
    leaves the rest to the full decoding, with the same writes, bytes and bill."""
    body = [render("content", "", null_usage, spaced, ascii)]
    body += [render(k, v, null_usage, spaced, ascii) for k, v in kinds] + [b"data: [DONE]\n\n"]
    chunks = [b"%x\r\n%b\r\n" % (len(e), e) for e in body] + [b"0\r\n\r\n"]
    reads = []
    while chunks:
        size = data.draw(st.integers(1, 3))
        reads.append(b"".join(chunks[:size]))
        chunks = chunks[size:]
    generic, fused = both(CHUNKED_HEAD, reads, False, usage)
    assert_same(generic, fused)
    plain = [v for k, v in kinds if k == "content" and '"' not in v and "\\" not in v]
    event("fast path taken" if fused.quick else "no event for the fast path")
    event("a read taken in one pass" if fused.one_chunk else "no read taken in one pass")
    assert fused.quick <= len(plain)


@pytest.mark.parametrize("per_read, quick", [(1, 6), (2, 5), (3, 3)])
def test_reads_of_several_whole_chunks_take_the_fast_path_and_leave_in_one_write(per_read, quick):
    """A reader that fell behind gets a few events' chunks in one read: the fast path takes them
    all (the read holding the body's end excepted) and they leave in one write, as before."""
    body = [render("content", "", False, False, False)] + [render("content", "ab", False, False, False)] * 6
    chunks = [b"%x\r\n%b\r\n" % (len(e), e) for e in [*body, b"data: [DONE]\n\n"]] + [b"0\r\n\r\n"]
    reads = [b"".join(chunks[i : i + per_read]) for i in range(0, len(chunks), per_read)]
    generic, fused = both(CHUNKED_HEAD, reads, False, True)
    assert_same(generic, fused)
    assert (fused.fed, fused.quick, fused.bill[0]) == (1, quick, 12)
    assert fused.one_chunk == (quick if per_read == 1 else 0)  # a read of several chunks: _usual
    assert len(fused.frames) == len(generic.frames) == -(-len(body) // per_read)  # one write per read


def one_event_per_read(contents: list[str], done: bool = True) -> list[bytes]:
    body = [render("content", "", True, False, False)] + [
        render("content", c, True, False, False) for c in contents
    ]
    body += [render("usage_only", "", False, False, False)]
    if done:
        body.append(b"data: [DONE]\n\n")
    return [b"%x\r\n%b\r\n" % (len(e), e) for e in body] + ([b"0\r\n\r\n"] if done else [])


def test_a_stream_read_an_event_at_a_time_goes_out_through_the_fused_relay():
    reads = one_event_per_read(["Hel", "lo", " wörld", 'say "hi"'])
    generic, fused = both(CHUNKED_HEAD, reads, False, True)
    assert_same(generic, fused)
    assert fused.direct == 4 and fused.frames[0][0] == "send"  # the first read went the usual way
    assert fused.fed == 1  # the reads after it: in the vendor transport's callback
    assert fused.quick == 3  # "Hel", "lo", " wörld": one chunk, one content event like the last
    assert fused.one_chunk == 3  # each taken in one pass (Relay._one_chunk)
    assert fused.pooled == 1  # the body's terminator, after [DONE], was read and the connection kept
    assert fused.bill[0] == len("Hello wörld") + len('say "hi"') and fused.error is None
    assert json.loads(fused.bill[3])["model"] == "gpt-4o"  # the usage chunk waits for cost_usd


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize(
    "odd, taken",  # reads taken in one pass when the client asked for usage
    [(b"a\nb", 1), (b"a\rb", 2), (b'a\\"b', 2), (b"\xff", 1), (b'a","x":"b', 1), (b"", 3)],
)
def test_a_read_like_the_last_but_for_an_odd_text_takes_the_full_path(odd, taken, include_usage):
    """Reads of one whole chunk that match the remembered event around a text with a line break,
    an escape, bytes that are not UTF-8 or nothing at all: the same bytes, bill and end as the
    generic path, whatever that makes of them."""
    ordinary = [render("content", "", True, False, False), render("content", "ab", True, False, False)]
    odd_event = ordinary[1].replace(b'"ab"', b'"' + odd + b'"')
    body = [*ordinary, odd_event, render("content", "cd", True, False, False), b"data: [DONE]\n\n"]
    reads = [b"%x\r\n%b\r\n" % (len(e), e) for e in body] + [b"0\r\n\r\n"]
    generic, fused = both(CHUNKED_HEAD, reads, False, include_usage)
    assert_same(generic, fused)
    # "ab", the odd one when it is no more than an empty text, and "cd" unless the odd one ended the
    # stream; a client that did not ask for usage gets the vendor's events without "usage":null, so
    # none of them is like the one remembered
    assert fused.one_chunk == (taken if include_usage else 0)


def test_reads_that_arrived_before_the_handover_are_the_feeds_first():
    reads = one_event_per_read(["Hel", "lo", " wörld"])

    async def run():
        generic = await relay(Vendor(CHUNKED_HEAD, reads), True, fused=False, late=True)
        fused = await relay(Vendor(CHUNKED_HEAD, reads), True, fused=True, late=True)
        return generic, fused

    generic, fused = asyncio.run(run())
    assert_same(generic, fused)
    assert fused.fed == 1 and fused.direct == 3 and fused.pooled == 1 and fused.error is None


def test_a_vendor_error_mid_stream_ends_both_paths_alike():
    reads = one_event_per_read(["a", "b"], done=False)[:3]
    error = render("error", "", False, False, False)
    reads += [b"%x\r\n%b\r\n" % (len(error), error)]
    generic, fused = both(CHUNKED_HEAD, reads, False, False)
    assert_same(generic, fused)
    assert fused.error == ("server", "server (None): overloaded [url]") and fused.direct == 2


def test_a_connection_closed_mid_stream_ends_both_paths_alike():
    reads = one_event_per_read(["a", "b", "c"], done=False)
    generic, fused = both(CHUNKED_HEAD, reads, True, False)
    assert_same(generic, fused)
    assert fused.error is not None and fused.error[0] == "connect" and fused.direct == 3
    assert fused.fed == 1 and fused.pooled == 0


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_a_recorded_stream_split_at_every_byte_after_its_first_event_gives_the_same_output(crlf):
    """The OpenAI fake's own stream (with usage, a comment and an `event:` line): the first event
    alone in the first read (so the rest is relayed by the fused loop), the rest in two reads cut
    at every byte position."""
    body = recorded_stream(crlf)
    end = b"\r\n\r\n" if crlf else b"\n\n"
    first = body.index(end, body.index(b"data:")) + len(end)
    payload = chunked(body[first:], [])
    opening = chunked(body[:first], [], terminated=False)

    async def run():
        fused_reads = 0
        for cut in range(1, len(payload)):
            reads = [opening, payload[:cut], payload[cut:]]
            generic = await relay(Vendor(CHUNKED_HEAD, reads), True, fused=False)
            fused = await relay(Vendor(CHUNKED_HEAD, reads), True, fused=True)
            assert_same(generic, fused)
            assert generic.error is None, (cut, generic.error)
            fused_reads += fused.direct
        return fused_reads

    assert asyncio.run(run()) >= len(payload) - 1  # every cut went through the fused relay
