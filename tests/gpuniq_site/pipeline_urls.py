"""The project's URLconf plus one async view whose stream body raises midway, and a middleware
that marks every response it wraps (pipeline_settings.py declares it in API_MIDDLEWARE)."""

from django.http import StreamingHttpResponse
from django.urls import path
from django.utils.deprecation import MiddlewareMixin

from gpuniq_site import urls

BROKEN_STREAM_PATH = "/v1/llm/test-only/broken-stream"
FIRST_EVENT = b"data: first\n\n"


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


urlpatterns = [path(BROKEN_STREAM_PATH.lstrip("/"), broken_stream), *urls.urlpatterns]
handler404 = urls.handler404
handler500 = urls.handler500
