"""The doors' text deltas, framed without a dict, are byte for byte what the generic framing makes
of the event's dict, for any text and position: the Responses door's response.output_text.delta
(events._Item.text_delta against frame()) and the Messages door's content_block_delta
(anthropic_reply.text_delta against _event())."""

from hypothesis import given
from hypothesis import strategies as st

from llm.dialects.anthropic_reply import _event, text_delta
from llm.front.responses import reply
from llm.front.responses.events import ResponseEvents, _Item, frame


@given(
    delta=st.text(min_size=1),
    item_id=st.text(min_size=1, max_size=40),
    index=st.integers(0, 10_000),
    seq=st.integers(0, 10**9),
)
def test_a_text_delta_is_framed_as_its_event_would_be(delta, item_id, index, seq):
    item = _Item("message", index, {"id": item_id})
    event = {
        "type": "response.output_text.delta",
        "sequence_number": seq,
        "item_id": item_id,
        "output_index": index,
        "content_index": 0,
        "delta": delta,
        "logprobs": [],
    }
    assert item.text_delta(seq, delta) == frame(event)
    assert item.text_delta(seq + 1, delta) == frame({**event, "sequence_number": seq + 1})  # fields kept


def test_the_deltas_of_a_reply_number_on_with_the_other_events():
    events = ResponseEvents(reply.shell({}, response_id="resp_1", slug="m", status="in_progress"))
    out = events.start()
    for text in ("a", 'quote " and \\ back', "\u2603\n"):
        out += events.chunk({"choices": [{"index": 0, "delta": {"content": text}}]})
    out += events.completed(None, None)
    numbers = [
        int(line.split(b'"sequence_number":')[1].split(b",")[0])
        for line in out.split(b"\n")
        if line.startswith(b"data:")
    ]
    assert numbers == list(range(len(numbers))) and len(numbers) == 11
    assert (
        b'"delta":"quote \\" and \\\\ back"' in out
        and b'"text":"aquote \\" and \\\\ back\xe2\x98\x83\\n"' in out
    )


@given(text=st.text(min_size=1), index=st.integers(0, 10_000))
def test_a_messages_text_delta_is_framed_as_its_event_would_be(text, index):
    event = {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}
    assert text_delta(index, text) == _event(event)
