"""Fake OpenAI Chat Completions server (also xAI / DeepSeek / MiniMax, same wire format).

Wire format follows https://platform.openai.com/docs/api-reference/chat
(create: POST /v1/chat/completions; streaming: ``chat.completion.chunk`` objects as
``data: {...}\\n\\n`` SSE frames terminated by ``data: [DONE]\\n\\n``; with
``stream_options.include_usage`` every chunk carries ``"usage": null`` and one extra
chunk with ``"choices": []`` and the usage precedes ``[DONE]``), plus
https://platform.openai.com/docs/api-reference/models/list for GET /v1/models and
the error object ``{"error": {"message", "type", "param", "code"}}``.

Routes are served both with and without the ``/v1`` prefix (DeepSeek accepts both).
Reasoning (model name contains "reason"/"thinking") is returned DeepSeek-style as
``reasoning_content`` on ``message`` / ``delta`` (field name configurable; ``None``
= official OpenAI behaviour: reasoning tokens only, no text) and counted in
``usage.completion_tokens_details.reasoning_tokens`` (included in completion_tokens).
Mid-stream errors (fault ``midstream_error``) are sent as ``data: {"error": {...}}``,
which is what the official SDK recognises.

Billing the maximum (``[[bill:max]]`` in the request, see tests/fakes/common.py): prompt = the
o200k_base count (llm.tokens.exact_count, OpenAI's published encoding for GPT-4o and later) of
each message's text + 4 per message + 3 to prime the reply, plus the tools' JSON and 1,445 per
image part (a high-detail image's largest tiling, 85 + 170 x 8 tiles, per
https://platform.openai.com/docs/guides/images-vision); completion = n x the limit sent
(``max_completion_tokens`` or ``max_tokens``, else the model's default output cap, 16,384),
reasoning included. With ``n`` > 1 the reply has n choices (each the same echo).

Reasoning models (``o1``/``o3``/... and ``gpt-5*``) refuse ``max_tokens`` and non-default
``temperature`` / ``top_p`` with OpenAI's 400 ``unsupported_parameter`` / ``unsupported_value``.

Structured output: with ``response_format: {"type": "json_schema", "json_schema": {"schema": S}}``
the reply text is ``json.dumps(sample_json(S, last_user_text))`` instead of the echo (see
:func:`sample_json` for the deterministic values), so JSON-parsing callers can be tested.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .common import Conn, FakeServer, Plan, Request, Turn, bills_max, count_tokens, make_plan, split_json, sse

DEFAULT_OUTPUT_LIMIT = 16_384  # what the vendor caps a reply at when no limit is sent (gpt-4o)
IMAGE_MAX_TOKENS = 1_445  # a high-detail image's largest tiling: 85 + 170 x 8 tiles

_ERRORS = {
    "400": (400, "Invalid value for 'messages': fake invalid request.", "invalid_request_error", None, None),
    "401": (
        401,
        "Incorrect API key provided: sk-fa**********key. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        None,
        "invalid_api_key",
    ),
    "404": (
        404,
        "The model `unknown` does not exist or you do not have access to it.",
        "invalid_request_error",
        None,
        "model_not_found",
    ),
    "500": (
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
        None,
    ),
    "503": (503, "The server is overloaded or not ready yet.", "server_error", None, None),
}


def _error(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and "text" in p)
    return str(content)


def _image_parts(content: Any) -> int:
    return (
        sum(1 for p in content if isinstance(p, dict) and p.get("type") in ("image_url", "input_image"))
        if isinstance(content, list)
        else 0
    )


def bill_max(plan: Plan, body: dict) -> None:
    """The most OpenAI bills for `body` as sent (rule in the module docstring)."""
    from llm.tokens import exact_count

    n = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 1 else 1
    prompt = 3
    for m in body["messages"]:
        prompt += (
            4
            + exact_count(_content_text(m.get("content")))
            + IMAGE_MAX_TOKENS * _image_parts(m.get("content"))
        )
    if body.get("tools"):
        prompt += exact_count(json.dumps(body["tools"]))
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_OUTPUT_LIMIT
    plan.candidates = n
    plan.bill_max(
        prompt=prompt, output=n * int(limit) - plan.reasoning_tokens * n, reasoning=plan.reasoning_tokens * n
    )


def sample_json(schema: Any, text: str) -> Any:
    """A deterministic value matching a JSON schema: ``const`` / first ``enum`` value when given;
    objects get their required properties (all of them when none is required); arrays
    ``max(minItems, 1)`` items; strings ``text`` (whitespace-normalised); integers / numbers their
    ``minimum`` (else 1 / 0); booleans true; ``anyOf`` / ``oneOf`` their first branch."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return sample_json(schema[key][0], text)
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        names = schema.get("required") or list(props)
        return {name: sample_json(props.get(name, {"type": "string"}), text) for name in names}
    if kind == "array":
        return [
            sample_json(schema.get("items", {"type": "string"}), text)
            for _ in range(max(int(schema.get("minItems") or 0), 1))
        ]
    if kind in ("integer", "number"):
        return schema.get("minimum", 1 if kind == "integer" else 0)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return " ".join(text.split())


def structured_answer(plan: Plan, schema: Any, text: str) -> None:
    """Make ``plan`` answer with :func:`sample_json` of ``schema`` (whole: never truncated)."""
    plan.text = json.dumps(sample_json(schema, text))
    plan.output_tokens, plan.truncated = count_tokens(plan.text), False


def _refused_by_reasoning_model(model: str, body: dict) -> dict | None:
    """OpenAI's reasoning models (o-series, gpt-5.x) refuse `max_tokens` and non-default sampling
    values on Chat Completions, with these errors (as the API answers them)."""
    from .openai_responses import REASONING_MODEL

    if not REASONING_MODEL.match(model):
        return None
    if body.get("max_tokens") is not None:
        return _error(
            "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
            "'max_completion_tokens' instead.",
            "invalid_request_error",
            "max_tokens",
            "unsupported_parameter",
        )
    for name in ("temperature", "top_p"):
        if body.get(name) is not None and body[name] != 1:
            return _error(
                f"Unsupported value: '{name}' does not support {body[name]} with this model. Only the "
                "default (1) value is supported.",
                "invalid_request_error",
                name,
                "unsupported_value",
            )
    return None


class FakeOpenAI(FakeServer):
    """Fake OpenAI-compatible vendor.

    Extra args: ``flavor`` ("openai" | "deepseek" | "xai" | "minimax"; "deepseek" adds
    ``prompt_cache_hit_tokens`` / ``prompt_cache_miss_tokens`` to usage),
    ``reasoning_field`` (default "reasoning_content"; None = don't emit reasoning text),
    ``owned_by`` (for GET /v1/models).  ``models`` doubles as the /v1/models list.
    """

    sse_content_type = "text/event-stream; charset=utf-8"

    def __init__(
        self,
        *,
        flavor: str = "openai",
        reasoning_field: str | None = "reasoning_content",
        owned_by: str | None = None,
        **kw,
    ):
        super().__init__(**kw)
        self.flavor, self.reasoning_field = flavor, reasoning_field
        self.owned_by = owned_by or {
            "openai": "openai",
            "deepseek": "deepseek",
            "xai": "xai",
            "minimax": "minimax",
        }.get(flavor, flavor)
        self.route("POST", r"(?:/v1)?/chat/completions", self._chat)
        self.route("GET", r"(?:/v1)?/models", self._list_models)
        self.route("POST", r"(?:/v1)?/responses", self._responses)

    @property
    def api_base(self) -> str:
        """Base URL as the OpenAI SDK expects it (``.../v1``)."""
        return self.base_url + "/v1"

    # ------------------------------------------------------------------ handlers
    def _auth_error(self, req: Request) -> dict | None:
        auth = req.headers.get("authorization", "")
        if not auth:
            return _error(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
            )
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            shown = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else key
            return _error(
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
                "invalid_api_key",
            )
        return None

    async def _responses(self, req: Request, conn: Conn) -> None:
        from .openai_responses import serve_responses

        await serve_responses(self, req, conn)

    async def _list_models(self, req: Request, conn: Conn) -> None:
        err = self._auth_error(req)
        if err:
            await conn.send_json(401, err, self.response_headers())
            return
        names = self.models or ["gpt-4o-mini", "gpt-4o", "o3-mini", "deepseek-reasoner"]
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": self.owned_by} for m in names]
        await conn.send_json(200, {"object": "list", "data": data}, self.response_headers())

    async def _chat(self, req: Request, conn: Conn) -> None:
        err = self._auth_error(req)
        if err:
            await conn.send_json(401, err, self.response_headers())
            return
        body = req.json
        if not isinstance(body, dict):
            await conn.send_json(
                400,
                _error(
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
                    "sent was not valid JSON.)",
                    "invalid_request_error",
                ),
                self.response_headers(),
            )
            return
        model = body.get("model")
        if not model:
            await conn.send_json(
                400,
                _error("you must provide a model parameter", "invalid_request_error"),
                self.response_headers(),
            )
            return
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            await conn.send_json(
                400,
                _error(
                    "Missing required parameter: 'messages'.",
                    "invalid_request_error",
                    "messages",
                    "missing_required_parameter",
                ),
                self.response_headers(),
            )
            return
        if self.models and model not in self.models:
            await conn.send_json(
                404,
                _error(
                    f"The model `{model}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    None,
                    "model_not_found",
                ),
                self.response_headers(),
            )
            return
        refused = _refused_by_reasoning_model(model, body)
        if refused:
            await conn.send_json(400, refused, self.response_headers())
            return
        turns = []
        for m in messages:
            role = m.get("role", "user")
            role = {"developer": "system", "function": "tool"}.get(role, role)
            turns.append(Turn(role, _content_text(m.get("content"))))
        tool_names = [
            t.get("function", {}).get("name")
            for t in body.get("tools") or []
            if t.get("type", "function") == "function"
        ]
        choice = body.get("tool_choice")
        forced = None
        if choice == "required" and tool_names:
            forced = tool_names[0]
        elif isinstance(choice, dict):
            forced = (choice.get("function") or {}).get("name") or (tool_names[0] if tool_names else None)
        plan = make_plan(
            model=model,
            turns=turns,
            tool_names=tool_names,
            forced_tool=forced,
            tools_allowed=choice != "none",
            reasoning="reason" in model.lower() or "thinking" in model.lower(),
            max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
        )
        last_user = next((t.text for t in reversed(turns) if t.role == "user"), "")
        response_format = body.get("response_format")
        if (
            isinstance(response_format, dict)
            and response_format.get("type") == "json_schema"
            and not plan.is_tool
        ):
            structured_answer(plan, (response_format.get("json_schema") or {}).get("schema"), last_user)
        if bills_max(req):
            bill_max(plan, body)
        fault = self.take_fault(last_user)
        await self.serve_completion(conn, req, plan, fault, bool(body.get("stream")))

    # ------------------------------------------------------------------ rendering
    def response_headers(self) -> list[tuple[str, str]]:
        return [("x-request-id", self.next_id("req_", 16)), ("openai-processing-ms", "1")]

    def error_response(self, fault: str, model: str):
        if fault == "429":
            return (
                429,
                _error(
                    f"Rate limit reached for {model} in organization org-fake on requests per min "
                    "(RPM): Limit 3, Used 3, Requested 1. Please try again in 1s. Visit "
                    "https://platform.openai.com/account/rate-limits to learn more.",
                    "requests",
                    "requests",
                    "rate_limit_exceeded",
                ),
                self.response_headers() + [("retry-after", "1")],
            )
        if fault == "context":
            return (
                400,
                _error(
                    "This model's maximum context length is 128000 tokens. However, your messages "
                    "resulted in 130000 tokens. Please reduce the length of the messages.",
                    "invalid_request_error",
                    "messages",
                    "context_length_exceeded",
                ),
                self.response_headers(),
            )
        status, msg, type_, param, code = _ERRORS["503" if fault == "529" else fault]
        return status, _error(msg, type_, param, code), self.response_headers()

    def _usage(self, plan: Plan) -> dict:
        completion = plan.output_tokens + plan.reasoning_tokens
        usage = {
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": plan.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": plan.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": plan.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        if self.flavor == "deepseek":
            usage["prompt_cache_hit_tokens"] = plan.cached_tokens
            usage["prompt_cache_miss_tokens"] = plan.prompt_tokens - plan.cached_tokens
        return usage

    @staticmethod
    def _finish_reason(plan: Plan) -> str:
        return "tool_calls" if plan.is_tool else ("length" if plan.truncated else "stop")

    def render_json(self, plan: Plan, no_usage: bool) -> dict:
        msg: dict[str, Any] = {
            "role": "assistant",
            "content": None if plan.is_tool else plan.text,
            "refusal": None,
            "annotations": [],
        }
        if plan.reasoning and self.reasoning_field:
            msg[self.reasoning_field] = plan.reasoning
        if plan.is_tool:
            msg["tool_calls"] = [
                {
                    "id": self.next_id("call_"),
                    "type": "function",
                    "function": {"name": plan.tool_name, "arguments": plan.tool_args_json},
                }
            ]
        out = {
            "id": self.next_id("chatcmpl-"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": plan.model,
            "choices": [
                {"index": i, "message": msg, "logprobs": None, "finish_reason": self._finish_reason(plan)}
                for i in range(plan.candidates)
            ],
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }
        if not no_usage:
            out["usage"] = self._usage(plan)
        return out

    def render_stream(self, plan: Plan, no_usage: bool, req: Request) -> list[bytes]:
        include_usage = (
            bool(((req.json or {}).get("stream_options") or {}).get("include_usage")) and not no_usage
        )
        cid, created = self.next_id("chatcmpl-"), int(time.time())

        def chunk(
            delta: dict | None, finish: str | None = None, usage: Any = None, choices: bool = True
        ) -> bytes:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": plan.model,
                "service_tier": "default",
                "system_fingerprint": "fp_fake0001",
                "choices": [
                    {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
                    for i in range(plan.candidates)
                ]
                if choices
                else [],
            }
            if include_usage:
                obj["usage"] = usage
            return sse(obj)

        rf = self.reasoning_field if plan.reasoning else None
        first: dict[str, Any] = {
            "role": "assistant",
            "content": "" if not (rf or plan.is_tool) else None,
            "refusal": None,
        }
        if rf:
            first[rf] = ""
        frames = [chunk(first)]
        if rf:
            frames += [chunk({"content": None, rf: w}) for w in plan.reasoning_chunks()]
        if plan.is_tool:
            frames.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": self.next_id("call_"),
                                "type": "function",
                                "function": {"name": plan.tool_name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            frames += [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                for part in split_json(plan.tool_args_json)
            ]
        else:
            frames += [chunk({"content": w, **({rf: None} if rf else {})}) for w in plan.text_chunks()]
        frames.append(chunk({}, self._finish_reason(plan)))
        if include_usage:
            frames.append(chunk(None, usage=self._usage(plan), choices=False))
        frames.append(b"data: [DONE]\n\n")
        return frames

    def malformed_frame(self) -> bytes:
        return b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "oops"\n\n'

    def midstream_error_frame(self) -> bytes:
        return sse(
            _error("The server had an error while processing your request. Sorry about that!", "server_error")
        )
