"""The fused relay on the real server (uvicorn with httptools, the fake OpenAI on loopback): a
stream whose events arrive one read at a time goes through it, and the client gets what a server
with the fused relay switched off sends (same bytes but for the vendor's ids, same bill); a
browser's request (CORS wraps the ASGI send) keeps the generic path; a client leaving a fused
stream pays for the prompt and the output so far."""

import re
from decimal import Decimal

import httpx
import pytest

from billing.models import Hold

from ..conftest import balance_of, make_user, service_extra_env, usage_rows
from ..live import LiveServer, samples, value
from .test_chat_openai_compat import wait_for_row

CHAT = "/v1/openai/chat/completions"


@pytest.fixture(scope="module")
def generic_server(catalog_loaded, fake_vendors):
    server = LiveServer(env={**service_extra_env(fake_vendors), "GPUNIQ_STREAM_FUSED_RELAY": "0"}).start()
    yield server.url
    server.stop()


@pytest.fixture
def slow_vendor(vendors):
    vendors["openai"].chunk_delay = 0.02  # every event in a read of its own
    yield vendors["openai"]
    vendors["openai"].chunk_delay = 0.0


def fused_streams(base: str) -> float:
    return value(samples(base), "gpuniq_streams_fused_total")


def fed_streams(base: str) -> float:
    return value(samples(base), "gpuniq_streams_fed_total")


def stream(base: str, user, content: str, **headers) -> bytes:
    body = {
        "model": "gpt-4o",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": content}],
    }
    auth = {"Authorization": f"Bearer {user.raw_key}", **headers}
    with httpx.stream("POST", base + CHAT, headers=auth, json=body, timeout=30) as response:
        assert response.status_code == 200
        return response.read()


def without_ids(body: bytes) -> bytes:
    return re.sub(rb'"(id|created)": ?("[^"]*"|\d+)', rb'"\1":_', body)


def test_a_slow_stream_is_fused_and_reads_as_the_generic_servers(
    api_server, generic_server, committed, slow_vendor
):
    fused_user, generic_user = make_user("fused", "5"), make_user("generic", "5")
    words = " ".join(f'wörd{i} "q"' for i in range(12))
    before = fused_streams(api_server), fused_streams(generic_server), fed_streams(api_server)
    fused = stream(api_server, fused_user, words)
    generic = stream(generic_server, generic_user, words)
    assert (fused_streams(api_server), fused_streams(generic_server)) == (before[0] + 1, before[1])
    assert fed_streams(api_server) == before[2] + 1  # its reads in the vendor transport's callback
    assert fused.endswith(b"data: [DONE]\n\n") and b"cost_usd" in fused and fused.count(b'"content":') > 12
    assert without_ids(fused) == without_ids(generic)
    [fused_row], [generic_row] = usage_rows(fused_user), usage_rows(generic_user)
    assert (fused_row.prompt_tokens, fused_row.completion_tokens, fused_row.cost_usd) == (
        generic_row.prompt_tokens,
        generic_row.completion_tokens,
        generic_row.cost_usd,
    )
    assert fused_row.cost_usd > 0 and fused_row.status == generic_row.status == "ok"


def test_a_browser_request_keeps_the_generic_path(api_server, committed, slow_vendor):
    user = make_user("browser", "5")
    before = fused_streams(api_server)
    body = stream(api_server, user, "from a page", Origin="https://app.example")
    assert body.endswith(b"data: [DONE]\n\n") and fused_streams(api_server) == before


def test_a_client_leaving_a_fused_stream_pays_for_the_prompt_and_output_so_far(
    api_server, committed, slow_vendor
):
    user = make_user("leaver", "5")
    before = fused_streams(api_server)
    words = " ".join(f"w{i}" for i in range(200))
    body = {
        "model": "gpt-4o",
        "stream": True,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": words}],
    }
    auth = {"Authorization": f"Bearer {user.raw_key}"}
    with httpx.stream("POST", api_server + CHAT, headers=auth, json=body, timeout=30) as response:
        for i, _ in enumerate(response.iter_lines()):
            if i > 8:
                break  # leave mid-stream
    assert slow_vendor.wait_for_disconnects(1, timeout=5)
    row = wait_for_row(user)
    assert fused_streams(api_server) == before + 1
    assert row.status == "cancelled" and row.completion_tokens > 0
    assert 0 < row.cost_usd < Decimal("0.01")
    assert balance_of(user) == Decimal("5") - row.cost_usd
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()
