"""Fuzzing every JSON endpoint under /v1/ (OpenAI-compatible and native) with hostile bodies:
deep nesting, lone surrogates, NUL, huge numbers, wrong types, arrays instead of objects.

Whatever arrives: never a 500, every error is the surface's envelope with a catalog code and
that code's status, and once the jobs it started are finished and read back no hold is left
open. Bounded: a fixed number of examples against one real server and one real worker."""

import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from billing.models import Hold
from gpuniq_site.errors import CATALOG

from ..conftest import make_user

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}
ENDPOINTS = [  # (method, path, a valid body to mutate); {chat} is a chat of the fuzzing user
    ("POST", "/v1/openai/chat/completions", CHAT),
    ("POST", "/v1/openai/images/generations", {"model": "gpt-image-1", "prompt": "a cabin"}),
    ("POST", "/v1/llm/chat/completions", CHAT),
    ("POST", "/v1/llm/chat/jobs", CHAT),
    ("POST", "/v1/llm/chats", {"title": "t", "model": "gpt-4o", "system_prompt": "be brief"}),
    ("PATCH", "/v1/llm/chats/{chat}", {"title": "renamed"}),
    ("POST", "/v1/llm/chats/{chat}/messages", {"message": "hi"}),
    ("POST", "/v1/llm/terminal/commands", {"prompt": "list files"}),
    ("POST", "/v1/llm/images/generations", {"model": "gpt-image-1", "prompt": "a cabin"}),
    ("POST", "/v1/llm/images/jobs", {"model": "nano-banana", "prompt": "a cabin"}),
    ("POST", "/v1/llm/videos/jobs", {"model": "kling-2-6", "prompt": "a cat"}),
]
JOB_POLLS = {
    "/v1/llm/chat/jobs": "/v1/llm/chat/jobs/",
    "/v1/llm/images/jobs": "/v1/llm/images/jobs/",
    "/v1/llm/videos/jobs": "/v1/llm/videos/jobs/",
}

hostile_text = st.sampled_from(["\ud800", "x\udfffy", "\x00", "a\x00b", "\ud83d", "\U0001f600", "", " " * 3])
huge_number = st.sampled_from([10**400, -(10**40), 2**63, 2**64 + 1, 1e308, -1e308, 5e-324, 0.1])
wrong_type = st.sampled_from([[], {}, [1, 2], {"a": 1}, True, False, None, "7", 7, -1, 1.5])
hostile_value = st.one_of(
    hostile_text,
    huge_number,
    wrong_type,
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=8,
    ),
)


def _nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def bodies(draw, template: dict) -> bytes:
    """Raw bytes: the valid template with one hostile change."""
    how = draw(st.sampled_from(["field", "nested", "deep", "array", "scalar", "digits", "raw_escape"]))
    if how == "deep":
        return _nested(
            draw(st.sampled_from([100, 999, 5000, 100_000])), draw(st.sampled_from(["array", "object"]))
        )
    if how == "array":
        return json.dumps(draw(st.sampled_from([[template], [], [[template]]]))).encode()
    if how == "scalar":
        return json.dumps(draw(st.sampled_from([None, 1, "body", True]))).encode()
    if how == "digits":  # a number longer than Python's int conversion limit
        return b'{"max_tokens": ' + b"9" * draw(st.sampled_from([4301, 20_000])) + b"}"
    body = json.loads(json.dumps(template))
    if how == "raw_escape":  # escapes only the raw JSON can carry
        escape = draw(st.sampled_from(["\\ud800", "\\udc00\\ud800", "\\u0000", "\\uDFFF"]))
        field = draw(st.sampled_from(sorted(body)))
        return json.dumps(body).replace(json.dumps(body[field]), f'"{escape}"', 1).encode()
    field = draw(st.sampled_from(sorted(body) + ["n", "stream", "size", "duration", "extra"]))
    value = draw(hostile_value)
    if how == "nested" and isinstance(body.get("messages"), list):
        body["messages"][0][draw(st.sampled_from(["content", "role", "name"]))] = value
    else:
        body[field] = value
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def fuzzer(catalog_loaded, django_db_blocker):
    # Fuzz: $50 and a limit the fuzzing will not reach, so every answer is about the body.
    with django_db_blocker.unblock():
        return make_user("fuzz", "50", rpm=100_000)


def _check(response) -> None:
    assert response.status_code != 500, response.text[:500]
    if response.status_code < 400:
        return
    assert response.headers["content-type"] == "application/json", response.text[:300]
    body = response.json()
    assert body["error"]["code"] in CATALOG, body
    assert response.status_code == CATALOG[body["error"]["code"]].status, body
    assert body["request_id"] == response.headers["x-request-id"]


def _settle_jobs(client, started) -> None:
    """Wait for each job the fuzzing started to finish, and read it back (which charges it)."""
    deadline = time.monotonic() + 90
    for poll in started:
        while time.monotonic() < deadline:
            data = client.get(f"{poll}?wait=5" if "chat/jobs" in poll else poll).json()["data"]
            if data["status"] in ("completed", "failed"):
                break
            time.sleep(0.2)


@pytest.mark.e2e
def test_no_body_gets_a_500_or_leaves_a_hold_open(api_server, celery_worker_proc, fuzzer, committed, vendors):
    client = httpx.Client(
        base_url=api_server,
        timeout=60,
        headers={"X-API-Key": fuzzer.raw_key, "Content-Type": "application/json"},
    )
    chat_id = client.post("/v1/llm/chats", json={"title": "fuzz"}).json()["data"]["id"]
    started: list[str] = []

    @hsettings(
        max_examples=300,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(st.data())
    def one_request(data):
        method, path, template = data.draw(st.sampled_from(ENDPOINTS))
        raw = data.draw(bodies(template))
        response = client.request(method, path.format(chat=chat_id), content=raw)
        _check(response)
        if response.status_code == 202 and path in JOB_POLLS:
            started.append(JOB_POLLS[path] + response.json()["data"]["job_id"])

    try:
        one_request()
        _settle_jobs(client, started)
    finally:
        client.close()
    open_holds = Hold.objects.filter(account=fuzzer.account, status=Hold.OPEN)
    assert not open_holds.exists(), list(open_holds.values("id", "purpose", "request_id"))
