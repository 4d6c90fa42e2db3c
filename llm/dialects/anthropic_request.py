"""Anthropic Messages request → the canonical Chat Completions request.

Follows https://docs.claude.com/en/api/messages. The gateway validates, holds and routes the
translation; a route to Anthropic itself forwards the original body instead
(llm.providers.anthropic_native), so the translation only has to serve other vendors (and a
Claude model's OpenAI-compatible fallback route):
- `system` (a string or text blocks) → a system message, and so do system-role messages;
- user content: text, image (base64 / url source) → image_url parts, document (PDF base64 →
  a file part, plain text → text), tool_result → a `tool` message placed before the rest of
  the turn (its images follow in the user message);
- assistant content: text, tool_use → tool_calls (thinking blocks are Anthropic's alone: dropped);
- tools / tool_choice / disable_parallel_tool_use, stop_sequences → stop, temperature, top_p,
  top_k (Gemini only), thinking → reasoning_effort on reasoning models; metadata is ignored.
"""

import json
from typing import Any

from gpuniq_site.json_body import as_object
from gpuniq_site.errors import ApiError

from ..catalog import ModelInfo
from ..validation import check_thinking

EFFORT_BY_BUDGET = ((4096, "low"), (16384, "medium"))
EFFORTS: dict[object, str] = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "max": "high",
    "xhigh": "high",
}
ROLES = ("user", "assistant", "system")  # Claude Code puts system-role messages between turns


def _bad(field: str, reason: str) -> ApiError:
    return ApiError("invalid_parameter", field=field, reason=reason, meta={"field": field})


def check(body: dict) -> None:
    """The fields every Messages request must have, with Anthropic's field names in errors."""
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise ApiError("missing_parameter", field=name, meta={"field": name})
    if (
        isinstance(body["max_tokens"], bool)
        or not isinstance(body["max_tokens"], int)
        or body["max_tokens"] < 1
    ):
        raise _bad("max_tokens", "must be a positive integer")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "must be a non-empty array")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise _bad(f"messages.{index}.role", "must be 'user', 'assistant' or 'system'")
        if not isinstance(message.get("content"), (str, list)):
            raise _bad(f"messages.{index}.content", "must be a string or an array of content blocks")
    for name in ("tools", "stop_sequences"):
        if body.get(name) is not None and not isinstance(body[name], list):
            raise _bad(name, "must be an array")
    if body.get("system") is not None and not isinstance(body["system"], (str, list)):
        raise _bad("system", "must be a string or an array of text blocks")
    check_thinking(body)  # sent to Anthropic as it is: its budget must be the one the hold bounds


# Anthropic-defined tools the client runs (bash, text editor, computer use, memory): tokens only
CLIENT_TOOL_TYPES = ("bash_", "text_editor_", "computer_", "memory_")
# request fields that make Anthropic run something (MCP servers, code containers) whose results
# enter the context after the hold was taken
RUN_BY_ANTHROPIC = ("mcp_servers", "container")


def _refused(field: str, model: str, reason: str) -> ApiError:
    return ApiError("unsupported_parameter", field=field, model=model, reason=reason, meta={"field": field})


def check_billable(body: dict) -> None:
    """Refuse what Anthropic would bill beyond the tokens a hold can bound, on every model: server
    tools (web search and fetch, code execution, ...: fees per use, results that grow the context),
    MCP servers and containers, and a speed dearer than the standard price the catalog sells."""
    model = str(body.get("model"))
    for index, tool in enumerate(body.get("tools") or ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind != "custom" and not kind.startswith(CLIENT_TOOL_TYPES):
            raise _refused(f"tools.{index}", model, f"Anthropic server tool {kind!r} is not available here")
    for name in RUN_BY_ANTHROPIC:
        if body.get(name) is not None:
            raise _refused(name, model, f"'{name}' is not available here")
    if body.get("speed") not in (None, "standard"):
        raise _refused("speed", model, "only the standard speed is sold")


class _Translator:
    def __init__(self, model: ModelInfo, *, lenient: bool):
        self.model = model
        self.lenient = lenient  # a Claude model's fallback: drop what cannot be said, keep cache_control

    def unsupported(self, field: str, reason: str) -> None:
        if not self.lenient:
            raise ApiError(
                "unsupported_parameter",
                field=field,
                model=self.model.slug,
                reason=reason,
                meta={"field": field},
            )

    def text_part(self, block: dict) -> dict:
        part = {"type": "text", "text": str(block.get("text") or "")}
        if self.lenient and block.get("cache_control"):
            part["cache_control"] = block["cache_control"]
        return part

    def media_part(self, block: dict, field: str) -> dict | None:
        source = as_object(block.get("source"))
        kind, stype = block.get("type"), source.get("type")
        if stype == "base64" and kind == "image":
            return {
                "type": "image_url",
                "image_url": {
                    "url": f"data:{source.get('media_type') or 'image/png'};base64,{source.get('data') or ''}"
                },
            }
        if stype == "url" and kind == "image":
            return {"type": "image_url", "image_url": {"url": str(source.get("url") or "")}}
        if stype == "base64" and kind == "document":
            media = source.get("media_type") or "application/pdf"
            return {
                "type": "file",
                "file": {
                    "filename": block.get("title") or "document.pdf",
                    "file_data": f"data:{media};base64,{source.get('data') or ''}",
                },
            }
        if stype == "text" and kind == "document":
            return {"type": "text", "text": str(source.get("data") or "")}
        if stype == "content" and kind == "document":
            return {"type": "text", "text": _plain_text(source.get("content"))}
        self.unsupported(field, f"{kind} source type {stype!r} cannot be sent to this model")
        return None

    def user_turn(self, content, index: int) -> list[dict]:
        """One user message → Chat messages: tool results first, then the rest of the turn."""
        if isinstance(content, str):
            return [{"role": "user", "content": content}]
        tools, parts = [], []
        for position, block in enumerate(content):
            field = f"messages.{index}.content.{position}"
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                parts.append(self.text_part(block))
            elif kind in ("image", "document"):
                parts.extend(p for p in [self.media_part(block, field)] if p)
            elif kind == "tool_result":
                text, images = self.tool_result(block, field)
                tools.append(
                    {"role": "tool", "tool_call_id": str(block.get("tool_use_id") or ""), "content": text}
                )
                parts.extend(images)
            elif kind not in ("thinking", "redacted_thinking"):
                self.unsupported(field, f"content block type {kind!r} cannot be sent to this model")
        return tools + ([{"role": "user", "content": _collapse(parts)}] if parts else [])

    def tool_result(self, block: dict, field: str) -> tuple[str, list[dict]]:
        content = block.get("content")
        if not isinstance(content, list):
            text = "" if content is None else str(content)
            return (f"Error: {text}" if block.get("is_error") else text), []
        texts: list[str] = []
        images: list[dict[str, Any]] = []
        for item in content:
            if isinstance(item, dict) and item.get("type") in ("image", "document"):
                images.extend(p for p in [self.media_part(item, field)] if p)
            elif isinstance(item, dict):
                texts.append(str(item.get("text") or ""))
        text = "\n".join(texts)
        return (f"Error: {text}" if block.get("is_error") else text), images

    @staticmethod
    def assistant_turn(content) -> list[dict]:
        if isinstance(content, str):
            return [{"role": "assistant", "content": content}]
        texts, calls = [], []
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "text":
                texts.append(str(block.get("text") or ""))
            elif kind == "tool_use":
                calls.append(
                    {
                        "id": str(block.get("id") or ""),
                        "type": "function",
                        "function": {
                            "name": str(block.get("name") or ""),
                            "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False),
                        },
                    }
                )
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(texts) if texts or not calls else None,
        }
        if calls:
            message["tool_calls"] = calls
        return [message]

    def system(self, system) -> list[dict]:
        if isinstance(system, str):
            return [{"role": "system", "content": system}] if system else []
        parts = [self.text_part(b) for b in system or () if isinstance(b, dict) and b.get("type") == "text"]
        return [{"role": "system", "content": _collapse(parts, separator="\n\n")}] if parts else []

    def tools(self, body: dict, out: dict) -> None:
        tools = []
        for index, tool in enumerate(body.get("tools") or ()):
            if (
                not isinstance(tool, dict)
                or tool.get("type") not in (None, "custom")
                or "input_schema" not in tool
            ):
                kind = tool.get("type") if isinstance(tool, dict) else None
                self.unsupported(
                    f"tools.{index}", f"Anthropic server tool {kind!r} cannot be used with this model"
                )
                continue
            function = {"name": str(tool.get("name") or ""), "parameters": tool.get("input_schema") or {}}
            if tool.get("description"):
                function["description"] = tool["description"]
            tools.append({"type": "function", "function": function})
        if not tools:
            return
        out["tools"] = tools
        choice = as_object(body.get("tool_choice"))
        kind = choice.get("type")
        if kind == "tool" and choice.get("name"):
            out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        elif kind in ("auto", "any", "none"):
            out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
        if choice.get("disable_parallel_tool_use") and kind != "none":
            out["parallel_tool_calls"] = False

    def sampling(self, body: dict, out: dict) -> None:
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                out[name] = body[name]
        if body.get("top_k") is not None and self.model.vendor.lower().startswith("google"):
            out["top_k"] = body["top_k"]
        stops = [s for s in body.get("stop_sequences") or () if isinstance(s, str) and s]
        if stops:
            out["stop"] = stops
        effort = _effort(body)
        if effort and self.model.reasoning:
            out["reasoning_effort"] = effort


def _effort(body: dict) -> str | None:
    thinking = as_object(body.get("thinking"))
    if thinking.get("type") == "adaptive":
        config = as_object(body.get("output_config"))
        return EFFORTS.get(config.get("effort"), "medium")
    if thinking.get("type") != "enabled":
        return None
    asked = thinking.get("budget_tokens")
    budget = asked if isinstance(asked, int) else 0
    return next((effort for limit, effort in EFFORT_BY_BUDGET if budget < limit), "high")


def _plain_text(content) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(str(b.get("text") or "") for b in content or () if isinstance(b, dict))


def _collapse(parts: list[dict], separator: str = "\n"):
    """Plain text stays a string (every OpenAI-compatible vendor takes that); anything else, parts."""
    if all(p["type"] == "text" and "cache_control" not in p for p in parts):
        return separator.join(p["text"] for p in parts)
    return parts


def to_chat(body: dict, model: ModelInfo, *, lenient: bool) -> dict:
    """The Chat Completions body for `body` (already check()ed). `lenient`: for a Claude model,
    whose Anthropic route gets the original; only its OpenAI-compatible fallback sees this."""
    translator = _Translator(model, lenient=lenient)
    messages = translator.system(body.get("system"))
    for index, message in enumerate(body["messages"]):
        content = message["content"]
        if message["role"] == "assistant":
            messages += translator.assistant_turn(content)
        elif message["role"] == "system":
            messages += translator.system(content)
        else:
            messages += translator.user_turn(content, index)
    out = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    if body.get("stream") is not None:
        out["stream"] = body["stream"]
    translator.tools(body, out)
    translator.sampling(body, out)
    return out
