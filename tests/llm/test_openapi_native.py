"""The native API's OpenAPI schema (/v1/llm/openapi.json) and reference page (/v1/llm/docs):
every /v1/llm/ route is described, every described method exists, and a bounded property-based
run (schemathesis, positive and negative examples) against the live server finds no 5xx."""

import re
import time
from collections import Counter

import httpx
import pytest
import schemathesis
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from ..conftest import make_user

META_ROUTES = {"native-openapi", "native-docs"}  # the schema and its page describe the API, not part of it
METHODS = {"get", "post", "put", "patch", "delete"}


def native_routes():
    """(OpenAPI-style path, URLPattern) for every route under /v1/llm/."""

    def walk(patterns, prefix):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), p

    for route, pattern in walk(get_resolver().url_patterns, ""):
        if route.startswith("v1/llm/") and pattern.name not in META_ROUTES:
            yield "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route), pattern


@pytest.fixture(scope="module")
def spec(api_server):
    r = httpx.get(f"{api_server}/v1/llm/openapi.json")  # public: no key
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    return r.json()


def test_every_native_route_is_in_the_schema(spec):
    routes = dict(native_routes())
    assert len(routes) >= 12
    missing = sorted(set(routes) - set(spec["paths"]))
    assert not missing, (
        f"undocumented /v1/llm/ routes (add them to <app>/openapi_paths.py or use DRF): {missing}"
    )
    assert not set(spec["paths"]) - set(routes), "the schema describes routes that do not exist"
    for path, pattern in routes.items():
        view_class = getattr(pattern.callback, "view_class", None)
        if view_class is not None:  # DRF: every handler method is documented
            handlers = {m for m in METHODS if hasattr(view_class, m)}
            assert handlers == set(spec["paths"][path]) & METHODS, path


def test_every_documented_operation_answers_as_described(api_server, spec):
    """Without a key, a documented method gets 401; a public one a status it documents; never a 405."""
    for path, item in spec["paths"].items():
        url = api_server + re.sub(r"\{\w+\}", "1", path)
        for method in set(item) & METHODS:
            operation = item[method]
            r = httpx.request(method.upper(), url, json={} if method in ("post", "patch") else None)
            if operation["security"]:
                assert r.status_code == 401, (method, path, r.text[:200])
            else:
                assert str(r.status_code) in operation["responses"], (method, path, r.status_code)
            assert operation["operationId"] and operation["summary"]
            assert {"200", "201", "202"} & set(operation["responses"]), (method, path)


def test_schema_shape(spec):
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "GPUniq native LLM API"
    assert set(spec["components"]["securitySchemes"]) == {"ApiKeyAuth", "BearerAuth"}
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"]["name"] == "X-API-Key"
    operation_ids = [
        op["operationId"] for item in spec["paths"].values() for m, op in item.items() if m in METHODS
    ]
    assert len(operation_ids) == len(set(operation_ids))
    messages = spec["paths"]["/v1/llm/chats/{chat_id}/messages"]["post"]
    assert messages["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatTurnRequest"
    }
    body = spec["components"]["schemas"]["ChatCreateRequest"]["properties"]
    assert set(body) == {"model", "title", "system_prompt"}
    schemathesis.openapi.from_dict(spec)  # loads as a valid OpenAPI document


def test_docs_page_lists_every_operation_without_external_scripts(api_server, spec):
    r = httpx.get(f"{api_server}/v1/llm/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    for path, item in spec["paths"].items():
        for method in set(item) & METHODS:
            assert f"{method.upper()} {path}" in page
    assert not re.search(r"""<(script|link)[^>]+(src|href)=["'](https?:)?//""", page), (
        "no CDN: assets are local"
    )


@pytest.fixture(scope="module")
def fuzzer(committed_module):
    return make_user("fuzz", "50", rpm=100_000)


@pytest.fixture(scope="module")
def committed_module(catalog_loaded, django_db_blocker):
    with django_db_blocker.unblock():
        yield


FUZZED = r"^/v1/llm/(chats.*|terminal/commands|usage/.*|balance|models.*|chat/completions)$"


def test_property_based_run_finds_no_server_errors(api_server, spec, fuzzer, fake_vendors):
    schema = schemathesis.openapi.from_dict(spec).include(path_regex=FUZZED)
    headers = {"X-API-Key": fuzzer.raw_key}
    failures, calls, started, statuses = [], 0, time.monotonic(), Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 11
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fixed = {}
            if (
                "{chat_id}" in operation.path and mode is GenerationMode.POSITIVE
            ):  # a real chat, not only 404s
                fixed["chat_id"] = httpx.post(
                    f"{api_server}/v1/llm/chats", headers=headers, json={"model": "gpt-4o"}
                ).json()["data"]["id"]

            @given(
                case=operation.as_strategy(
                    generation_mode=mode,
                    path_parameters=fixed or None,
                    headers=headers if mode is GenerationMode.POSITIVE else None,
                )
            )
            @settings(
                max_examples=25,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            def run(case):
                nonlocal calls
                calls += 1
                response = case.call(base_url=api_server, headers=headers, timeout=30)
                statuses[(case.method, case.path, response.status_code)] += 1
                if response.status_code >= 500 and response.status_code not in (502, 503, 504):
                    failures.append((case.method, case.formatted_path, case.body, response.text[:300]))
                content_type = response.headers.get("content-type") or [""]
                content_type = content_type[0] if isinstance(content_type, list) else content_type
                assert content_type.startswith(("application/json", "text/event-stream")), content_type

            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (e.g. no parameters at all)
                assert mode is GenerationMode.NEGATIVE, operation.label
    elapsed = time.monotonic() - started
    assert not failures, failures
    print(
        f"schemathesis: {len(operations)} operations, {calls} calls in {elapsed:.1f}s: "
        f"{sorted(statuses.items())}"
    )
    assert calls >= 100 and elapsed < 60, (calls, elapsed)
