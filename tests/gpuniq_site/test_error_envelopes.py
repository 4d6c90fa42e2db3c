"""Everything under /v1/ fails in the envelope with a catalog code; never HTML, never a traceback."""

import pytest

from gpuniq_site.errors import CATALOG, ApiError


def test_catalog_has_the_documented_codes_with_status_type_and_doc_url():
    for code in (
        "streaming_required",
        "insufficient_balance",
        "model_not_found",
        "rate_limit_per_key",
        "invalid_api_key",
        "missing_api_key",
        "revoked_api_key",
        "model_not_allowed",
        "spend_cap_reached",
        "invalid_parameter",
        "context_length_exceeded",
        "upstream_error",
        "upstream_timeout",
        "upstream_rate_limited",
        "all_routes_failed",
        "content_policy_violation",
        "job_not_found",
        "chat_not_found",
        "payload_too_large",
        "method_not_allowed",
        "not_found",
        "internal_error",
    ):
        assert code in CATALOG
    assert len(CATALOG) >= 29
    assert all(spec.status >= 400 and spec.type and spec.message for spec in CATALOG.values())


def test_unknown_code_is_a_programming_error():
    with pytest.raises(KeyError):
        ApiError("no_such_code")


@pytest.mark.parametrize(
    "path,envelope", [("/v1/openai/nope", "openai"), ("/v1/llm/nope", "native"), ("/v1/whatever", "native")]
)
def test_unknown_urls_are_404_envelopes(client, path, envelope):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"]["code"] == "not_found"
    assert body["request_id"] == response["x-request-id"]
    assert ("success" in body) == (envelope == "native")


def test_wrong_method_is_405_envelope_with_allow(client):
    response = client.post("/v1/llm/models/catalog", data="{}", content_type="application/json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response["Allow"]


def test_inbound_request_id_is_kept_and_odd_ones_replaced(client, committed):
    kept = client.get("/v1/llm/models/catalog", HTTP_X_REQUEST_ID="trace-12345678")
    replaced = client.get("/v1/llm/models/catalog", HTTP_X_REQUEST_ID="<script>")
    assert kept["x-request-id"] == "trace-12345678"
    assert replaced["x-request-id"].startswith("req_")


def test_error_page_lists_every_code(client):
    page = client.get("/errors/").content.decode()
    for code in CATALOG:
        assert f'id="{code}"' in page
