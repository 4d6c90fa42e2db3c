"""The project's URLconf plus two async stream views (one whose body raises midway, one whose body
goes on with its cleanup after its last part), and a middleware that marks every response it wraps
(pipeline_settings.py declares it in API_MIDDLEWARE)."""

import asyncio
import logging
import os

from django.http import StreamingHttpResponse
from django.urls import path
from django.utils.deprecation import MiddlewareMixin

from gpuniq_site import urls
from gpuniq_site.responses import EventStreamResponse, LastPart

BROKEN_STREAM_PATH = "/v1/llm/test-only/broken-stream"
LAST_PART_PATH = "/v1/llm/test-only/last-part"
FIRST_EVENT = b"data: first\n\n"
DONE = b"data: [DONE]\n\n"


class StampMiddleware(MiddlewareMixin):
    """A third-party-style middleware (sync and async capable): sets x-pipeline-stamp."""

    def process_response(self, request, response):
        response["x-pipeline-stamp"] = "ran"
        return response


async def broken_stream(request):
    async def body():
        yield FIRST_EVENT
        raise RuntimeError("the stream body broke")

    return StreamingHttpResponse(body(), content_type="text/event-stream")


async def last_part(request):
    """[DONE] as the body's LastPart, then a cleanup that waits for the file named in ?gate= and
    logs that it finished."""
    gate = request.GET["gate"]

    async def body():
        yield FIRST_EVENT
        yield LastPart(DONE)
        for _ in range(3000):
            if os.path.exists(gate):
                break
            await asyncio.sleep(0.01)
        logging.getLogger("gpuniq.test").warning("cleanup after the last part finished %s", gate)

    return EventStreamResponse(body())


urlpatterns = [
    path(BROKEN_STREAM_PATH.lstrip("/"), broken_stream),
    path(LAST_PART_PATH.lstrip("/"), last_part),
    *urls.urlpatterns,
]
handler404 = urls.handler404
handler500 = urls.handler500
