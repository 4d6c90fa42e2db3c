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
# tools a vendor runs itself and bills per call, their results growing the context after the hold
# (xAI's web and X search, code execution and collections search; OpenAI's hosted tools; MCP;
# OpenRouter's server tools): an OpenAI-compatible vendor gets `tools` as sent
VENDOR_RUN_TOOLS = (
    "web_search",
    "x_search",
    "code_execution",
    "code_interpreter",
    "file_search",
    "collections_search",
    "image_generation",
    "mcp",
    "openrouter:",
)


def parse_body(raw: bytes) -> dict:
    """The body as a JSON object whose text can be stored and sent on (gpuniq_site.json_body)."""
    return loads_object(raw)


def _bad(field: str, reason: str) -> ApiError:
    return ApiError("invalid_parameter", field=field, reason=reason, meta={"field": field})


def _int_field(body: dict, name: str, low: int, high: int, *, field: str = "") -> int | None:
    """`body[name]`, an integer from `low` to `high`, or None; `field`: its name in errors."""
    value = body.get(name)
    field = field or name
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(field, "must be an integer")
    if not low <= value <= high:
        raise _bad(field, f"must be between {low} and {high}")
    return value


def _number_field(body: dict, name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(name, "must be a number")
    if not low <= value <= high:
        raise _bad(name, f"must be between {low} and {high}")


def _check_string(value, field: str) -> None:
    """A field the translators read as text (a hash key, a join, json.loads): a string or null."""
    if value is not None and not isinstance(value, str):
        raise _bad(field, "must be a string")


def _check_object(value, field: str) -> None:
    """A field the translators read with .get(): an object or null."""
    if value is not None and not isinstance(value, dict):
        raise _bad(field, "must be an object")


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _check_parts(parts: list, field: str) -> None:
    """Content parts: a text part's `text` is a string, a file part's `file` an object (OpenAI's
    shapes). Other parts are each translator's to take or refuse."""
    for index, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            _check_string(part.get("text"), f"{field}[{index}].text")
        elif kind == "file":
            _check_object(part.get("file"), f"{field}[{index}].file")


def _check_tool_calls(calls, field: str) -> None:
    """An assistant's `tool_calls`: an array of objects whose id, function name and arguments
    are strings, as OpenAI sends and takes them back."""
    if calls is None:
        return
    if not isinstance(calls, list):
        raise _bad(field, "must be an array of tool calls")
    for index, call in enumerate(calls):
        where = f"{field}[{index}]"
        if not isinstance(call, dict):
            raise _bad(where, "must be an object")
        _check_string(call.get("id"), f"{where}.id")
        function = call.get("function")
        _check_object(function, f"{where}.function")
        for name in ("name", "arguments"):
            _check_string((function or {}).get(name), f"{where}.function.{name}")


def _check_message(message, field: str) -> None:
    """One message, in the shapes every translator reads without a type check of its own."""
    if not isinstance(message, dict):
        raise _bad(field, "must be an object")
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise _bad(f"{field}.role", f"must be one of {', '.join(sorted(ROLES))}")
    content = message.get("content")
    if content is not None and not isinstance(content, (str, list)):
        raise _bad(f"{field}.content", "must be a string or an array")
    if isinstance(content, list):
        _check_parts(content, f"{field}.content")
    if role == "assistant":
        _check_tool_calls(message.get("tool_calls"), f"{field}.tool_calls")
    elif role == "tool":
        _check_string(message.get("tool_call_id"), f"{field}.tool_call_id")


def _check_messages(messages) -> None:
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "must be a non-empty array")
    if len(messages) > MAX_MESSAGES:
        raise _bad("messages", f"at most {MAX_MESSAGES} messages")
    for index, message in enumerate(messages):
        _check_message(message, f"messages[{index}]")


def _check_tools(body: dict) -> None:
    """`tools`: an array of objects, a function tool's `function` an object; `tool_choice`: a
    string or an object, its `function` an object (the translators read both with .get())."""
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise _bad("tools", "must be an array")
    for index, tool in enumerate(tools or ()):
        if not isinstance(tool, dict):
            raise _bad(f"tools[{index}]", "must be an object")
        _check_object(tool.get("function"), f"tools[{index}].function")
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, (str, dict)):
        raise _bad("tool_choice", "must be a string or an object")
    if isinstance(choice, dict):
        _check_object(choice.get("function"), "tool_choice.function")


def _refuse_vendor_run_tools(body: dict, model: str) -> None:
    for index, tool in enumerate(body.get("tools") or ()):
        kind = tool.get("type")
        if isinstance(kind, str) and kind.startswith(VENDOR_RUN_TOOLS):
            field = f"tools[{index}]"
            raise ApiError(
                "unsupported_parameter",
                field=field,
                model=model,
                reason=f"{kind!r} is run and billed per call by the vendor, so not offered",
                meta={"field": field},
            )


def _check_options(body: dict) -> None:
    """The shapes OpenAI gives `stop`, `response_format` and `reasoning_effort` (and OpenRouter
    `reasoning.effort`), which the Anthropic and Gemini translations and the hold's bound rely on."""
    stop = body.get("stop")
    if not (stop is None or isinstance(stop, str) or _strings(stop)):
        raise _bad("stop", "must be a string or an array of strings")
    response_format = body.get("response_format")
    _check_object(response_format, "response_format")
    _check_object((response_format or {}).get("json_schema"), "response_format.json_schema")
    _check_string(body.get("reasoning_effort"), "reasoning_effort")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        _check_string(reasoning.get("effort"), "reasoning.effort")


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
    _check_tools(body)
    _refuse_vendor_run_tools(body, model)
    _check_options(body)
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
        raise _bad("thinking", "must be an object with a type")
    field = "thinking.budget_tokens"
    if (
        "budget_tokens" in thinking
        and _int_field(thinking, "budget_tokens", 1, 10_000_000, field=field) is None
    ):
        raise _bad(field, "must be an integer")
