"""The model id in streamed events is swapped in raw bytes (llm.providers.openai_compat): the fast
path must agree with the careful regular expression on every input, and must never touch text."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from llm.providers.openai_compat import _model_swapper

SWAP = _model_swapper("gpt-4o")


def careful(data: bytes) -> bytes:
    return SWAP._pattern.sub(SWAP.replacement, data, count=1)


def test_the_vendors_dated_id_becomes_our_slug_and_the_rest_is_untouched():
    event = b'{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[]}'
    assert SWAP(event) == event.replace(b"gpt-4o-2024-08-06", b"gpt-4o")
    assert SWAP(b'{"id": "c1", "model" : "x-1", "n": 1}') == b'{"id": "c1", "model" : "gpt-4o", "n": 1}'
    same = b'{"model":"gpt-4o","choices":[]}'
    assert SWAP(same) is same  # nothing to do: not even a copy


def test_a_model_mentioned_inside_content_is_not_swapped():
    event = json.dumps(
        {"choices": [{"delta": {"content": 'set "model": "mine"'}}], "model": "v-1"}, separators=(",", ":")
    ).encode()
    swapped = json.loads(SWAP(event))
    assert swapped["model"] == "gpt-4o" and swapped["choices"][0]["delta"]["content"] == 'set "model": "mine"'


text = st.text(alphabet=st.sampled_from('ab"\\: {}model,\n'), max_size=40)


@settings(max_examples=400, deadline=None)
@given(content=text, model=text, compact=st.booleans(), first=st.booleans())
def test_fast_path_agrees_with_the_regular_expression(content, model, compact, first):
    obj = (
        {"model": model, "choices": [{"delta": {"content": content}}]}
        if first
        else {"choices": [{"delta": {"content": content}}], "model": model}
    )
    event = json.dumps(obj, separators=(",", ":") if compact else (", ", ": ")).encode()
    assert SWAP(event) == careful(event)
    assert json.loads(SWAP(event))["model"] == "gpt-4o"


# --- the byte scan for text length must agree with the full parse ----------------------------

from llm.providers.openai_compat import _piece, _plain_text_chars, _text_chars  # noqa: E402

delta = st.fixed_dictionaries(
    {},
    optional={
        "content": st.one_of(st.none(), st.text(max_size=30)),
        "role": st.just("assistant"),
        "reasoning_content": st.text(max_size=10),
        "tool_calls": st.just([{"index": 0, "function": {"arguments": '{"a": 1}'}}]),
    },
)
event = st.fixed_dictionaries(
    {
        "id": st.just("chatcmpl-1"),
        "object": st.just("chat.completion.chunk"),
        "model": st.just("m"),
        "choices": st.lists(
            st.fixed_dictionaries(
                {"index": st.just(0), "delta": delta, "finish_reason": st.sampled_from([None, "stop"])}
            ),
            max_size=2,
        ),
    },
    optional={
        "usage": st.one_of(
            st.none(), st.just({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
        )
    },
)


@settings(max_examples=600, deadline=None)
@given(obj=event, compact=st.booleans(), ascii_only=st.booleans())
def test_byte_scan_agrees_with_the_parse_or_declines(obj, compact, ascii_only):
    data = json.dumps(
        obj, separators=(",", ":") if compact else (", ", ": "), ensure_ascii=ascii_only
    ).encode()
    quick = _plain_text_chars(data)
    if quick is not None:
        assert quick == _text_chars(json.loads(data))
        assert obj.get("usage") is None
    piece = _piece(data, SWAP)
    assert piece.text_chars == _text_chars(obj) and (piece.usage is None) == (
        obj.get("usage") is None or not obj["usage"]
    )


def test_a_truncated_event_is_still_refused_as_malformed():
    import pytest

    from llm.providers.base import UpstreamError

    with pytest.raises(UpstreamError) as caught:
        _piece(b'{"id":"x","choices":[{"delta":{"content":"oops"}}]', SWAP)
    assert caught.value.kind == "malformed"


def test_an_ordinary_content_event_is_counted_without_a_parse():
    data = json.dumps(
        {
            "id": "c",
            "choices": [{"index": 0, "delta": {"content": "héllo wörld ✓"}, "finish_reason": None}],
            "usage": None,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    assert _plain_text_chars(data) == len("héllo wörld ✓") == 13
    assert _plain_text_chars(data.replace(b"\xc3\xa9", b"\\u00e9")) is None  # an escape: the parse counts it


# --- an event shaped as the last one is framed from its text alone ----------------------------


def _content_event(text: str, model: str = "gpt-4o-2024-08-06", compact: bool = True) -> bytes:
    obj = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}],
    }
    return json.dumps(obj, separators=(",", ":") if compact else (", ", ": "), ensure_ascii=False).encode()


def test_a_stream_of_content_events_takes_the_shortcut_and_gives_the_bytes_of_a_full_scan():
    swap = _model_swapper("gpt-4o")
    texts = ["Hel", "lo, ", "wörld ✓", "", "42"]
    pieces = [_piece(_content_event(text), swap) for text in texts]
    assert swap.like_last(_content_event("again")) is not None  # the shortcut is in use
    for text, piece in zip(texts, pieces, strict=True):
        alone = _piece(_content_event(text), _model_swapper("gpt-4o"))  # a fresh swapper: full scan
        assert (piece.data, piece.text_chars) == (alone.data, alone.text_chars) == (alone.data, len(text))
        assert json.loads(piece.data[6:])["model"] == "gpt-4o"


@settings(max_examples=300, deadline=None)
@given(first=st.text(max_size=20), second=st.text(max_size=20), compact=st.booleans())
def test_the_shortcut_agrees_with_a_full_scan_for_any_next_text(first, second, compact):
    swap = _model_swapper("gpt-4o")
    _piece(_content_event(first, compact=compact), swap)
    following = _content_event(second, compact=compact)
    shortcut, alone = _piece(following, swap), _piece(following, _model_swapper("gpt-4o"))
    assert (shortcut.data, shortcut.text_chars, shortcut.usage) == (alone.data, alone.text_chars, alone.usage)
    assert shortcut.text_chars == len(second)


def test_an_event_of_another_shape_takes_the_full_path():
    swap = _model_swapper("gpt-4o")
    _piece(_content_event("a"), swap)
    other_model = _content_event("b", model="gpt-4o-mini")
    assert swap.like_last(other_model) is None
    usage_tail = _content_event("c")[:-1] + b',"usage":{"prompt_tokens":1,"completion_tokens":1}}'
    assert swap.like_last(usage_tail) is None
    assert _piece(usage_tail, swap).usage is not None
