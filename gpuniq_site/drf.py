"""DRF glue: every DRF error becomes a catalog error in the native envelope."""

import logging

from django.http import Http404
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

from .errors import ApiError
from .json_body import loads
from .middleware import api_exception_to_error
from .responses import error_response

log = logging.getLogger("gpuniq.errors")


class SafeJSONParser(JSONParser):
    """DRF's JSON parser with the gateway's rules (gpuniq_site.json_body): deep nesting is
    invalid_json instead of an uncaught RecursionError, and NUL or lone surrogates in any string
    are invalid_parameter before a view sees the data."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        if not raw:
            raise exceptions.ParseError("empty body")
        try:
            return loads(raw)
        except ApiError as error:
            if error.code == "invalid_json":
                raise exceptions.ParseError(error.message) from None
            raise


def _first_validation_problem(detail, prefix: str = "") -> tuple[str, str]:
    if isinstance(detail, dict):
        for field, inner in detail.items():
            name = field if field != "non_field_errors" else "request"
            return _first_validation_problem(inner, f"{prefix}.{name}" if prefix else name)
    if isinstance(detail, list) and detail:
        if all(not isinstance(d, (dict, list)) for d in detail):
            return prefix or "request", str(detail[0])
        for index, inner in enumerate(detail):
            if inner:
                return _first_validation_problem(inner, f"{prefix}[{index}]")
    return prefix or "request", str(detail)


def to_api_error(exc, request) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, exceptions.ValidationError):
        field, reason = _first_validation_problem(exc.detail)
        code = "missing_parameter" if "required" in reason.lower() else "invalid_parameter"
        return ApiError(code, field=field, reason=reason, meta={"field": field, "errors": exc.detail})
    if isinstance(exc, exceptions.ParseError):
        return ApiError("invalid_json")
    if isinstance(exc, exceptions.UnsupportedMediaType):
        return ApiError("invalid_parameter", field="Content-Type", reason="send application/json")
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        return ApiError("missing_api_key")
    if isinstance(exc, exceptions.MethodNotAllowed):
        return ApiError("method_not_allowed", method=request.method, path=request.path)
    if isinstance(exc, (exceptions.NotFound, Http404)):
        return ApiError("not_found", method=request.method, path=request.path)
    return api_exception_to_error(request, exc) or ApiError("internal_error")


def exception_handler(exc, context):
    request = context["request"]
    return error_response(request._request, to_api_error(exc, request))
