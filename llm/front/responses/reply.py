"""Responses API objects built from the canonical chat reply: the `response` object, its output
items and its usage (https://platform.openai.com/docs/api-reference/responses/object)."""

import time
from typing import Any

from gpuniq_site.ids import unique_hex

from ...providers.base import Usage, text_of

ECHOED = (
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "temperature",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
    "store",
    "reasoning",
    "text",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "background",
    "max_tool_calls",
    "top_logprobs",
)
DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "temperature": 1.0,
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
    "store": True,
    "reasoning": {"effort": None, "summary": None},
    "text": {"format": {"type": "text"}},
    "service_tier": "default",
    "background": False,
}


# what a forwarded response says about our side of it: our id, our storage, our conversation
OURS = ("id", "previous_response_id", "store", "metadata")


def new_id(prefix: str) -> str:
    return f"{prefix}_{unique_hex(128)}"


def usage_object(usage: Usage, cost=None) -> dict:
    out = {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": getattr(usage, "cache_write_tokens", 0),
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
    if cost is not None:
        out["cost_usd"] = float(cost)
    return out


def shell(body: dict, *, response_id: str, slug: str, status: str, created_at: int | None = None) -> dict:
    """A response object without output: the request's settings echoed, as OpenAI does."""
    obj = {
        "id": response_id,
        "object": "response",
        "created_at": created_at or int(time.time()),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": slug,
        "output": [],
        "usage": None,
    }
    for name in ECHOED:
        value = body.get(name, DEFAULTS.get(name))
        if name in body or name in DEFAULTS:
            obj[name] = value
    if obj.get("reasoning") is None:
        obj["reasoning"] = DEFAULTS["reasoning"]
    return obj


def message_item(
    text: str, *, item_id: str | None = None, status: str = "completed", refusal: str | None = None
) -> dict:
    part = (
        {"type": "refusal", "refusal": refusal}
        if refusal
        else {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    )
    return {
        "id": item_id or new_id("msg"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [part],
    }


def call_item(call: dict, *, item_id: str | None = None, status: str = "completed") -> dict:
    function = call.get("function") or {}
    return {
        "id": item_id or new_id("fc"),
        "type": "function_call",
        "status": status,
        "call_id": call.get("id") or new_id("call"),
        "name": function.get("name") or "",
        "arguments": function.get("arguments") or "",
    }


def reasoning_item(text: str, *, item_id: str | None = None) -> dict:
    return {
        "id": item_id or new_id("rs"),
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }


def output_items(message: dict) -> list[dict]:
    """The output items of one chat reply message: reasoning, then text (or refusal), then calls."""
    items = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        items.append(reasoning_item(reasoning))
    text = text_of(message.get("content"))
    if text or message.get("refusal"):
        items.append(message_item(text, refusal=message.get("refusal")))
    items += [call_item(call) for call in message.get("tool_calls") or ()]
    return items


def finish(obj: dict, *, output: list, usage: Usage | None, cost, finish_reason: str | None) -> dict:
    """Complete `obj` with its output, status and usage."""
    obj["output"] = output
    if finish_reason == "length":
        obj["status"], obj["incomplete_details"] = "incomplete", {"reason": "max_output_tokens"}
    elif finish_reason == "content_filter":
        obj["status"], obj["incomplete_details"] = "incomplete", {"reason": "content_filter"}
    else:
        obj["status"] = "completed"
    obj["usage"] = usage_object(usage, cost) if usage is not None else None
    return obj


def from_chat(body: dict, chat_reply: dict, *, response_id: str, slug: str, usage: Usage, cost) -> dict:
    """The Responses object for a non-streamed chat completion."""
    choice = (chat_reply.get("choices") or [{}])[0]
    obj = shell(
        body, response_id=response_id, slug=slug, status="in_progress", created_at=chat_reply.get("created")
    )
    return finish(
        obj,
        output=output_items(choice.get("message") or {}),
        usage=usage,
        cost=cost,
        finish_reason=choice.get("finish_reason"),
    )
