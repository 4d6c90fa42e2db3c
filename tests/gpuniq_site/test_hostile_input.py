"""Hostile and malformed input on the chat surface: every rejection is an envelope with a catalog
code, nothing is held or charged, and no vendor secret ever reaches the client."""

import json

import httpx
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from billing.models import Hold
from gpuniq_site.errors import CATALOG, ApiError
from llm.validation import parse_body, validate_chat

from ..conftest import FAKE_KEY, make_user

URL = "/v1/openai/chat/completions"


@pytest.fixture
def mallory(committed):
    # Mallory: $1, sends everything she can think of.
    return make_user("mallory", "1")


def post(api_server, user, content: bytes | str, **headers):
    return httpx.post(
        f"{api_server}{URL}",
        content=content,
        timeout=30,
        headers={"Authorization": f"Bearer {user.raw_key}", "Content-Type": "application/json", **headers},
    )


@pytest.mark.parametrize(
    "body,code",
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2, 3]", "invalid_json"),
        (b"", "invalid_json"),
        (json.dumps({"model": "gpt-4o", "messages": "hi"}), "invalid_parameter"),
        (json.dumps({"model": "gpt-4o", "messages": []}), "invalid_parameter"),
        (
            json.dumps({"model": "gpt-4o", "messages": [{"role": "wizard", "content": "x"}]}),
            "invalid_parameter",
        ),
        (json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": 5}]}), "invalid_parameter"),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}), "missing_parameter"),
        (json.dumps({"model": 7, "messages": [{"role": "user", "content": "x"}]}), "invalid_parameter"),
        (
            json.dumps({"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]}),
            "model_not_found",
        ),
        (
            json.dumps({"model": "gpt-4o", "max_tokens": -5, "messages": [{"role": "user", "content": "x"}]}),
            "invalid_parameter",
        ),
        (
            json.dumps(
                {"model": "gpt-4o", "max_tokens": "lots", "messages": [{"role": "user", "content": "x"}]}
            ),
            "invalid_parameter",
        ),
        (
            json.dumps(
                {"model": "gpt-4o", "max_tokens": 10**12, "messages": [{"role": "user", "content": "x"}]}
            ),
            "invalid_parameter",
        ),
        (
            b'{"model": "gpt-4o", "temperature": NaN, "messages": [{"role": "user", "content": "x"}]}',
            "invalid_parameter",
        ),
        (
            json.dumps({"model": "gpt-4o", "temperature": 9, "messages": [{"role": "user", "content": "x"}]}),
            "invalid_parameter",
        ),
        (
            json.dumps({"model": "gpt-4o", "n": 0, "messages": [{"role": "user", "content": "x"}]}),
            "invalid_parameter",
        ),
        (
            json.dumps({"model": "gpt-4o", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}),
            "invalid_parameter",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    ],
)
def test_bad_bodies_get_catalog_errors_and_hold_nothing(api_server, mallory, vendors, body, code):
    response = post(api_server, mallory, body)
    assert response.status_code == CATALOG[code].status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == code
    assert not Hold.objects.filter(account=mallory.account).exists()
    assert vendors["openai"].requests == []


def test_oversized_body_is_413(api_server, mallory):
    from django.conf import settings

    big = (
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "'
        + b"a" * (settings.GPUNIQ_MAX_BODY_BYTES + 10)
        + b'"}]}'
    )
    response = post(api_server, mallory, big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_vendor_keys_and_addresses_never_reach_the_client(api_server, mallory, vendors):
    for fault in ("401", "500", "400", "context"):
        response = post(
            api_server,
            mallory,
            json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": f"[[fault:{fault}]]"}]}),
        )
        text = response.text
        assert FAKE_KEY not in text
        assert vendors["openai"].base_url not in text and str(vendors["openai"].port) not in text
        assert "Traceback" not in text
        assert response.json()["error"]["code"] in CATALOG


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
chat_like = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values | st.sampled_from(["gpt-4o", "claude-haiku-4-5"]),
        "messages": json_values
        | st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "system", "bogus"]), "content": json_values}
            ),
            max_size=3,
        ),
        "max_tokens": json_values,
        "max_completion_tokens": json_values,
        "temperature": json_values,
        "top_p": json_values,
        "n": json_values,
        "stream": json_values,
        "stream_options": json_values,
        "tools": json_values,
    },
)


@hsettings(max_examples=400, deadline=None)
@given(chat_like)
def test_validation_accepts_or_rejects_with_a_catalog_code_never_crashes(body):
    try:
        slug, max_tokens, stream = validate_chat(body)
    except ApiError as error:
        assert error.code in CATALOG and error.status == 400
        return
    assert isinstance(slug, str) and isinstance(stream, bool)
    assert max_tokens is None or (isinstance(max_tokens, int) and max_tokens >= 1)


@hsettings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_parse_to_an_object_or_invalid_json(raw):
    try:
        assert isinstance(parse_body(raw), dict)
    except ApiError as error:
        assert error.code == "invalid_json"
