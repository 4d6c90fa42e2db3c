"""A Responses API request → the canonical Chat Completions body the gateway runs.

Follows https://platform.openai.com/docs/api-reference/responses/create: `input` is a string or
a list of items (messages with input_text / input_image / output_text / refusal parts,
`function_call`, `function_call_output`; `reasoning` and `item_reference` items are tolerated and
left out of the translation); `instructions` becomes the system message; function tools are
un-flattened; `text.format`, `reasoning.effort`, `max_output_tokens` map to their Chat Completions
fields. Tools of other types (web search, custom, local shell, ...) and items without a Chat
Completions form have no place in a translated request; the OpenAI pass-through forwards them
unchanged, and `uncounted()` gives them to the hold, which must cover that request too.
"""

import json

from gpuniq_site.errors import ApiError

# Tools OpenAI runs itself and bills beyond tokens (per call or per container), whose results enter
# the context after the hold was taken: no hold bounds them, so they reach no vendor
HOSTED_TOOLS = ("web_search", "file_search", "code_interpreter", "image_generation", "mcp")
# Responses fields with a Chat Completions field of the same name and meaning
_SAME = ("temperature", "top_p", "user", "service_tier", "prompt_cache_key", "safety_identifier")
_ROLES = ("user", "assistant", "system", "developer")  # a tuple: a role may be any JSON value


def _bad(field: str, reason: str) -> ApiError:
    return ApiError("invalid_parameter", field=field, reason=reason, meta={"field": field})


def _part(part, field: str) -> dict | None:
    """One content part of a message item as a Chat Completions part (None: nothing to send)."""
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        raise _bad(field, "must be an object")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
        return {"type": "text", "text": str(part.get("text") or "")}
    if kind == "refusal":
        return {"type": "text", "text": str(part.get("refusal") or "")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise _bad(
                f"{field}.image_url", "an image URL or data URL is required (file ids are not supported)"
            )
        image = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise _bad(f"{field}.type", f"content part type '{kind}' is not supported")


def _message(item: dict, field: str) -> dict:
    role = item.get("role")
    if role not in _ROLES:
        raise _bad(f"{field}.role", f"must be one of {', '.join(sorted(_ROLES))}")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _bad(f"{field}.content", "must be a string or an array of content parts")
    parts = [q for i, p in enumerate(content) if (q := _part(p, f"{field}.content[{i}]")) is not None]
    if role != "user" and all(p["type"] == "text" for p in parts):  # assistant/system text: one string
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _tool_call(item: dict, field: str) -> dict:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise _bad(field, "a function_call needs 'call_id' and 'name'")
    arguments = item.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {})
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def _tool_output(item: dict, field: str) -> dict:
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        raise _bad(f"{field}.call_id", "is required")
    output = item.get("output")
    if isinstance(output, list):  # a list of input_text / input_image parts: the text goes to the model
        output = "".join(str(p.get("text") or "") for p in output if isinstance(p, dict))
    elif not isinstance(output, str):
        output = json.dumps(output)
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def messages_from_items(items: list) -> list[dict]:
    """Chat Completions messages for a list of Responses input items (in order)."""
    messages: list[dict] = []
    for index, item in enumerate(items):
        field = f"input[{index}]"
        if not isinstance(item, dict):
            raise _bad(field, "must be an object")
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, field))
        elif kind == "function_call":
            last = messages[-1] if messages else None
            if (
                last is None
                or last["role"] != "assistant"
                or not isinstance(last.get("content"), (str, type(None)))
            ):
                last = {"role": "assistant", "content": None}
                messages.append(last)
            last.setdefault("tool_calls", []).append(_tool_call(item, field))
        elif kind == "function_call_output":
            messages.append(_tool_output(item, field))
        elif kind == "custom_tool_call":  # a freeform tool's call: its text as the one argument
            custom = {**item, "arguments": json.dumps({"input": item.get("input") or ""})}
            messages.append({"role": "assistant", "content": None, "tool_calls": [_tool_call(custom, field)]})
        elif kind == "custom_tool_call_output":
            messages.append(_tool_output(item, field))
        # anything else (reasoning, item references, hosted tools' calls) has no Chat Completions
        # form: left out here, forwarded as it is to OpenAI's own Responses API
    for message in messages:
        if message["role"] == "assistant" and message.get("tool_calls") and message.get("content") == "":
            message["content"] = None
    return messages


def input_items(body: dict) -> list:
    """The request's `input` as a list of items (a string is one user message)."""
    value = body.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if not isinstance(value, list):
        raise _bad("input", "must be a string or an array of input items")
    return value


def chat_tools(tools) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _bad("tools", "must be an array")
    out = []
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _bad(f"tools[{index}]", "must be an object")
        if tool.get("type") != "function":
            continue
        if not isinstance(tool.get("name"), str):
            raise _bad(f"tools[{index}].name", "is required")
        function = {
            "name": tool["name"],
            "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        if tool.get("strict") is not None:
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(choice):
    if choice is None or isinstance(choice, str):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        return choice.get("mode") or "auto"
    raise _bad("tool_choice", "must be 'none', 'auto', 'required' or a function")


def response_format(text) -> dict | None:
    fmt = (text or {}).get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    if fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        schema.setdefault("name", "response")
        return {"type": "json_schema", "json_schema": schema}
    raise _bad("text.format.type", "must be 'text', 'json_object' or 'json_schema'")


_TRANSLATED_ITEMS = (  # a tuple: an item's type may be any JSON value, a list too (unhashable)
    "message",
    "function_call",
    "function_call_output",
    "custom_tool_call",
    "custom_tool_call_output",
)


def hosted(tool) -> bool:
    kind = tool.get("type") if isinstance(tool, dict) else None
    return isinstance(kind, str) and kind.startswith(HOSTED_TOOLS)


def vendor_tools(body: dict) -> dict:
    """`tools` and `tool_choice` of `body` for OpenAI's own Responses API: hosted tools left out
    (and a tool_choice naming one)."""
    out = {}
    tools = body.get("tools")
    if isinstance(tools, list):
        kept = [t for t in tools if not hosted(t)]
        if kept:
            out["tools"] = kept
    choice = body.get("tool_choice")
    if choice is not None and "tools" in out and not hosted(choice):
        out["tool_choice"] = choice
    return out


def uncounted(body: dict, items: list) -> list:
    """What OpenAI's own Responses API would get but the canonical body lacks: tools of other types
    (hosted ones are never sent) and untranslated items (e.g. encrypted reasoning). Only for sizing
    the hold."""
    tools = [
        t for t in vendor_tools(body).get("tools", ()) if isinstance(t, dict) and t.get("type") != "function"
    ]
    untranslated = [
        i for i in items if isinstance(i, dict) and i.get("type", "message") not in _TRANSLATED_ITEMS
    ]
    return tools + untranslated + _tool_output_media(items)


def _tool_output_media(items: list) -> list:
    """The image and file parts of function_call_output items: the canonical tool message keeps
    only their text (_tool_output), but OpenAI's own Responses API gets them and bills them."""
    return [
        part
        for item in items
        if isinstance(item, dict)
        and item.get("type") == "function_call_output"
        and isinstance(item.get("output"), list)
        for part in item["output"]
        if isinstance(part, dict) and part.get("type") != "input_text"
    ]


def chat_body(body: dict, history: list) -> dict:
    """The canonical Chat Completions body for a Responses request whose earlier turns (from
    `previous_response_id`) are `history`, a list of input items."""
    messages = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
    elif isinstance(instructions, list):
        messages += messages_from_items(instructions)
    messages += messages_from_items(history + input_items(body))
    out = {"model": body.get("model"), "messages": messages, "stream": body.get("stream", False)}
    out.update({name: body[name] for name in _SAME if body.get(name) is not None})
    if body.get("max_output_tokens") is not None:
        out["max_completion_tokens"] = body["max_output_tokens"]
    tools = chat_tools(body.get("tools"))
    if tools:
        out["tools"] = tools
        if body.get("tool_choice") is not None:
            out["tool_choice"] = chat_tool_choice(body["tool_choice"])
        if isinstance(body.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort"):
        out["reasoning_effort"] = reasoning["effort"]
    fmt = response_format(body.get("text"))
    if fmt:
        out["response_format"] = fmt
    verbosity = (body.get("text") or {}).get("verbosity") if isinstance(body.get("text"), dict) else None
    if verbosity:
        out["verbosity"] = verbosity
    return out
