"""The error catalog: the only place API error codes, statuses and messages are defined.

Every failure under /v1/ is rendered from an entry here, in one of two envelopes:
- OpenAI-compatible (/v1/openai/*): {"error": {message, type, code, doc_url, meta}, ...}
- native (/v1/llm/*): {"success": false, "error": {...}, "status_code": N, "request_id": "..."}
- Anthropic Messages (/v1/anthropic/*, /v1/messages*): {"type": "error", "error": {type, message, code},
  "request_id": "..."} with Anthropic's error types (ANTHROPIC_TYPES)
Codes are a public contract: clients branch on them, so never rename one.
"""

from dataclasses import dataclass
from typing import Any

from django.conf import settings


@dataclass(frozen=True)
class ErrorSpec:
    code: str
    status: int
    type: str
    message: str
    recovery: str = ""


_SPECS = [
    # --- the request itself ------------------------------------------------------
    ErrorSpec(
        "invalid_json",
        400,
        "invalid_request_error",
        "The request body is not valid JSON.",
        recovery="Send a JSON object with Content-Type: application/json.",
    ),
    ErrorSpec(
        "invalid_parameter",
        400,
        "invalid_request_error",
        "Invalid value for '{field}': {reason}",
        recovery="Fix the named field; meta.field says which.",
    ),
    ErrorSpec(
        "missing_parameter",
        400,
        "invalid_request_error",
        "Missing required parameter: '{field}'.",
        recovery="Add the named field.",
    ),
    ErrorSpec(
        "unsupported_parameter",
        400,
        "invalid_request_error",
        "'{field}' is not supported by model '{model}': {reason}",
        recovery="Drop the field or choose a model that supports it.",
    ),
    ErrorSpec(
        "streaming_required",
        400,
        "invalid_request_error",
        "{field}={max_tokens} is above {limit} for a non-streaming request. "
        'Set "stream": true or use the chat jobs API.',
        recovery="Stream the reply, use POST /v1/llm/chat/jobs, or lower the output limit.",
    ),
    ErrorSpec(
        "context_length_exceeded",
        400,
        "invalid_request_error",
        "The request is longer than the model's context window. {reason}",
        recovery="Shorten the messages or pick a model with a larger context window.",
    ),
    ErrorSpec(
        "content_policy_violation",
        400,
        "invalid_request_error",
        "The upstream model refused the request under its content policy.",
        recovery="Rephrase the prompt.",
    ),
    ErrorSpec(
        "invalid_url",
        400,
        "invalid_request_error",
        "'{field}' cannot be used: {reason}",
        recovery="Use a public https URL or a data: URI of the right media type.",
    ),
    ErrorSpec(
        "invalid_media",
        400,
        "invalid_request_error",
        "'{field}' is not a valid {kind}: {reason}",
        recovery="Send real image/video bytes of a supported type.",
    ),
    ErrorSpec(
        "payload_too_large",
        413,
        "invalid_request_error",
        "The request body is larger than {limit} bytes.",
        recovery="Send smaller inputs (for images, a URL instead of inline data).",
    ),
    ErrorSpec(
        "idempotency_conflict",
        409,
        "invalid_request_error",
        "A request with this Idempotency-Key is still in progress or had a different body.",
        recovery="Wait and retry with the same key, or use a new key for a new request.",
    ),
    # --- who is asking -------------------------------------------------------------
    ErrorSpec(
        "missing_api_key",
        401,
        "authentication_error",
        "No API key. Send 'Authorization: Bearer gpuniq_...' or 'X-API-Key: gpuniq_...'.",
        recovery="Create a key in the dashboard and send it.",
    ),
    ErrorSpec(
        "invalid_api_key",
        401,
        "authentication_error",
        "The API key is not valid.",
        recovery="Check the key; it is shown once, when created.",
    ),
    ErrorSpec(
        "revoked_api_key",
        401,
        "authentication_error",
        "The API key has been revoked.",
        recovery="Create a new key in the dashboard.",
    ),
    ErrorSpec(
        "model_not_allowed",
        403,
        "permission_error",
        "This API key may not use model '{model}'.",
        recovery="Use an allowed model or edit the key's allow-list.",
    ),
    ErrorSpec(
        "spend_cap_reached",
        403,
        "permission_error",
        "This API key has reached its monthly spend cap of {cap}.",
        recovery="Raise the key's cap in the dashboard or wait for the next month.",
    ),
    ErrorSpec(
        "insufficient_balance",
        402,
        "insufficient_quota",
        "Insufficient balance: this request may cost up to {required}, available {available}.",
        recovery="Top up the balance or lower max_tokens / n.",
    ),
    ErrorSpec(
        "rate_limit_per_key",
        429,
        "rate_limit_error",
        "Rate limit reached: {limit} requests per minute for this key. Retry after {retry_after}s.",
        recovery="Honour Retry-After, spread requests, or raise the key's rpm.",
    ),
    # --- what is asked for -----------------------------------------------------------
    ErrorSpec(
        "model_not_found",
        404,
        "not_found_error",
        "The model '{model}' does not exist or is not available.",
        recovery="List models with GET /v1/openai/models.",
    ),
    ErrorSpec(
        "wrong_model_kind",
        400,
        "invalid_request_error",
        "'{model}' is a {kind} model and cannot be used on this endpoint.",
        recovery="Pick a model of the right kind from the catalog.",
    ),
    ErrorSpec("chat_not_found", 404, "not_found_error", "No chat with this id.", recovery="List your chats."),
    ErrorSpec(
        "job_not_found",
        404,
        "not_found_error",
        "No job with this id.",
        recovery="Check the job id; finished chat image jobs live in the chat history.",
    ),
    ErrorSpec(
        "response_not_found",
        404,
        "not_found_error",
        "No response with id '{response_id}'.",
        recovery="Responses are kept when created with store: true, for the key's own user only.",
    ),
    ErrorSpec(
        "not_found",
        404,
        "not_found_error",
        "No such endpoint: {method} {path}.",
        recovery="Check the URL against the API reference.",
    ),
    ErrorSpec(
        "method_not_allowed",
        405,
        "invalid_request_error",
        "{method} is not allowed on {path}.",
        recovery="Use one of the methods in the Allow header.",
    ),
    # --- upstream vendors ---------------------------------------------------------------
    ErrorSpec(
        "upstream_error",
        502,
        "api_error",
        "The model provider returned an error. {reason}",
        recovery="Retry; nothing was charged.",
    ),
    ErrorSpec(
        "upstream_timeout",
        504,
        "api_error",
        "The model provider did not answer in time.",
        recovery="Retry, stream the reply, or use the jobs API; nothing was charged.",
    ),
    ErrorSpec(
        "upstream_rate_limited",
        503,
        "api_error",
        "The model provider is rate limiting requests.",
        recovery="Retry after a short wait; nothing was charged.",
    ),
    ErrorSpec(
        "all_routes_failed",
        503,
        "api_error",
        "Every route for '{model}' failed; nothing was charged. Last error: {reason}",
        recovery="Retry later or pick another model.",
    ),
    ErrorSpec(
        "no_output_delivered",
        502,
        "api_error",
        "The provider delivered no {kind}; nothing was charged.",
        recovery="Retry or rephrase the prompt.",
    ),
    ErrorSpec(
        "service_unavailable",
        503,
        "api_error",
        "The service is temporarily unavailable. {reason}",
        recovery="Retry with backoff.",
    ),
    ErrorSpec(
        "internal_error",
        500,
        "api_error",
        "Internal error. Quote the request id when reporting it.",
        recovery="Retry; report the request id if it persists.",
    ),
    ErrorSpec(
        "webhook_sender_not_allowed",
        403,
        "permission_error",
        "Payment notifications are accepted only from the payment provider's published networks.",
        recovery="Operators: set YOOKASSA_NOTIFICATION_IPS or YOOKASSA_FORWARDED_HOPS behind a proxy.",
    ),
    # --- media_jobs ---------------------------------------------------------------------
    ErrorSpec(
        "media_link_invalid",
        404,
        "not_found_error",
        "This media link is invalid or has expired.",
        recovery="Poll the job (or generate) again for a fresh link.",
    ),
    ErrorSpec(
        "job_expired",
        410,
        "not_found_error",
        "The job's result was not collected within the media link lifetime and was discarded; "
        "nothing was charged.",
        recovery="Start the job again and poll it until it completes.",
    ),
]

CATALOG: dict[str, ErrorSpec] = {spec.code: spec for spec in _SPECS}


class _Defaulting(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


class ApiError(Exception):
    """Raise anywhere below a view to answer with a catalog error; nothing else defines codes."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        meta: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ):
        spec = CATALOG[code]  # KeyError here is a programming error, caught by tests
        self.spec = spec
        self.code = code
        self.status = spec.status
        self.params = params
        self.meta = meta
        self.headers = headers or {}
        self.message = message or spec.message.format_map(_Defaulting(params)).strip()
        super().__init__(self.message)


def doc_url(spec: ErrorSpec) -> str:
    """This server's own catalog page, anchored at the code (the page every deployment serves)."""
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/errors/#{spec.code}"


def param_of(error: ApiError) -> str | None:
    """The request field an error is about, as OpenAI's `error.param` (null when none is)."""
    field = error.params.get("field") or (error.meta or {}).get("field")
    return field if isinstance(field, str) else None


def error_body(error: ApiError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message": error.message,
        "type": error.spec.type,
        "param": param_of(error),
        "code": error.code,
        "doc_url": doc_url(error.spec),
    }
    if error.meta is not None:
        body["meta"] = error.meta
    return body


def openai_envelope(error: ApiError, request_id: str) -> dict[str, Any]:
    return {"error": error_body(error), "status_code": error.status, "request_id": request_id}


def native_envelope(error: ApiError, request_id: str) -> dict[str, Any]:
    return {
        "success": False,
        "error": error_body(error),
        "status_code": error.status,
        "request_id": request_id,
    }


def is_openai_path(path: str) -> bool:
    return path.startswith("/v1/openai/") or path == "/v1/openai"


# Anthropic's error types by HTTP status (https://docs.claude.com/en/api/errors); the SDKs pick
# their exception class from the status, Claude Code shows the type and message.
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def anthropic_error(error: ApiError) -> dict[str, Any]:
    """The `error` object of Anthropic's envelope; `code` is our catalog code (Anthropic's SDKs keep
    unknown keys, so clients can branch on it)."""
    kind = ANTHROPIC_TYPES.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
    return {"type": kind, "message": error.message, "code": error.code}


def anthropic_envelope(error: ApiError, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": anthropic_error(error), "request_id": request_id}


def is_anthropic_path(path: str) -> bool:
    return path.startswith(("/v1/anthropic/", "/v1/messages")) or path == "/v1/anthropic"
