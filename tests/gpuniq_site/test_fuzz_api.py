"""Fuzzing every JSON endpoint (OpenAI-compatible, native, the Anthropic Messages and Responses
doors, the payment webhooks) with hostile bodies: deep nesting, lone surrogates, NUL, huge numbers,
wrong types, arrays instead of objects.

Whatever arrives: never a 500, every error is the surface's envelope with a catalog code and
that code's status, and once the jobs it started are finished and read back no hold is left
open. Bounded: a fixed number of examples against one real server and one real worker; the
webhooks, authenticated as their vendors would (signed, or from YooKassa's network), in process."""

import hashlib
import hmac
import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from billing.models import Hold
from gpuniq_site.errors import CATALOG

from ..conftest import make_user
from ..rails import btcpay, yookassa  # noqa: F401 (fixtures)

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}
SCHEMA = {"type": "object", "properties": {"q": {"type": "string"}}}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
CLAUDE = {  # every kind of block the Messages door translates, so any of them can be the one mutated
    "model": "claude-haiku-4-5",
    "max_tokens": 16,
    "system": [{"type": "text", "text": "be brief"}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            ],
        },
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
    ],
    "tools": [{"name": "get", "description": "look up", "input_schema": SCHEMA}],
    "tool_choice": {"type": "auto"},
    "stop_sequences": ["END"],
    "metadata": {"user_id": "u1"},
}
RESPONSES = {  # every kind of input item and part the Responses door translates
    "model": "gpt-4o",
    "instructions": "be brief",
    "max_output_tokens": 16,
    "input": [
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "hi"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "low"},
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "get", "arguments": '{"q": "x"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ],
    "tools": [{"type": "function", "name": "get", "parameters": SCHEMA}],
    "tool_choice": "auto",
    "text": {"format": {"type": "text"}},
    "temperature": 0.5,
}
ENDPOINTS = [  # (method, path, a valid body to mutate); {chat} is a chat of the fuzzing user
    ("POST", "/v1/anthropic/v1/messages", CLAUDE),
    ("POST", "/v1/messages", {**CLAUDE, "model": "gpt-4o"}),  # translated to Chat Completions
    ("POST", "/v1/anthropic/v1/messages/count_tokens", CLAUDE),
    ("POST", "/v1/openai/responses", RESPONSES),
    ("POST", "/v1/openai/responses", {**RESPONSES, "model": "claude-haiku-4-5"}),  # translated
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

RAW_VALUES = [
    '"\\ud800"',
    '"\\udc00\\ud800"',
    '"\\u0000"',
    '"\\uDFFF"',
    "1e400",
    "-1E+999",
    "NaN",
    "1" + "0" * 400,
]
hostile_text = st.sampled_from(["\ud800", "x\udfffy", "\x00", "a\x00b", "\ud83d", "\U0001f600", "", " " * 3])
huge_number = st.sampled_from(
    [
        10**400,
        -(10**40),
        2**63,
        2**64 + 1,
        1e308,
        -1e308,
        5e-324,
        0.1,
        float("inf"),
        float("-inf"),
        float("nan"),
    ]
)
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
def bodies(draw, template: dict, anywhere=hostile_value) -> bytes:
    """Raw bytes: the valid template with one hostile change (`anywhere`: what may replace a value
    at any depth)."""
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
    if how == "raw_escape":  # escapes and numbers only the raw JSON can carry
        raw_value = draw(st.sampled_from(RAW_VALUES))
        field = draw(st.sampled_from(sorted(body)))
        return json.dumps(body).replace(json.dumps(body[field]), raw_value, 1).encode()
    field = draw(st.sampled_from(sorted(body) + ["n", "stream", "size", "duration", "extra"]))
    value = draw(hostile_value)
    if how == "nested":  # any value at any depth: a role, a block's type, a tool's schema, ...
        container, key = draw(st.sampled_from(_positions(body)))
        container[key] = draw(anywhere)
    else:
        body[field] = value
    return json.dumps(body, allow_nan=True).encode("utf-8", "surrogatepass")


def _positions(body: dict) -> list[tuple[dict | list, str | int]]:
    """Every place a value sits in `body`: (its container, its key or index)."""
    found: list[tuple[dict | list, str | int]] = []
    stack: list[dict | list] = [body]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        for key in keys:
            found.append((node, key))
            if isinstance(node[key], (dict, list)):
                stack.append(node[key])
    return found


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
        max_examples=450,
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


WEBHOOKS = {  # path → an event shaped as its vendor sends it, to mutate
    "/webhooks/stripe": {
        "id": "evt_fuzz",
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_fuzz", "object": "checkout.session", "metadata": {"a": "b"}}},
    },
    "/webhooks/yookassa": {
        "type": "notification",
        "event": "payment.succeeded",
        "object": {"id": "2f1e-fuzz", "status": "succeeded", "amount": {"value": "9.00", "currency": "RUB"}},
    },
    "/webhooks/btcpay": {
        "deliveryId": "fuzzdelivery",
        "type": "InvoiceSettled",
        "invoiceId": "FUZZINVOICE",
        "storeId": "StoreTest1",
        "metadata": {"orderId": "x"},
    },
}
STRIPE_SECRET = "whsec_fuzz"
# Below the top level, a signed event is the vendor's own object: only what PostgreSQL cannot store
# is fuzzed there. A shape Stripe never sends (metadata: -1) fails its handler, which answers 500 so
# that Stripe retries, and records the event as failed; only the secret's holder can send one.
STORABLE_TROUBLE = st.one_of(hostile_text, huge_number)


def _webhook_headers(path: str, raw: bytes, btcpay_secret: str) -> dict:
    """Authenticated as the vendor would be: signed (Stripe, BTCPay) or from YooKassa's network."""
    if path.endswith("stripe"):
        stamp = int(time.time())
        mac = hmac.new(STRIPE_SECRET.encode(), f"{stamp}.".encode() + raw, hashlib.sha256).hexdigest()
        return {"HTTP_STRIPE_SIGNATURE": f"t={stamp},v1={mac}"}
    if path.endswith("btcpay"):
        return {
            "HTTP_BTCPAY_SIG": "sha256=" + hmac.new(btcpay_secret.encode(), raw, hashlib.sha256).hexdigest()
        }
    return {"REMOTE_ADDR": "127.0.0.1"}


def test_no_webhook_body_gets_a_500(client, settings, committed, yookassa, btcpay):
    settings.STRIPE_WEBHOOK_SECRET = STRIPE_SECRET

    @hsettings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(st.data())
    def one_delivery(data):
        path = data.draw(st.sampled_from(sorted(WEBHOOKS)))
        raw = data.draw(bodies(WEBHOOKS[path], anywhere=STORABLE_TROUBLE))
        headers = _webhook_headers(path, raw, btcpay.webhook_secret)
        response = client.post(path, raw, content_type="application/json", **headers)
        assert response.status_code in (200, 400), response.content[:300]
        body = response.json()
        if response.status_code == 400:
            assert body["received"] is False and CATALOG[body["code"]].status == 400, body

    one_delivery()
