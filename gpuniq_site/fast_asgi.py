"""A lean ASGI path for the async API views (the hot path).

Django's ASGI handler spends more per request than the whole gateway logic: request signals
whose receivers are sync (a thread hop each), `response.close()` through sync_to_async, and a
fresh thread-sensitive executor per request. Async views under /v1/ need none of it: their
database work runs through gpuniq_site.db.run_db, which looks after its own connections.

This handler resolves the URL with Django's resolver, builds Django's own ASGIRequest, runs the
view inside the API's middleware chain (settings.API_MIDDLEWARE, loaded by
gpuniq_site.api_chain exactly as the DRF views' handler loads it) and sends the response itself
(streaming included, cancelling the body when the client disconnects). A stream body that fails
midway is logged with its request id and still ended cleanly. Sync views (DRF) and anything it
does not resolve go to the fallback handler.
"""

import asyncio
import io
import logging
from functools import lru_cache

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.base import BaseHandler
from django.urls import Resolver404, get_resolver

from . import direct_send, metrics
from .api_chain import ApiMiddlewareLoader
from .errors import ApiError
from .responses import LastPart, error_response

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


async def _relay(request, response, send, before_end=None, start=None) -> None:
    """Send the body's parts, then its end. A body that raises is logged with the request id and
    its end is still sent: the client gets a complete (if short) response, not a cut connection.
    `start`: the response's start, not sent yet: it leaves with the first part, in one write
    (direct_send.send_together), and the body's direct writer is attached then. A LastPart goes
    out with the end; `before_end()` is called first (the body may still run its cleanup after
    it, once the response is complete)."""
    parts = aiter(getattr(response, "chunks", None) or response)
    first, ended = True, False
    while True:
        try:
            part = await anext(parts)
        except StopAsyncIteration:
            break
        except Exception:
            log.exception(
                "stream body failed on %s %s request_id=%s; ending the response",
                request.method,
                request.path,
                getattr(request, "request_id", ""),
            )
            break
        if part and not ended:
            if first:
                first = False
                metrics.observe_first_chunk(request)
            ended = type(part) is LastPart  # the body's end goes with it
            if ended and before_end is not None:
                before_end()
            message = {"type": "http.response.body", "body": bytes(part), "more_body": not ended}
            if start is None:
                await send(message)
            else:
                await _start_with(send, start, message, response)
                start = None
        elif part:
            request_id = getattr(request, "request_id", "")
            log.warning("a stream body went on after its last part request_id=%s", request_id)
    if start is not None:
        await send(start)
    if not ended:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _start_with(send, start: dict, message: dict, response) -> None:
    """The response's start and its first body message; then the body may write for itself."""
    if message["more_body"]:
        await direct_send.send_together(send, [start, message])
        direct_send.attach(response, send)
    else:  # the end is not held back: uvicorn may close the connection on it
        await send(start)
        await send(message)


async def _send_streaming(request, response, send, receive, start=None) -> None:
    """Send the body from this task; a watcher cancels it when the client goes away (the body's
    finally blocks then settle the bill). One task more per stream, not two."""
    task = asyncio.current_task()
    assert task is not None  # a request is served in a task
    gone = False

    async def watch():
        nonlocal gone
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except Exception:  # the server could not read from the client: the send will say so
            return
        gone = True
        task.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        await _relay(request, response, send, watcher.cancel, start)  # a complete response reads as gone
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()  # our own cancellation: the client left, and that is not an error
    except Exception as exc:  # a send to the client failed
        log.warning("stream to the client failed request_id=%s: %r", getattr(request, "request_id", ""), exc)
    finally:
        watcher.cancel()


class LeanApiApp(ApiMiddlewareLoader, BaseHandler):
    """The async views under /v1/, inside the API middleware chain; the rest goes to `fallback`."""

    def __init__(self, fallback):
        self.fallback = fallback
        self.load_middleware(is_async=True)

    async def __call__(self, scope, receive, send):
        match = _match(scope["path"])
        if match is None:
            return await self.fallback(scope, receive, send)
        try:
            body = await _read_body(receive)
        except _Disconnected:
            return
        request = ASGIRequest(scope, io.BytesIO(body or b""))
        request.resolver_match = match
        request.body_over_limit = body is None
        response = await self._middleware_chain(request)
        start = {"type": "http.response.start", "status": response.status_code, "headers": _headers(response)}
        if response.streaming and getattr(response, "direct_sink", None) is not None:
            # a stream whose first part is ready (llm.completions.start_stream): the start goes with it
            await _send_streaming(request, response, send, receive, start)
            return
        if response.streaming:
            await send(start)
            await _send_streaming(request, response, send, receive)
            return
        content = response.content
        if response.status_code not in (204, 304) and not response.has_header("Content-Length"):
            start["headers"].append((b"content-length", b"%d" % len(content)))  # not chunked
        end = {"type": "http.response.body", "body": content, "more_body": False}
        await direct_send.send_together(send, [start, end])  # the head and the body in one write

    async def _get_response_async(self, request):
        """The innermost step of the chain, as Django's but on the event loop: view middleware,
        the view, and for an exception the chain's process_exception hooks (called here, no
        thread hop); an exception none of them answers is logged and becomes internal_error."""
        match = request.resolver_match
        try:
            if request.body_over_limit:
                raise ApiError("payload_too_large", limit=settings.GPUNIQ_MAX_BODY_BYTES)
            for hook in self._view_middleware:
                response = await hook(request, match.func, match.args, match.kwargs)
                if response is not None:
                    return response
            return await match.func(request, *match.args, **match.kwargs)
        except Exception as exc:
            response = self.process_exception_by_middleware(exc, request)
            if response is None:
                log.exception("unhandled error on %s %s", request.method, request.path)
                response = error_response(request, ApiError("internal_error"))
            return response
