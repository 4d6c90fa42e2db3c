"""Route choice, retry and fallback.

Routes are tried in catalog order, skipping ones in cool-down (unless all are). A connect
error, timeout, 429, 5xx (any retryable UpstreamError) moves to the next route, but only
before the first byte reached the client: for streams a route is chosen once it produced its
first event, and nothing after that is retried.
"""

import asyncio
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass

from gpuniq_site.errors import ApiError

from . import model_params, route_health
from .catalog import ModelInfo
from .providers.base import SILENCE, ChatRequest, Route, StreamPiece, UpstreamError, Usage
from .providers.registry import live_provider

log = logging.getLogger("gpuniq.gateway")

# UpstreamError kind → the catalog error a user sees when no route could serve the request
_USER_ERRORS = {
    "context_length": "context_length_exceeded",
    "content_policy": "content_policy_violation",
    "timeout": "upstream_timeout",
    "rate_limited": "upstream_rate_limited",
}


def to_api_error(error: UpstreamError, model: str, *, attempts: int = 1) -> ApiError:
    """What the user sees. Auth failures are the operator's problem: logged, never detailed."""
    if error.kind == "bad_request":
        return ApiError(
            "invalid_parameter",
            f"The model provider rejected the request: {error.message}",
            field="request",
            reason=error.message,
        )
    if error.kind in ("context_length", "content_policy"):
        return ApiError(_USER_ERRORS[error.kind], reason=error.message)
    reason = "the provider is misconfigured" if error.kind == "auth" else (error.message or error.kind)
    if attempts > 1:
        return ApiError("all_routes_failed", model=model, reason=reason, meta={"attempts": attempts})
    code = _USER_ERRORS.get(error.kind, "upstream_error")
    headers = {"Retry-After": str(int(error.retry_after))} if error.retry_after else None
    return ApiError(code, reason=reason, headers=headers)


async def ordered_routes(model: ModelInfo) -> list[Route]:
    """The model's live routes, healthy ones first (those cooling down after failures last);
    model_not_found when it has none."""
    routes = [Route(r.provider, r.upstream_model) for r in model.live_routes()]
    if not routes:
        raise ApiError("model_not_found", model=model.slug)
    down = await route_health.cooling([str(r) for r in routes])
    healthy = [r for r in routes if str(r) not in down]
    return healthy + [r for r in routes if str(r) in down]


def _log_failure(route: Route, error: UpstreamError, request: ChatRequest) -> None:
    level = logging.ERROR if error.kind == "auth" else logging.WARNING
    log.log(level, "route %s failed (%s) request_id=%s", route, error, request.request_id)


@dataclass
class Completed:
    response: dict
    usage: Usage | None
    route: Route
    attempts: int
    upstream_seconds: float  # time spent waiting on vendors (all attempts)


async def complete(request: ChatRequest, model: ModelInfo) -> Completed:
    model_params.fit(request, model)
    last: UpstreamError | None = None
    attempts = 0
    waited = 0.0
    for route in await ordered_routes(model):
        provider = live_provider(route)
        attempts += 1
        started = time.perf_counter()
        try:
            response, usage = await provider.complete(request, route)
            return Completed(response, usage, route, attempts, waited + time.perf_counter() - started)
        except UpstreamError as error:
            waited += time.perf_counter() - started
            _log_failure(route, error, request)
            last = error
            if not error.retryable:
                break
            await route_health.record_failure(str(route))
    assert last is not None  # ordered_routes gave at least one route, and each one failed
    raise to_api_error(last, model.slug, attempts=attempts)


@dataclass
class OpenedStream:
    route: Route
    first: StreamPiece
    rest: AsyncGenerator[StreamPiece, None]
    attempts: int

    async def aclose(self) -> None:
        await self.rest.aclose()


async def open_stream(request: ChatRequest, model: ModelInfo) -> OpenedStream:
    """Try routes until one produces its first event; that route then serves the whole stream."""
    model_params.fit(request, model)
    last: UpstreamError | None = None
    attempts = 0
    for route in await ordered_routes(model):
        stream = live_provider(route).stream(request, route)
        attempts += 1
        try:
            async with asyncio.timeout(request.first_byte_timeout):  # the reads have no timeout of their own
                first = await anext(stream)
                while first is SILENCE:
                    first = await anext(stream)
            return OpenedStream(route, first, stream, attempts)
        except TimeoutError:
            last = UpstreamError("timeout", "the provider sent no event in time")
            _log_failure(route, last, request)
            await stream.aclose()
        except StopAsyncIteration:
            last = UpstreamError("malformed", "the provider sent an empty stream")
        except UpstreamError as error:
            _log_failure(route, error, request)
            last = error
            await stream.aclose()
            if not error.retryable:
                break
        await route_health.record_failure(str(route))
    assert last is not None  # ordered_routes gave at least one route, and each one failed
    raise to_api_error(last, model.slug, attempts=attempts)
