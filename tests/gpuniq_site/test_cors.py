"""CORS: the API surfaces answer browsers on any origin without credentials (keys travel in
headers, never cookies); the dashboard's pages answer no cross-origin request."""

import httpx
import pytest

from ..conftest import make_user

pytestmark = pytest.mark.e2e
ORIGIN = "https://app.example.org"
BROWSER_HEADERS = "anthropic-dangerous-direct-browser-access,anthropic-version,content-type,x-api-key"


@pytest.mark.parametrize(
    "path", ["/v1/anthropic/v1/messages", "/v1/messages", "/v1/openai/chat/completions", "/v1/llm/balance"]
)
def test_api_preflight_allows_any_origin_without_credentials(api_server, path):
    response = httpx.options(
        f"{api_server}{path}",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": BROWSER_HEADERS,
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"] == BROWSER_HEADERS
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in response.headers


def test_api_responses_carry_the_origin_header_errors_too(api_server, committed, vendors):
    # Nell: calls the Anthropic door from a web page.
    nell = make_user("nell", "1")
    ok = httpx.post(
        f"{api_server}/v1/anthropic/v1/messages",
        timeout=30,
        headers={
            "Origin": ORIGIN,
            "x-api-key": nell.raw_key,
            "anthropic-version": "2023-06-01",
            "anthropic-dangerous-direct-browser-access": "true",
        },
        json={
            "model": "gpt-4o",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "from a browser"}],
        },
    )
    assert ok.status_code == 200 and ok.json()["content"][0]["text"] == "Echo: from a browser"
    assert ok.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in ok.headers["access-control-expose-headers"]
    refused = httpx.post(f"{api_server}/v1/openai/chat/completions", headers={"Origin": ORIGIN}, json={})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in refused.headers


@pytest.mark.parametrize("path", ["/", "/login/", "/errors/"])
def test_dashboard_pages_get_no_cors(api_server, path):
    preflight = httpx.options(
        f"{api_server}{path}", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    page = httpx.get(f"{api_server}{path}", headers={"Origin": ORIGIN})
    for response in (preflight, page):
        assert not any(name.startswith("access-control-") for name in response.headers)
