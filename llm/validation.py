"""Validate only what the gateway must; every other Chat Completions field passes through."""

import math

from gpuniq_site.errors import ApiError
from gpuniq_site.json_body import loads_object

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
MAX_MESSAGES = 10_000
PRICED_TIERS = (None, "auto", "default", "flex")  # the catalog prices the standard tier; flex costs less
# fields an OpenAI-compatible vendor bills beyond the tokens a hold bounds, so never passed through:
# OpenRouter's plugins (web results per 1,000) and `models` (fallbacks to other, dearer models),
# search options (fees per search or per source: OpenAI's web_search_options, xAI's Live Search)
UNPRICED_FIELDS = ("plugins", "models", "web_search_options", "search_parameters")


def parse_body(raw: bytes) -> dict:
    """The body as a JSON object whose text can be stored and sent on (gpuniq_site.json_body)."""
    return loads_object(raw)


def _int_field(body: dict, name: str, low: int, high: int, *, field: str = "") -> int | None:
    """`body[name]`, an integer from `low` to `high`, or None; `field`: its name in errors."""
    value = body.get(name)
    field = field or name
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError("invalid_parameter", field=field, reason="must be an integer", meta={"field": field})
    if not low <= value <= high:
        raise ApiError(
            "invalid_parameter",
            field=field,
            reason=f"must be between {low} and {high}",
            meta={"field": field},
        )
    return value


def _number_field(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError("invalid_parameter", field=name, reason="must be a number", meta={"field": name})
    if not low <= value <= high:
        raise ApiError(
            "invalid_parameter", field=name, reason=f"must be between {low} and {high}", meta={"field": name}
        )


def _check_messages(messages) -> None:
    if not isinstance(messages, list) or not messages:
        raise ApiError(
            "invalid_parameter",
            field="messages",
            reason="must be a non-empty array",
            meta={"field": "messages"},
        )
    if len(messages) > MAX_MESSAGES:
        raise ApiError(
            "invalid_parameter",
            field="messages",
            reason=f"at most {MAX_MESSAGES} messages",
            meta={"field": "messages"},
        )
    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        if not isinstance(message, dict):
            raise ApiError(
                "invalid_parameter", field=field, reason="must be an object", meta={"field": field}
            )
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise ApiError(
                "invalid_parameter",
                field=f"{field}.role",
                reason=f"must be one of {', '.join(sorted(ROLES))}",
                meta={"field": f"{field}.role"},
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise ApiError(
                "invalid_parameter",
                field=f"{field}.content",
                reason="must be a string or an array",
                meta={"field": f"{field}.content"},
            )


def validate_chat(body: dict, *, default_model: str | None = None) -> tuple[str, int | None, bool]:
    """Check the fields the gateway relies on. Returns (model slug, max output tokens, stream)."""
    model = body.get("model", default_model)
    if model is None:
        raise ApiError("missing_parameter", field="model", meta={"field": "model"})
    if not isinstance(model, str) or not model or len(model) > 100:
        raise ApiError(
            "invalid_parameter", field="model", reason="must be a model slug", meta={"field": "model"}
        )
    _check_messages(body.get("messages"))
    if body.get("service_tier") not in PRICED_TIERS:  # a dearer tier would be billed at the catalog's price
        raise ApiError(
            "unsupported_parameter",
            field="service_tier",
            model=model,
            reason=f"only {', '.join(t for t in PRICED_TIERS if t)} are offered",
            meta={"field": "service_tier"},
        )
    for name in UNPRICED_FIELDS:
        if body.get(name) is not None:
            raise ApiError(
                "unsupported_parameter",
                field=name,
                model=model,
                reason="billed beyond tokens, so not offered",
                meta={"field": name},
            )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise ApiError(
            "invalid_parameter", field="stream", reason="must be true or false", meta={"field": "stream"}
        )
    if body.get("stream_options") is not None and not isinstance(body["stream_options"], dict):
        raise ApiError(
            "invalid_parameter",
            field="stream_options",
            reason="must be an object",
            meta={"field": "stream_options"},
        )
    max_tokens = _int_field(body, "max_completion_tokens", 1, 10_000_000)
    legacy = _int_field(body, "max_tokens", 1, 10_000_000)
    _int_field(body, "n", 1, 16)
    _number_field(body, "temperature", 0, 2)
    _number_field(body, "top_p", 0, 1)
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise ApiError("invalid_parameter", field="tools", reason="must be an array", meta={"field": "tools"})
    check_thinking(body)
    return model, max_tokens if max_tokens is not None else legacy, stream


def check_thinking(body: dict) -> None:
    """Anthropic's `thinking` (the Messages API, and an extension of Chat Completions for Claude):
    an object whose `budget_tokens`, if given, is a whole number of tokens. The hold bounds only an
    integer budget (llm.bounds); 60000.0 or "60000" must not pass as "no budget" and then reach
    the vendor as int(budget), tokens nobody held for."""
    thinking = body.get("thinking")
    if thinking is None:
        return
    if not isinstance(thinking, dict) or not isinstance(thinking.get("type"), str):
        raise ApiError(
            "invalid_parameter",
            field="thinking",
            reason="must be an object with a type",
            meta={"field": "thinking"},
        )
    field = "thinking.budget_tokens"
    if (
        "budget_tokens" in thinking
        and _int_field(thinking, "budget_tokens", 1, 10_000_000, field=field) is None
    ):
        raise ApiError("invalid_parameter", field=field, reason="must be an integer", meta={"field": field})
