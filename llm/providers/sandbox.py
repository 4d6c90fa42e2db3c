"""The built-in sandbox: serves models whose vendor has no key when GPUNIQ_SANDBOX=1.

Deterministic text derived from the prompt, token counts from a simple word/punctuation
tokenizer, streams paced like a fast model, and a tool call when tools are offered. Every
reply says it is simulated (system_fingerprint "gpuniq-sandbox"; the views add a header).
"""

import asyncio
import json
import re
import shlex
from collections.abc import AsyncGenerator

from gpuniq_site.ids import unique_hex

from .base import ChatRequest, ChunkBuilder, Route, StreamPiece, Usage, completion_object, sse, text_of

FINGERPRINT = "gpuniq-sandbox"
CHUNK_DELAY = 0.012
_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def prompt_tokens(body: dict) -> int:
    messages = body.get("messages") or []
    total = sum(count_tokens(text_of(m.get("content"))) + 4 for m in messages if isinstance(m, dict))
    if body.get("tools"):
        total += count_tokens(json.dumps(body["tools"]))
    return total + 3


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def _sample(schema, text: str, name: str = ""):
    """A simulated value matching a JSON schema (for response_format json_schema)."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return _sample(schema[key][0], text, name)
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {
            key: _sample(props.get(key, {"type": "string"}), text, key)
            for key in (schema.get("required") or props)
        }
    if kind == "array":
        return [
            _sample(schema.get("items", {"type": "string"}), text, name)
            for _ in range(max(int(schema.get("minItems") or 0), 1))
        ]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1 if kind == "integer" else 0)
    if kind == "boolean":
        return True
    if name == "command":
        return "echo " + shlex.quote(f"simulated command for: {text[:120]}")
    return f"Simulated by the GPUniq sandbox: {text[:120]}"


def _structured(request: ChatRequest) -> str | None:
    response_format = request.body.get("response_format")
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return json.dumps(_sample(schema, _last_user_text(request.body)))
    if response_format.get("type") == "json_object":
        return json.dumps(
            {"answer": f"Simulated by the GPUniq sandbox: {_last_user_text(request.body)[:120]}"}
        )
    return None


def _reply_words(request: ChatRequest) -> list[str]:
    structured = _structured(request)
    if structured is not None:
        return [structured]
    body = request.body
    last = body["messages"][-1] if body.get("messages") else {}
    if isinstance(last, dict) and last.get("role") == "tool":
        text = f"The tool returned: {text_of(last.get('content'))[:400]}"
    else:
        asked = " ".join(_last_user_text(body).split())[:400] or "(no question)"
        text = (
            f"This is a simulated reply from the GPUniq sandbox for {request.slug}; no vendor key is "
            f"configured, so no real model was called. You wrote: \u201c{asked}\u201d. In a real deployment "
            "the model's answer appears here, streamed token by token and billed from real usage."
        )
    words = re.findall(r"\S+\s*", text)
    limit = request.body.get("max_completion_tokens") or request.body.get("max_tokens")
    return words[: int(limit)] if isinstance(limit, int) and limit > 0 else words


def _tool_call(body: dict) -> dict | None:
    tools = body.get("tools") or []
    last = body["messages"][-1] if body.get("messages") else {}
    if (
        not tools
        or body.get("tool_choice") == "none"
        or not isinstance(last, dict)
        or last.get("role") != "user"
    ):
        return None
    function = (tools[0] or {}).get("function") or {}
    props = (function.get("parameters") or {}).get("properties") or {}
    samples: dict[object, object] = {
        "string": "example",
        "integer": 1,
        "number": 1.0,
        "boolean": True,
        "array": [],
        "object": {},
    }
    args = {name: samples.get((spec or {}).get("type"), "example") for name, spec in props.items()}
    return {
        "id": "call_" + unique_hex(96),
        "type": "function",
        "function": {"name": function.get("name", "tool"), "arguments": json.dumps(args)},
    }


class SandboxProvider:
    name = "sandbox"

    async def complete(self, request: ChatRequest, route: Route) -> tuple[dict, Usage]:
        call = _tool_call(request.body)
        if call:
            message, finish, completion = (
                {"role": "assistant", "content": None, "tool_calls": [call]},
                "tool_calls",
                count_tokens(call["function"]["arguments"]) + 3,
            )
        else:
            words = _reply_words(request)
            text = "".join(words)
            message, finish, completion = {"role": "assistant", "content": text}, "stop", count_tokens(text)
        usage = Usage(prompt_tokens=prompt_tokens(request.body), completion_tokens=completion)
        return completion_object(
            model=request.slug,
            message=message,
            finish_reason=finish,
            usage=usage,
            system_fingerprint=FINGERPRINT,
        ), usage

    async def stream(self, request: ChatRequest, route: Route) -> AsyncGenerator[StreamPiece, None]:
        builder = ChunkBuilder(model=request.slug, system_fingerprint=FINGERPRINT)
        yield StreamPiece(data=sse(builder.chunk({"role": "assistant", "content": ""})))
        call = _tool_call(request.body)
        completion = 0
        if call:
            delta = {"tool_calls": [{"index": 0, **call}]}
            completion = count_tokens(call["function"]["arguments"]) + 3
            yield StreamPiece(data=sse(builder.chunk(delta)), text_chars=len(call["function"]["arguments"]))
            finish = "tool_calls"
        else:
            for word in _reply_words(request):
                await asyncio.sleep(CHUNK_DELAY)
                completion += count_tokens(word)
                yield StreamPiece(data=sse(builder.chunk({"content": word})), text_chars=len(word))
            finish = "stop"
        yield StreamPiece(data=sse(builder.chunk({}, finish)), finish_reason=finish)
        yield builder.usage_piece(
            Usage(prompt_tokens=prompt_tokens(request.body), completion_tokens=completion)
        )
