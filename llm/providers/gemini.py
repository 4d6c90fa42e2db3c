"""Google Gemini API (generateContent / streamGenerateContent) behind the OpenAI chat interface.

Requests are translated to Gemini's wire format (https://ai.google.dev/api/generate-content):
system/developer messages become `systemInstruction`, assistant turns are role "model", tool
results are `functionResponse` parts of a user turn, JSON schemas are cut down to the OpenAPI
subset Gemini accepts. Replies come back as OpenAI objects: thought parts become
`reasoning_content`, functionCall parts become `tool_calls`. Gemini repeats running usage totals
in every stream chunk, so the stream's usage is the last one seen.
"""

import json
import mimetypes
import re
from collections.abc import AsyncGenerator
from typing import Any

from gpuniq_site.ids import unique_hex
from gpuniq_site.json_body import as_object

from ..upstreams import Upstream
from .base import (
    SILENCE,
    ChatRequest,
    ChunkBuilder,
    Route,
    StreamPiece,
    TranslatedPiece,
    UpstreamError,
    Usage,
    completion_object,
    text_of,
)
from .http import generic_error, post_json, post_stream, retry_after, scrub, sse_data
from .wire import TICK

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
THINKING_BUDGETS = {"none": 0, "minimal": 0, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}
# Gemini's Schema object (an OpenAPI 3.0 subset); anything else is rejected with a 400
SCHEMA_KEYS = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
}
SCHEMA_FORMATS = {"enum", "date-time", "float", "double", "int32", "int64"}
# Gemini 3 requires a thought signature on replayed function calls; clients speaking OpenAI's
# format cannot keep it, so Google's documented sentinel stands in for it
SKIP_SIGNATURE = "skip_thought_signature_validator"
_CONTEXT_MARKERS = (
    "exceeds the maximum number of tokens",
    "input token count",
    "context window",
    "too many tokens",
)
_STATUS_KINDS = {
    "PERMISSION_DENIED": "auth",
    "UNAUTHENTICATED": "auth",
    "FAILED_PRECONDITION": "bad_request",
    "OUT_OF_RANGE": "bad_request",
    "RESOURCE_EXHAUSTED": "rate_limited",
    "NOT_FOUND": "not_found",
    "UNAVAILABLE": "server",
    "INTERNAL": "server",
    "UNKNOWN": "server",
    "DEADLINE_EXCEEDED": "timeout",
}
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)?(?:;[^,;]*)*;base64,(.*)", re.S)
_VERSION = re.compile(r"gemini-(\d+)(?:\.(\d+))?")


# --- errors ---------------------------------------------------------------------------------


def error_from(error: dict, status: int | None = None, retry: float | None = None) -> UpstreamError:
    """An UpstreamError for Gemini's `{"code", "message", "status", "details"}` error object."""
    code = status or _int(error.get("code"))
    grpc = str(error.get("status") or "")
    message = str(error.get("message") or "")
    found = error.get("details")
    details = found if isinstance(found, list) else []
    reasons = {str(d.get("reason")) for d in details if isinstance(d, dict) and d.get("reason")}
    if grpc == "INVALID_ARGUMENT" or (code == 400 and not grpc):
        if any(marker in message.lower() for marker in _CONTEXT_MARKERS):
            kind = "context_length"
        elif "API_KEY_INVALID" in reasons or "api key not valid" in message.lower():
            kind = "auth"
        else:
            kind = "bad_request"
    elif grpc in _STATUS_KINDS:
        kind = _STATUS_KINDS[grpc]
    else:
        kind = {401: "auth", 403: "auth", 404: "not_found", 408: "timeout", 429: "rate_limited"}.get(
            code, "server" if code >= 500 or code == 0 else "bad_request"
        )
    if retry is None and kind == "rate_limited":
        retry = next(
            (_seconds(d.get("retryDelay")) for d in details if isinstance(d, dict) and d.get("retryDelay")),
            None,
        )
    return UpstreamError(kind, scrub(message), status=code or None, retry_after=retry)


def parse_error(status: int, body: bytes, headers) -> UpstreamError:
    try:
        data = json.loads(body)
        error = (data[0] if isinstance(data, list) and data else data).get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, dict):
        return generic_error(status, body, headers)
    return error_from(error, status, retry_after(headers))


def _int(value) -> int:
    return (
        int(value) if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()) else 0
    )


def _seconds(value) -> float | None:
    """Seconds of a protobuf Duration ("17s", "0.5s")."""
    return float(value[:-1]) if re.fullmatch(r"\d+(\.\d+)?s", str(value)) else None


# --- request mapping ------------------------------------------------------------------------


def model_version(model: str) -> float | None:
    match = _VERSION.search(model or "")
    return float(f"{match[1]}.{match[2] or 0}") if match else None


def is_thinking_model(model: str) -> bool:
    version = model_version(model)
    return "thinking" in model or "reason" in model or (version is not None and version >= 2.5)


def clean_schema(schema: object, defs: dict | None = None, depth: int = 0) -> dict[str, Any]:
    """A JSON schema reduced to Gemini's Schema subset: local $refs inlined, type lists turned into
    `nullable`/`anyOf`, `const` into `enum`, unsupported keywords (additionalProperties, $schema,
    strict, ...) dropped."""
    if not isinstance(schema, dict) or depth > 12:
        return {}
    defs = {**(defs or {}), **(schema.get("$defs") or {}), **(schema.get("definitions") or {})}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        return clean_schema(
            {**(target or {}), **{k: v for k, v in schema.items() if k != "$ref"}}, defs, depth + 1
        )
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: clean_schema(sub, defs, depth + 1) for name, sub in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = clean_schema(value, defs, depth + 1)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            out["anyOf"] = [clean_schema(sub, defs, depth + 1) for sub in value]
        elif key == "const":
            out["enum"] = [value]
        elif key in SCHEMA_KEYS and key not in ("type", "format", "enum"):
            out[key] = value
    _clean_type(schema, out)
    if any(sub == {"nullable": True} for sub in out.get("anyOf") or ()):  # anyOf [X, null]: a nullable X
        rest = [sub for sub in out.pop("anyOf") if sub != {"nullable": True}]
        out = (
            {**rest[0], **out, "nullable": True}
            if len(rest) == 1
            else {**out, "anyOf": rest, "nullable": True}
        )
    if isinstance(out.get("required"), list) and isinstance(out.get("properties"), dict):
        out["required"] = [name for name in out["required"] if name in out["properties"]]
    return out


def _clean_type(schema: dict, out: dict) -> None:
    types = schema.get("type")
    types = [types] if isinstance(types, str) else [t for t in types or () if isinstance(t, str)]
    if "null" in types:
        out["nullable"] = True
        types = [t for t in types if t != "null"]
    if len(types) == 1:
        out["type"] = types[0].upper()
    elif len(types) > 1 and "anyOf" not in out:
        out["anyOf"] = [{"type": t.upper()} for t in types]
    if schema.get("format") in SCHEMA_FORMATS:
        out["format"] = schema["format"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        out["enum"] = enum
    elif isinstance(out.get("enum"), list) and not all(isinstance(v, str) for v in out["enum"]):
        del out["enum"]
    if "enum" in out and "type" not in out:
        out["type"] = "STRING"


def _media_part(url: str, default_mime: str) -> dict:
    match = _DATA_URL.match(url)
    if match:
        return {"inlineData": {"mimeType": match[1] or default_mime, "data": match[2]}}
    guessed = mimetypes.guess_type(url.split("?", 1)[0])[0] or ""
    mime = guessed if guessed.split("/")[0] == default_mime.split("/")[0] else default_mime
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def user_parts(content) -> list[dict]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts = []
    for part in content if isinstance(content, list) else ():
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and part.get("text"):
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(
                _media_part(str((image.get("url") if isinstance(image, dict) else image) or ""), "image/jpeg")
            )
    return parts


def _assistant_parts(message: dict, names: dict, signed: bool) -> list[dict]:
    text = text_of(message.get("content"))
    parts: list[dict[str, Any]] = [{"text": text}] if text else []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        try:
            args = json.loads(function.get("arguments") or "{}")
        except ValueError:
            args = {}
        names[call.get("id")] = function.get("name", "")
        part: dict[str, Any] = {
            "functionCall": {"name": function.get("name", ""), "args": args if isinstance(args, dict) else {}}
        }
        if signed and not any("functionCall" in p for p in parts):
            part["thoughtSignature"] = SKIP_SIGNATURE
        parts.append(part)
    return parts


def _tool_result_part(message: dict, names: dict) -> dict:
    text = text_of(message.get("content"))
    try:
        response = {"content": json.loads(text)}
    except ValueError:
        response = {"result": text}
    name = names.get(message.get("tool_call_id")) or message.get("name") or "function"
    return {"functionResponse": {"name": name, "response": response}}


def map_messages(messages: list, model: str = "") -> tuple[list[dict], list[dict]]:
    """(systemInstruction parts, contents) for OpenAI `messages`; same-role turns are merged."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    signed = (model_version(model) or 3) >= 3
    for message in messages or ():
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            text = text_of(message.get("content"))
            system += [{"text": text}] if text else []
            continue
        if role == "assistant":
            gemini_role, parts = "model", _assistant_parts(message, names, signed)
        elif role in ("tool", "function"):
            gemini_role, parts = "user", [_tool_result_part(message, names)]
        else:
            gemini_role, parts = "user", user_parts(message.get("content"))
        if not parts:
            continue
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    if not contents and system:  # Gemini needs contents; a lone system prompt becomes the user turn
        system, contents = [], [{"role": "user", "parts": system}]
    return system, contents


def map_tools(tools) -> list[dict]:
    declarations = []
    for tool in tools or ():
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            continue
        function = tool.get("function") or {}
        declaration = {"name": function.get("name", "")}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = clean_schema(function.get("parameters"))
        if parameters.get("properties") or parameters.get("type", "OBJECT") != "OBJECT":
            declaration["parameters"] = parameters
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def map_tool_choice(choice) -> dict | None:
    if choice in ("auto", "none", "required"):
        return {
            "functionCallingConfig": {"mode": {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]}
        }
    if not isinstance(choice, dict):
        return None
    name = (choice.get("function") or {}).get("name")
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}} if name else None


def thinking_config(body: dict, model: str) -> dict | None:
    reasoning = as_object(body.get("reasoning"))
    effort = body.get("reasoning_effort") or reasoning.get("effort")
    version = model_version(model) or 0
    if effort not in THINKING_BUDGETS:
        return {"includeThoughts": True} if is_thinking_model(model) else None
    if version >= 3:  # Gemini 3 takes levels; Pro knows only low and high
        level = {"none": "minimal", "xhigh": "high"}.get(effort, effort)
        if "flash" not in model:
            level = "low" if level in ("minimal", "low") else "high"
        return {"thinkingLevel": level, "includeThoughts": True}
    budget = THINKING_BUDGETS[effort]
    if budget == 0 and "pro" in model:  # 2.5 Pro cannot switch thinking off; 128 is its floor
        budget = 128
    return {"thinkingBudget": budget, "includeThoughts": budget > 0}


def generation_config(body: dict, max_output_tokens: int | None = None, model: str = "") -> dict:
    config = {}
    for src, dst in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("n", "candidateCount"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(src) is not None:
            config[dst] = body[src]
    limits = [
        v for v in (body.get("max_completion_tokens") or body.get("max_tokens"), max_output_tokens) if v
    ]
    if limits:
        config["maxOutputTokens"] = min(limits)
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("logprobs"):
        config["responseLogprobs"] = True
        if body.get("top_logprobs"):
            config["logprobs"] = body["top_logprobs"]
    response_format = body.get("response_format") or {}
    if response_format.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (response_format.get("json_schema") or {}).get("schema")
        if response_format["type"] == "json_schema" and isinstance(schema, dict):
            config["responseSchema"] = clean_schema(schema)
    thinking = thinking_config(body, model)
    if thinking:
        config["thinkingConfig"] = thinking
    return config


def build_body(request: ChatRequest, upstream_model: str) -> dict:
    body = request.body
    # an upstream id without a version (an alias) says less about the model than our slug
    model = (
        upstream_model if model_version(upstream_model) is not None else f"{upstream_model} {request.slug}"
    )
    system, contents = map_messages(body.get("messages") or [], model)
    out: dict = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = map_tools(body.get("tools"))
    if tools:
        out["tools"] = tools
        tool_config = map_tool_choice(body.get("tool_choice"))
        if tool_config:
            out["toolConfig"] = tool_config
    config = generation_config(body, request.max_output_tokens, model)
    if config:
        out["generationConfig"] = config
    return out


# --- response mapping -----------------------------------------------------------------------


def map_usage(meta) -> Usage | None:
    if not isinstance(meta, dict):
        return None
    thoughts = _int(meta.get("thoughtsTokenCount"))
    return Usage(
        prompt_tokens=_int(meta.get("promptTokenCount")) + _int(meta.get("toolUsePromptTokenCount")),
        completion_tokens=_int(meta.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_int(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def map_finish(reason: str | None, has_calls: bool = False) -> str | None:
    if not reason:
        return None
    mapped = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if has_calls and mapped == "stop" else mapped


def map_logprobs(result) -> dict | None:
    if not isinstance(result, dict) or not result.get("chosenCandidates"):
        return None
    tops = result.get("topCandidates") or []

    def entry(c: dict) -> dict:
        token = str(c.get("token", ""))
        return {"token": token, "logprob": c.get("logProbability", 0.0), "bytes": list(token.encode())}

    return {
        "content": [
            {
                **entry(c),
                "top_logprobs": [entry(t) for t in (tops[i].get("candidates") or [])]
                if i < len(tops)
                else [],
            }
            for i, c in enumerate(result["chosenCandidates"])
        ]
    }


def tool_call(function_call: dict) -> dict:
    return {
        "id": "call_" + unique_hex(96),
        "type": "function",
        "function": {
            "name": function_call.get("name", ""),
            "arguments": json.dumps(function_call.get("args") or {}, ensure_ascii=False),
        },
    }


def map_candidate(candidate: dict) -> tuple[dict, str | None]:
    """(OpenAI message, finish_reason) for one Gemini candidate."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if isinstance(part.get("functionCall"), dict):
            calls.append(tool_call(part["functionCall"]))
        elif isinstance(part.get("text"), str):
            (thoughts if part.get("thought") else texts).append(part["text"])
    message: dict = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    return message, map_finish(candidate.get("finishReason"), bool(calls))


def _blocked(data: dict) -> UpstreamError | None:
    reason = (data.get("promptFeedback") or {}).get("blockReason")
    return (
        UpstreamError("content_policy", f"the prompt was blocked by the provider ({reason})")
        if reason
        else None
    )


def to_completion(data, slug: str) -> tuple[dict, Usage | None]:
    if not isinstance(data, dict):
        raise UpstreamError("malformed", "the provider's reply is not an object")
    candidates = sorted(data.get("candidates") or [], key=lambda c: _int(c.get("index")))
    if not candidates:
        raise _blocked(data) or UpstreamError("malformed", "the provider's reply has no candidates")
    usage = map_usage(data.get("usageMetadata"))
    choices: list[dict[str, Any]] = []
    for i, candidate in enumerate(candidates):
        message, finish = map_candidate(candidate)
        message.setdefault("refusal", None)
        choices.append(
            {
                "index": i,
                "message": message,
                "logprobs": map_logprobs(candidate.get("logprobsResult")),
                "finish_reason": finish,
            }
        )
    obj = completion_object(
        model=slug, message=choices[0]["message"], finish_reason=choices[0]["finish_reason"], usage=usage
    )
    obj["choices"] = choices
    return obj, usage


class _StreamState:
    """Turns Gemini stream chunks into OpenAI chunk pieces for one reply."""

    def __init__(self, builder: ChunkBuilder):
        self.builder = builder
        self.usage: Usage | None = None
        self.finished = False
        self.started: set[int] = set()
        self.calls: dict[int, int] = {}

    def feed(self, data: dict) -> list[StreamPiece]:
        if "error" in data:
            error = data["error"] if isinstance(data["error"], dict) else {"message": str(data["error"])}
            raise error_from(error)
        if data.get("usageMetadata"):
            self.usage = map_usage(data["usageMetadata"])
        candidates = data.get("candidates") or []
        blocked = None if candidates else _blocked(data)
        if blocked:
            raise blocked
        pieces = [piece for candidate in candidates for piece in self._candidate(candidate)]
        if pieces and self.usage is not None:
            pieces[-1].partial_usage = self.usage  # running totals: what a cut stream is billed from
        return pieces

    def _candidate(self, candidate: dict) -> list[StreamPiece]:
        index = _int(candidate.get("index"))
        pieces = []
        if index not in self.started:
            self.started.add(index)
            pieces.append(self._piece(index, {"role": "assistant", "content": ""}))
        for part in (candidate.get("content") or {}).get("parts") or ():
            if isinstance(part.get("functionCall"), dict):
                call = tool_call(part["functionCall"])
                self.calls[index] = self.calls.get(index, 0) + 1
                pieces.append(
                    self._piece(
                        index,
                        {"tool_calls": [{"index": self.calls[index] - 1, **call}]},
                        len(call["function"]["arguments"]),
                    )
                )
            elif isinstance(part.get("text"), str) and part["text"]:
                key = "reasoning_content" if part.get("thought") else "content"
                pieces.append(self._piece(index, {key: part["text"]}, len(part["text"])))
        if candidate.get("finishReason"):
            self.finished = True
            finish = map_finish(candidate["finishReason"], index in self.calls)
            pieces.append(self._piece(index, {}, finish_reason=finish))
        return pieces

    def _piece(
        self, index: int, delta: dict, chars: int = 0, finish_reason: str | None = None
    ) -> StreamPiece:
        chunk = self.builder.chunk(delta, finish_reason)
        chunk["choices"][0]["index"] = index
        return TranslatedPiece.of(chunk, text_chars=chars, finish_reason=finish_reason)


def _feed(state: _StreamState, data: bytes) -> list[StreamPiece]:
    try:
        obj = json.loads(data)
        if isinstance(obj, dict):
            return state.feed(obj)
    except (ValueError, AttributeError, TypeError):  # not JSON, or JSON of an unexpected shape
        pass
    raise UpstreamError("malformed", "the provider sent an unreadable stream event")


class GeminiProvider:
    name = "gemini"

    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self._headers = {"x-goog-api-key": upstream.api_key, "Content-Type": "application/json"}

    @staticmethod
    def _path(route: Route, method: str) -> str:
        model = route.upstream_model.removeprefix("models/")
        return f"/v1beta/models/{model}:{method}"

    async def complete(self, request: ChatRequest, route: Route) -> tuple[dict, Usage | None]:
        data = await post_json(
            self.upstream,
            self._path(route, "generateContent"),
            headers=self._headers,
            body=build_body(request, route.upstream_model),
            first_byte=request.first_byte_timeout,
            error_parser=parse_error,
        )
        try:
            return to_completion(data, request.slug)
        except (AttributeError, TypeError):  # a reply of an unexpected shape
            raise UpstreamError("malformed", "the provider sent a reply of an unexpected shape") from None

    async def stream(self, request: ChatRequest, route: Route) -> AsyncGenerator[StreamPiece, None]:
        builder = ChunkBuilder(model=request.slug)
        state = _StreamState(builder)
        async with post_stream(
            self.upstream,
            self._path(route, "streamGenerateContent?alt=sse"),
            headers=self._headers,
            body=build_body(request, route.upstream_model),
            first_byte=request.first_byte_timeout,
            error_parser=parse_error,
        ) as response:
            async for data in sse_data(response):
                if data is TICK:
                    yield SILENCE
                    continue
                if not data.strip() or data.strip() == b"[DONE]":
                    continue
                for piece in _feed(state, data):
                    yield piece
        if not state.finished:
            raise UpstreamError("connect", "stream cut off")
        if state.usage is not None:
            yield builder.usage_piece(state.usage)
