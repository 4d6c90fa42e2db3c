"""Request ids and error envelopes for everything under /v1/.

Written as plain sync+async middleware (not MiddlewareMixin) so async views are not
bounced through a thread for each hook.
"""

import functools
import logging
import re
import time

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from django.middleware.csrf import CsrfViewMiddleware

from . import metrics
from .errors import ApiError
from .ids import unique_hex
from .logs import request_id_var
from .responses import error_response

log = logging.getLogger("gpuniq.errors")

# as long as the request_id columns it is stored in (holds, usage rows, jobs): a longer one broke
# the hold's insert on PostgreSQL, a 500 for a header
_VALID_INBOUND_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def new_request_id() -> str:
    return "req_" + unique_hex(128)


class _DualMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        self.before(request)
        return self.after(request, self.get_response(request))

    async def __acall__(self, request):
        self.before(request)
        return self.after(request, await self.get_response(request))

    def before(self, request):
        pass

    def after(self, request, response):
        return response


class RequestIdMiddleware(_DualMiddleware):
    """Every response carries x-request-id; an inbound well-formed id is kept for tracing."""

    def before(self, request):
        request.started_at = time.perf_counter()
        inbound = request.META.get("HTTP_X_REQUEST_ID", "")  # not request.headers: no parse of every header
        request.request_id = inbound if _VALID_INBOUND_ID.match(inbound) else new_request_id()
        request_id_var.set(request.request_id)

    def after(self, request, response):
        response["x-request-id"] = request.request_id
        for name, value in getattr(request, "ratelimit_headers", {}).items():
            response.setdefault(name, value)
        if request.path.startswith("/v1/"):
            metrics.observe_request(request, response.status_code)
            overhead_ms = response.get("x-gpuniq-overhead-ms")
            if overhead_ms:
                metrics.observe_overhead(request, float(overhead_ms) / 1000)
        return response


@functools.cache
def outage_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean our database or Redis is out of reach: 503, not a client mistake."""
    import psycopg
    import redis
    from django.db import InterfaceError, OperationalError

    return (
        OperationalError,
        InterfaceError,
        psycopg.OperationalError,
        psycopg.InterfaceError,
        redis.ConnectionError,
        redis.TimeoutError,
    )


def api_exception_to_error(request, exc) -> ApiError | None:
    """Map an exception raised under /v1/ to a catalog error (None: not an API path)."""
    if not request.path.startswith("/v1/"):
        return None
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestDataTooBig):
        from django.conf import settings

        return ApiError("payload_too_large", limit=settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, Http404):
        return ApiError("not_found", method=request.method, path=request.path)
    if isinstance(exc, (PermissionDenied, SuspiciousOperation)):
        return ApiError("invalid_parameter", field="request", reason="the request was refused")
    if isinstance(exc, outage_errors()):
        log.warning(
            "backing service unavailable on %s %s request_id=%s: %r",
            request.method,
            request.path,
            getattr(request, "request_id", ""),
            exc,
        )
        return ApiError("service_unavailable", reason="A backing service did not answer; retry shortly.")
    log.exception(
        "unhandled error on %s %s request_id=%s",
        request.method,
        request.path,
        getattr(request, "request_id", ""),
    )
    return ApiError("internal_error")


class ApiErrorMiddleware(_DualMiddleware):
    """Under /v1/, turn exceptions and Django's HTML 404/405 pages into error envelopes."""

    def process_exception(self, request, exception):
        error = api_exception_to_error(request, exception)
        return error_response(request, error) if error else None

    def after(self, request, response):
        if not request.path.startswith("/v1/") or response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        if response.status_code == 404:
            return error_response(request, ApiError("not_found", method=request.method, path=request.path))
        if response.status_code == 405:
            error = ApiError(
                "method_not_allowed",
                method=request.method,
                path=request.path,
                headers={"Allow": response.get("Allow", "")},
            )
            return error_response(request, error)
        return response


class ApiAwareCsrfMiddleware(CsrfViewMiddleware):
    """CSRF for the dashboard; the /v1/ APIs authenticate with keys, never cookies, so they skip it."""

    def process_view(self, request, callback, callback_args, callback_kwargs):
        if request.path.startswith("/v1/"):
            return None
        return super().process_view(request, callback, callback_args, callback_kwargs)
