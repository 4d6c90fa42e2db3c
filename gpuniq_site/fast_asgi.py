"""A lean ASGI path for the async API views (the hot path).

Django's ASGI handler spends more per request than the whole gateway logic: request signals
whose receivers are sync (a thread hop each), `response.close()` through sync_to_async, and a
fresh thread-sensitive executor per request. Async views under /v1/ need none of it: their
database work runs through gpuniq_site.db.run_db, which looks after its own connections.

This handler resolves the URL with Django's resolver, builds Django's own ASGIRequest, runs the
view with the request-id and error-envelope behaviour of our middleware, and sends the response
itself (streaming included, cancelling the body when the client disconnects). Sync views (DRF)
and anything it does not resolve go to the normal Django handler.
"""

import asyncio
import io
import logging
from functools import lru_cache

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.urls import Resolver404, get_resolver

from . import metrics
from .errors import ApiError
from .middleware import ApiErrorMiddleware, RequestIdMiddleware, api_exception_to_error
from .responses import error_response

log = logging.getLogger("gpuniq.asgi")


@lru_cache(maxsize=4096)
def _match(path: str):
    try:
        match = get_resolver().resolve(path)
    except Resolver404:
        return None
    return match if iscoroutinefunction(match.func) else None


class _Disconnected(Exception):
    pass


async def _read_body(receive) -> bytes | None:
    """The whole body, or None when it is larger than the limit."""
    limit = settings.GPUNIQ_MAX_BODY_BYTES
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            return None
        chunks.append(body)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _headers(response) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin1"), str(value).encode("latin1")) for name, value in response.items()]


async def _send_streaming(request, response, send, receive) -> None:
    """Send the body from this task; a watcher cancels it when the client goes away (the body's
    finally blocks then settle the bill). One task more per stream, not two."""
    task = asyncio.current_task()
    gone = False

    async def watch():
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        first = True
        async for part in getattr(response, "chunks", None) or response:
            if part:
                if first:
                    first = False
                    metrics.observe_first_chunk(request)
                await send({"type": "http.response.body", "body": bytes(part), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()  # our own cancellation: the client left, and that is not an error
    finally:
        watcher.cancel()


class LeanApiApp:
    def __init__(self, fallback):
        self.fallback = fallback
        self.request_ids = RequestIdMiddleware(lambda request: None)
        self.envelopes = ApiErrorMiddleware(lambda request: None)

    async def __call__(self, scope, receive, send):
        match = _match(scope["path"])
        if match is None:
            return await self.fallback(scope, receive, send)
        try:
            body = await _read_body(receive)
        except _Disconnected:
            return
        request = ASGIRequest(scope, io.BytesIO(body or b""))
        self.request_ids.before(request)
        if body is None:
            response = error_response(
                request, ApiError("payload_too_large", limit=settings.GPUNIQ_MAX_BODY_BYTES)
            )
        else:
            response = await self._run(request, match)
        response = self.envelopes.after(request, self.request_ids.after(request, response))
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": _headers(response)}
        )
        if response.streaming:
            await _send_streaming(request, response, send, receive)
        else:
            await send({"type": "http.response.body", "body": response.content, "more_body": False})

    async def _run(self, request, match):
        request.resolver_match = match
        try:
            return await match.func(request, *match.args, **match.kwargs)
        except Exception as exc:  # the same mapping as ApiErrorMiddleware.process_exception
            return error_response(request, api_exception_to_error(request, exc) or ApiError("internal_error"))
