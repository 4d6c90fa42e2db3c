"""The simulator never stands in for a real vendor (issue 12 §5).

A server as `make run` starts it (GPUNIQ_SANDBOX=1) with the vendors' keys configured — pointing at
the loopback fakes — except the OpenRouter-style fallback, which has no key and so would be served by
the sandbox. A real vendor that fails must come back as a catalog error that costs nothing, never
as an HTTP 200 `x-gpuniq-simulated: true` that is charged; models with no keyed vendor at all are
still answered by the simulator."""

from decimal import Decimal

import httpx
import pytest

from billing import ledger
from billing.models import Hold, LedgerEntry
from gpuniq_site.errors import CATALOG

from ..conftest import balance_of, make_user, service_extra_env, usage_rows
from ..live import LiveServer

NO_KEY = (
    "UPSTREAM_FALLBACK_API_KEY",
    "UPSTREAM_FALLBACK_BASE_URL",
    "UPSTREAM_FALLBACK_IMAGES_API_KEY",
    "UPSTREAM_FALLBACK_IMAGES_BASE_URL",
)


@pytest.fixture(scope="module")
def sandbox_server(catalog_loaded, fake_vendors):
    env = {k: v for k, v in service_extra_env(fake_vendors).items() if k not in NO_KEY}
    server = LiveServer(env={**env, "GPUNIQ_SANDBOX": "1"}).start()
    yield server.url
    server.stop()


@pytest.fixture
def sam(committed):
    # Sam: $3, runs the gateway in sandbox mode with some vendor keys.
    return make_user("sam", "3")


def chat(server, user, model, text):
    return httpx.post(
        f"{server}/v1/openai/chat/completions",
        headers={"Authorization": f"Bearer {user.raw_key}"},
        json={"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )


def nothing_charged(user, response, code):
    assert response.status_code >= 400 and "x-gpuniq-simulated" not in response.headers, response.text
    assert response.json()["error"]["code"] == code and code in CATALOG
    assert balance_of(user) == Decimal("3")
    assert not LedgerEntry.objects.filter(account=user.account, kind="charge").exists()
    assert not Hold.objects.filter(account=user.account, status=Hold.OPEN).exists()
    [row] = usage_rows(user)
    assert (row.status, row.error_code, row.cost_usd) == ("error", code, Decimal("0"))
    assert ledger.find_mismatches() == []


# one model per fault: no route collects the three failures that would cool it down for other tests
@pytest.mark.parametrize(
    "model, fault, code",
    [
        ("gpt-4.1", "500", "upstream_error"),
        ("o3-mini", "503", "upstream_error"),
        ("gpt-5", "429", "upstream_rate_limited"),
        ("o3", "401", "upstream_error"),
        ("gpt-5.2", "404", "upstream_error"),
        ("claude-sonnet-4-5", "500", "upstream_error"),
        ("gemini-2.5-pro", "503", "upstream_error"),
    ],
)
def test_a_failing_real_chat_vendor_is_a_catalog_error_and_costs_nothing(
    sandbox_server, sam, vendors, model, fault, code
):
    response = chat(sandbox_server, sam, model, f"hello [[fault:{fault}]]")
    nothing_charged(sam, response, code)


def test_a_model_whose_vendors_all_lack_a_key_is_still_simulated(sandbox_server, sam, vendors):
    response = chat(sandbox_server, sam, "deepseek-v4-pro", "hello")  # its only route is the keyless fallback
    assert response.status_code == 200 and response.headers["x-gpuniq-simulated"] == "true"
    assert response.json()["system_fingerprint"] == "gpuniq-sandbox"
    assert not vendors["openai"].requests  # nothing reached a vendor


def test_a_working_real_vendor_is_not_marked_simulated(sandbox_server, sam, vendors):
    response = chat(sandbox_server, sam, "gpt-4o", "hello")
    assert response.status_code == 200 and "x-gpuniq-simulated" not in response.headers
    assert response.json()["choices"][0]["message"]["content"] == "Echo: hello"


@pytest.mark.parametrize("fault, code", [("no_image", "no_output_delivered"), ("500", "upstream_error")])
def test_a_real_image_vendor_that_delivers_nothing_is_an_error_and_costs_nothing(
    sandbox_server, sam, vendors, fault, code
):
    response = httpx.post(
        f"{sandbox_server}/v1/openai/images/generations",
        timeout=30,
        headers={"Authorization": f"Bearer {sam.raw_key}"},
        json={"model": "gpt-image-1-5", "prompt": f"a red fox [[fault:{fault}]]"},
    )
    nothing_charged(sam, response, code)
    assert vendors["openai_images"].requests  # the real vendor was called
