"""What both Anthropic paths share (llm.providers.anthropic, Chat Completions translated, and
llm.providers.anthropic_native, Messages as sent): the endpoint and version header, Anthropic's error
bodies and its usage block, so the two paths fail and bill alike."""

import json

from gpuniq_site.json_body import as_object

from .base import UpstreamError, Usage
from .http import generic_error, retry_after, scrub

PATH = "/v1/messages"
API_VERSION = "2023-06-01"
_ERROR_KINDS = {
    "authentication_error": "auth",
    "permission_error": "auth",
    "billing_error": "auth",
    "not_found_error": "not_found",
    "rate_limit_error": "rate_limited",
    "overloaded_error": "overloaded",
    "api_error": "server",
    "timeout_error": "timeout",
    "request_too_large": "bad_request",
}
_CONTEXT_MARKERS = (
    "prompt is too long",
    "context limit",
    "context window",
    "context length",
    "too many tokens",
)
_POLICY_MARKERS = ("content filtering", "content policy", "usage policy")


def parse_error(status: int, body: bytes, headers) -> UpstreamError:
    """Anthropic's `{"type": "error", "error": {"type", "message"}}` → UpstreamError."""
    try:
        data = json.loads(body)
        error = data["error"]
        etype, message = str(error.get("type") or ""), str(error.get("message") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        return generic_error(status, body, headers)
    kind = _ERROR_KINDS.get(etype)
    if kind is None:
        lowered = message.lower()
        if etype == "invalid_request_error" and any(m in lowered for m in _CONTEXT_MARKERS):
            kind = "context_length"
        elif any(m in lowered for m in _POLICY_MARKERS):
            kind = "content_policy"
        else:
            kind = generic_error(status, body, headers).kind
    return UpstreamError(kind, scrub(message), status=status, retry_after=retry_after(headers))


def map_usage(raw, reasoning_chars: int = 0) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    cache_read = int(raw.get("cache_read_input_tokens") or 0)
    written = int(raw.get("cache_creation_input_tokens") or 0)
    detail = as_object(raw.get("cache_creation"))
    written_1h = min(int(detail.get("ephemeral_1h_input_tokens") or 0), written)
    prompt = int(raw.get("input_tokens") or 0) + cache_read + written
    output = int(raw.get("output_tokens") or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=output,
        cached_tokens=cache_read,
        cache_write_tokens=written - written_1h,
        cache_write_1h_tokens=written_1h,
        reasoning_tokens=min(reasoning_chars // 4, output),
    )
