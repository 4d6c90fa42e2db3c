"""One declared middleware list for every /v1/ request: the lean path of the async views
(gpuniq_site/fast_asgi.py) and Django's handler of the DRF views both build their chain from
settings.API_MIDDLEWARE, and a stream body that fails midway is logged and ended cleanly.

The server here runs tests/gpuniq_site/pipeline_settings.py: the project's settings with one more middleware
in API_MIDDLEWARE (pipeline_urls.StampMiddleware) and a view whose stream body raises."""

import json
import time

import httpx
import pytest
from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.urls import resolve

from gpuniq_site.api_chain import ApiASGIHandler
from gpuniq_site.fast_asgi import LeanApiApp

from ..live import LiveServer
from .pipeline_urls import BROKEN_STREAM_PATH, DONE, FIRST_EVENT, LAST_PART_PATH

LEAN = "/v1/openai/models"  # an async view: the lean path
DRF = "/v1/llm/usage/history"  # a DRF view: Django's handler with the API chain
PAGE = "/healthz"  # a page: the full stack


class SyncOnlyMiddleware:
    sync_capable, async_capable = True, False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)


@pytest.fixture(scope="module")
def pipeline_server(catalog_loaded):
    env = {"DJANGO_SETTINGS_MODULE": "tests.gpuniq_site.pipeline_settings", "GPUNIQ_LOG_FORMAT": "json"}
    server = LiveServer(env=env).start()
    yield server
    server.stop()


@pytest.mark.e2e
def test_a_middleware_declared_in_api_middleware_runs_on_both_api_paths_and_the_pages(pipeline_server):
    assert iscoroutinefunction(resolve(LEAN).func) and not iscoroutinefunction(resolve(DRF).func)
    for path, status in ((LEAN, 401), (DRF, 401), (PAGE, 200)):
        response = httpx.get(pipeline_server.url + path)

        assert (response.status_code, response.headers.get("x-pipeline-stamp")) == (status, "ran"), path
        assert response.headers["x-request-id"].startswith("req_")


@pytest.mark.e2e
def test_a_stream_body_that_fails_midway_is_logged_with_its_request_id_and_ended_cleanly(pipeline_server):
    with httpx.Client(base_url=pipeline_server.url) as client:
        with client.stream("GET", BROKEN_STREAM_PATH) as response:
            body = response.read()  # a cut chunked body would raise RemoteProtocolError here
        request_id = response.headers["x-request-id"]
        after = client.get(PAGE)  # the same kept-alive connection still serves

    assert (response.status_code, body, after.status_code) == (200, FIRST_EVENT, 200)
    [record] = [
        json.loads(line)
        for line in pipeline_server.output().splitlines()
        if line.startswith("{") and "stream body failed" in line
    ]
    assert (record["level"], record["request_id"]) == ("ERROR", request_id)
    assert request_id in record["message"] and "RuntimeError: the stream body broke" in record["exc"]


@pytest.mark.e2e
def test_a_last_part_goes_out_with_the_end_and_the_body_still_finishes(pipeline_server, tmp_path):
    """The response is complete with its LastPart ([DONE] and the chunked end in one write), while
    the body's cleanup after it is still running; that cleanup then runs to its end, uncancelled."""
    gate = tmp_path / "gate"
    with httpx.Client(base_url=pipeline_server.url, timeout=20) as client:
        with client.stream("GET", LAST_PART_PATH, params={"gate": str(gate)}) as response:
            body = response.read()  # complete although the body is still waiting for the gate
        assert (response.status_code, body) == (200, FIRST_EVENT + DONE)
        assert f"finished {gate}" not in pipeline_server.output()
        assert client.get(PAGE).status_code == 200  # the kept-alive connection serves the next request
    gate.touch()
    deadline = time.monotonic() + 30
    while f"finished {gate}" not in pipeline_server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"finished {gate}" in pipeline_server.output()


def test_a_middleware_outside_the_named_groups_is_refused_when_the_api_handlers_are_built(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.gpuniq_site.pipeline_urls.StampMiddleware"]

    for build in (lambda: LeanApiApp(fallback=None), ApiASGIHandler):
        with pytest.raises(
            ImproperlyConfigured, match=r"Not in either group: \['tests.gpuniq_site.pipeline_urls"
        ):
            build()


def test_a_sync_only_middleware_is_refused_on_the_api_paths(settings):
    settings.API_MIDDLEWARE = [
        *settings.API_MIDDLEWARE,
        "tests.gpuniq_site.test_api_pipeline.SyncOnlyMiddleware",
    ]
    settings.MIDDLEWARE = [*settings.API_MIDDLEWARE, *settings.SITE_MIDDLEWARE]

    with pytest.raises(
        ImproperlyConfigured, match="SyncOnlyMiddleware is in API_MIDDLEWARE but is not async"
    ):
        LeanApiApp(fallback=None)
