"""JSON responses in the project's two envelopes."""

import json
import logging

from django.http import HttpResponse, StreamingHttpResponse

from .errors import (
    ApiError,
    anthropic_envelope,
    is_anthropic_path,
    is_openai_path,
    native_envelope,
    openai_envelope,
)

log = logging.getLogger(__name__)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def json_response(payload, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(_dumps(payload), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def request_id_of(request) -> str:
    return getattr(request, "request_id", "") or ""


def native_ok(request, data, status: int = 200, headers: dict | None = None) -> HttpResponse:
    return json_response(
        {"success": True, "data": data, "request_id": request_id_of(request)}, status, headers
    )


def error_response(request, error: ApiError) -> HttpResponse:
    """Render `error` in the envelope of the surface the request came in on."""
    rid = request_id_of(request)
    path = getattr(request, "path", "") or ""
    if is_openai_path(path):
        body = openai_envelope(error, rid)
    elif is_anthropic_path(path):
        body = anthropic_envelope(error, rid)
    else:
        body = native_envelope(error, rid)
    response = json_response(body, error.status, error.headers)
    response["x-request-id"] = rid
    return response


class EventStreamResponse(StreamingHttpResponse):
    """A text/event-stream response. It keeps its async byte iterator in `chunks` so the lean ASGI
    path can send each chunk as it is, without Django's per-chunk wrapping."""

    def __init__(self, chunks, **kwargs):
        super().__init__(chunks, content_type="text/event-stream", **kwargs)
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"

    def _set_streaming_content(self, value):
        """Whoever wraps `streaming_content` (e.g. to record a chat turn) is what gets sent."""
        super()._set_streaming_content(value)
        self.chunks = value
