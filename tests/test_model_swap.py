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
    event = json.dumps({"choices": [{"delta": {"content": 'set "model": "mine"'}}], "model": "v-1"},
                       separators=(",", ":")).encode()
    swapped = json.loads(SWAP(event))
    assert swapped["model"] == "gpt-4o" and swapped["choices"][0]["delta"]["content"] == 'set "model": "mine"'


text = st.text(alphabet=st.sampled_from('ab"\\: {}model,\n'), max_size=40)


@settings(max_examples=400, deadline=None)
@given(content=text, model=text, compact=st.booleans(), first=st.booleans())
def test_fast_path_agrees_with_the_regular_expression(content, model, compact, first):
    obj = {"model": model, "choices": [{"delta": {"content": content}}]} if first else \
        {"choices": [{"delta": {"content": content}}], "model": model}
    event = json.dumps(obj, separators=(",", ":") if compact else (", ", ": ")).encode()
    assert SWAP(event) == careful(event)
    assert json.loads(SWAP(event))["model"] == "gpt-4o"
