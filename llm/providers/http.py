"""The one HTTP choke point to upstream vendors: pooled clients, timeouts, error mapping.

Chat requests (post_json, post_stream) go through llm.providers.wire, a lean keep-alive HTTP/1.1
client: httpx cost ~30% of the hot path's CPU. Media code uses `client()`, one httpx.AsyncClient
per credential family and event loop. Transport errors become UpstreamError here and nowhere
else; vendors' error bodies are parsed by their adapter through `error_parser`. Vendor keys and
base URLs never leave this module in an error.
"""

import asyncio
import weakref
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from django.conf import settings

from gpuniq_site.loops import on_loop_close

from ..upstreams import Upstream
from . import wire
from .base import UpstreamError
from .sse import event_data, split_events

log = logging.getLogger("gpuniq.upstream")

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]]" = (
    weakref.WeakKeyDictionary()
)
_URL = re.compile(r"https?://\S+")

# headers: wire.Headers for chat, httpx.Headers for media; parsers only call .get()
ErrorParser = Callable[[int, bytes, "wire.Headers | httpx.Headers"], UpstreamError]


def client(upstream: Upstream) -> httpx.AsyncClient:
    """The family's pooled httpx client for the running event loop. Each loop keeps its own
    (a Celery thread's asyncio.run gets one), so concurrent loops never swap clients under
    each other; a finished loop's clients go with it."""
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    found = clients.get(upstream.family)
    if found is None or found.is_closed:
        limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60)
        found = httpx.AsyncClient(
            limits=limits,
            http2=False,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(60.0, connect=settings.GPUNIQ_UPSTREAM_CONNECT_TIMEOUT),
        )
        clients[upstream.family] = found
    return found


@on_loop_close
async def close_clients() -> None:
    """Close this loop's httpx clients and vendor connections (a worker's job loop is ending)."""
    for found in _clients.pop(asyncio.get_running_loop(), {}).values():
        await found.aclose()
    await wire.close_pool()


def scrub(message: str) -> str:
    """Vendor messages may quote URLs or keys; users see neither."""
    return _URL.sub("[url]", message)[:500]


def retry_after(headers: "wire.Headers | httpx.Headers") -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def generic_error(status: int, body: bytes, headers: "wire.Headers | httpx.Headers") -> UpstreamError:
    """Status-based mapping shared by all vendors; adapters refine the message and special cases."""
    message = ""
    try:
        data = json.loads(body)
        error = data.get("error", data) if isinstance(data, dict) else {}
        message = (error.get("message") if isinstance(error, dict) else str(error)) or ""
    except (ValueError, AttributeError):
        message = body[:200].decode(errors="replace")
    kind = {
        400: "bad_request",
        401: "auth",
        403: "auth",
        404: "not_found",
        408: "timeout",
        409: "server",
        413: "bad_request",
        422: "bad_request",
        429: "rate_limited",
        529: "overloaded",
    }.get(status)
    if kind is None:
        kind = "server" if status >= 500 else "bad_request"
    return UpstreamError(kind, scrub(message), status=status, retry_after=retry_after(headers))


def _transport_error(exc: Exception) -> UpstreamError:
    if isinstance(exc, (wire.WireTimeout, httpx.TimeoutException)):
        return UpstreamError("timeout", "the provider did not answer in time")
    if isinstance(
        exc,
        (wire.WireError, httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError),
    ):
        return UpstreamError("connect", "could not reach the provider")
    return UpstreamError("connect", type(exc).__name__)


transport_error = _transport_error  # for llm.providers.openai_relay, which reads a response itself


def _encode(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


async def _post(upstream: Upstream, path: str, headers: dict, body: dict, first_byte: float) -> wire.Response:
    try:
        return await wire.post(
            upstream.base_url + path,
            headers,
            _encode(body),
            first_byte=first_byte,
            connect_timeout=settings.GPUNIQ_UPSTREAM_CONNECT_TIMEOUT,
        )
    except wire.WireError as exc:
        raise _transport_error(exc) from None


async def post_json(
    upstream: Upstream,
    path: str,
    *,
    headers: dict,
    body: dict,
    first_byte: float,
    error_parser: ErrorParser = generic_error,
) -> dict:
    """POST JSON and return the decoded JSON reply, or raise UpstreamError."""
    response = await _post(upstream, path, headers, body, first_byte)
    try:
        content = await response.aread()
    except wire.WireError as exc:
        raise _transport_error(exc) from None
    finally:
        response.close()
    if response.status_code >= 400:
        raise error_parser(response.status_code, content, response.headers)
    try:
        return json.loads(content)
    except ValueError:
        raise UpstreamError(
            "malformed", "the provider sent a reply that is not JSON", status=response.status_code
        ) from None


@asynccontextmanager
async def post_stream(
    upstream: Upstream,
    path: str,
    *,
    headers: dict,
    body: dict,
    first_byte: float,
    error_parser: ErrorParser = generic_error,
):
    """POST and yield the streaming response once its status is known to be a success.

    Leaving the block by an exception (client went away, cancellation, a bad event) closes the
    upstream connection at once; leaving it normally returns the connection to the keep-alive pool.
    """
    response = await _post(upstream, path, headers, body, first_byte)
    try:
        if response.status_code >= 400:
            try:
                content = await response.aread()
            except wire.WireError:
                content = b""
            raise error_parser(response.status_code, content, response.headers)
        yield response
    except BaseException:
        if response.ended:  # llm.providers.openai_relay read the last event, then the adapter was closed
            response.release()
        else:
            response.close()  # abandoned mid-body (or an error reply): pooled only if read to the end
        raise
    response.release()  # the adapter finished: keep the connection once the body's tail is read


async def sse_data(response: "wire.Response") -> AsyncIterator[bytes]:
    """The data of each SSE event of a streamed reply (comment-only events skipped), with transport
    failures mapped to UpstreamError; wire.TICK each GPUNIQ_KEEPALIVE_SECONDS without an event
    (llm.streaming keeps the client's connection alive on it and decides when the vendor is too
    slow). One generator from socket to event: this runs for every token of every stream.
    While it yields an event, `response.more` says whether the next one has arrived too."""
    buffer = b""
    try:
        async for chunk in response.aiter_bytes(tick=settings.GPUNIQ_KEEPALIVE_SECONDS):
            if chunk is wire.TICK:
                yield chunk
                continue
            events, buffer = split_events(buffer, chunk)
            response.sse_rest = buffer  # where openai_relay would carry on after the last of these
            if events:
                response.saw_event()
            for i, data in enumerate(events):
                response.more = i < len(events) - 1  # the next event has arrived too
                yield data
    except wire.WireError as exc:
        raise _transport_error(exc) from None
    if buffer.strip():
        last = event_data(buffer.strip(b"\n"))
        if last is not None:
            response.more = False
            yield last
