"""OpenAI's error bodies, read the same way for Chat Completions (llm.providers.openai_compat) and
the Responses API (llm.providers.openai_responses): the generic mapping by status, with the
context-length and content-policy refusals told apart by their text."""

from .base import UpstreamError
from .http import generic_error

_CONTEXT_MARKERS = ("context_length_exceeded", "maximum context length", "context window", "too many tokens")
_POLICY_MARKERS = ("content_policy", "content_filter", "safety system")


def parse_error(status, body, headers) -> UpstreamError:
    error = generic_error(status, body, headers)
    text = (body[:2000].decode(errors="replace")).lower()
    if status == 400 and any(m in text for m in _CONTEXT_MARKERS):
        error.kind = "context_length"
    elif status == 400 and any(m in text for m in _POLICY_MARKERS):
        error.kind = "content_policy"
    return error
