"""JSON responses in the project's two envelopes."""

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

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


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(_dumps(payload), status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def request_id_of(request: HttpRequest) -> str:
    rid: str = getattr(request, "request_id", "") or ""
    return rid


def native_ok(
    request: HttpRequest, data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    return json_response(
        {"success": True, "data": data, "request_id": request_id_of(request)}, status, headers
    )


def error_response(request: HttpRequest, error: ApiError) -> HttpResponse:
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


class LastPart(bytes):
    """A stream body's last part (its [DONE]): the lean ASGI path sends it with the response's
    end, in one write, rather than the part and then the end on their own. Anywhere else it is
    the bytes it holds."""


class EventStreamResponse(StreamingHttpResponse):
    """A text/event-stream response. It keeps its async byte iterator in `chunks` so the lean ASGI
    path can send each chunk as it is, without Django's per-chunk wrapping. `direct_sink`: a
    gpuniq_site.direct_send.DirectSink when the body can write to the client itself."""

    direct_sink: Any = None

    def __init__(self, chunks: AsyncIterator[bytes], **kwargs: Any) -> None:
        super().__init__(chunks, content_type="text/event-stream", **kwargs)
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"

    def _set_streaming_content(self, value: AsyncIterator[bytes]) -> None:
        """Whoever wraps `streaming_content` (e.g. to record a chat turn) is what gets sent."""
        super()._set_streaming_content(value)  # type: ignore[misc]  # private hook, not in django-stubs
        self.chunks = value
