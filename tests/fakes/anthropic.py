"""Fake Anthropic Messages API server.

Wire format follows https://docs.anthropic.com/en/api/messages (POST /v1/messages,
``x-api-key`` + ``anthropic-version`` headers, Message object with ``content``
blocks ``text`` / ``thinking`` / ``tool_use``, ``stop_reason``, ``usage``),
https://docs.anthropic.com/en/docs/build-with-claude/streaming (named SSE events
``event: <type>\\ndata: {...}\\n\\n``: message_start, content_block_start, ping,
content_block_delta with text_delta / thinking_delta / signature_delta /
input_json_delta, content_block_stop, message_delta with stop_reason and cumulative
``usage.output_tokens``, message_stop, and ``event: error`` mid-stream) and
https://docs.anthropic.com/en/api/errors (``{"type": "error", "error": {"type",
"message"}, "request_id"}`` + ``request-id`` header; 529 = overloaded_error), and
https://docs.claude.com/en/api/messages-count-tokens (POST /v1/messages/count_tokens →
``{"input_tokens": N}``, counted like a completion's prompt; no max_tokens or stream allowed).
The SDKs' beta surface (``client.beta.messages``, which Claude Code uses) appends ``?beta=true``
and sends ``anthropic-beta``; both are accepted and logged.

Usage semantics as documented: ``input_tokens`` EXCLUDES cache reads, i.e.
input_tokens = prompt - cached, cache_read_input_tokens = cached;
``output_tokens`` includes thinking tokens.  Faults "503" and "529" both give
529 overloaded_error (Anthropic does not use 503).  Thinking is produced when
``thinking.type`` is "enabled"/"adaptive" or the model name contains
"thinking"/"reason".

Billing the maximum (``[[bill:max]]``, see tests/fakes/common.py): Anthropic's tokenizer is not
published, so input = the UTF-8 bytes of all text (system, messages, the tools' JSON; a token
covers at least one byte) plus per image the largest count of
https://docs.anthropic.com/en/docs/build-with-claude/vision (width x height / 750 at the 1.15 MP
cap: 1,600; 4,784 on Opus 4.7's high-resolution input) and per page of a PDF document 3,000 (the top
of https://docs.anthropic.com/en/docs/build-with-claude/pdf-support's 1,500-3,000); output =
``max_tokens`` as sent, which includes the thinking budget (thinking tokens are billed as
output). ``message_start`` carries that input count, as the real stream does.

Cache writes (``[[bill:cache_write]]``): the whole input is reported as written to the cache,
``cache_creation_input_tokens`` with its ``cache_creation.ephemeral_5m_input_tokens`` /
``ephemeral_1h_input_tokens`` split (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching),
the TTL taken from the request's ``cache_control`` (``"ttl": "1h"`` or the 5-minute default).
"""

from __future__ import annotations

import json
from typing import Any

from .common import (
    CACHE_WRITE_MARKER,
    Conn,
    FakeServer,
    Plan,
    Request,
    Turn,
    bills_max,
    fake_signature,
    make_plan,
    pdf_pages,
    split_json,
    sse,
    utf8_len,
)

PDF_PAGE_TOKENS = 3_000  # the most a page costs (text and image of the page)

_ERRORS = {
    "400": (400, "invalid_request_error", "messages: fake invalid request"),
    "401": (401, "authentication_error", "invalid x-api-key"),
    "429": (
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit "
        "(https://docs.anthropic.com/en/api/rate-limits); see the response "
        "headers for current usage. Please reduce the prompt length or the "
        "maximum tokens requested, or try again later.",
    ),
    "404": (404, "not_found_error", "model: claude-unknown"),
    "500": (500, "api_error", "Internal server error"),
    "529": (529, "overloaded_error", "Overloaded"),
    "context": (400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"),
}


def _block_text(block: Any) -> str:
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return block.get("text", "")
    if kind == "tool_result":
        return _content_text(block.get("content"))
    if kind == "tool_use":
        return json.dumps(block.get("input", {}))
    return ""


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(t for t in (_block_text(b) for b in content) if t)
    return str(content)


def _images(content: Any) -> int:
    return (
        sum(1 for b in content if isinstance(b, dict) and b.get("type") == "image")
        if isinstance(content, list)
        else 0
    )


def _pdf_pages(content: Any) -> int:
    blocks = content if isinstance(content, list) else ()
    sources = [b.get("source") for b in blocks if isinstance(b, dict) and b.get("type") == "document"]
    return sum(pdf_pages(s.get("data") or "") if isinstance(s, dict) else 1 for s in sources)


def bill_max(plan: Plan, body: dict) -> None:
    """The most Anthropic bills for `body` as sent (rule in the module docstring)."""
    per_image = 4_784 if "opus-4-7" in plan.model else 1_600
    text = _content_text(body.get("system")) + json.dumps(body.get("tools") or [])
    prompt = utf8_len(text) + sum(
        utf8_len(_content_text(m.get("content")))
        + per_image * _images(m.get("content"))
        + PDF_PAGE_TOKENS * _pdf_pages(m.get("content"))
        for m in body["messages"]
    )
    reasoning = min(plan.reasoning_tokens, int(body["max_tokens"]))
    plan.bill_max(prompt=prompt, output=int(body["max_tokens"]) - reasoning, reasoning=reasoning)


def bill_cache_write(plan: Plan, body: dict) -> None:
    """Report every input token as written to the prompt cache, at the request's TTL."""
    written, plan.cached_tokens = plan.prompt_tokens, 0
    if '"ttl": "1h"' in json.dumps(body):
        plan.cache_write_1h_tokens = written
    else:
        plan.cache_write_tokens = written


def _has_tool_result(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


class FakeAnthropic(FakeServer):
    """Fake Anthropic vendor (constructor args: see :class:`FakeServer`)."""

    sse_content_type = "text/event-stream; charset=utf-8"

    def __init__(self, **kw):
        super().__init__(**kw)
        self.route("POST", r"/v1/messages", self._messages)
        self.route("POST", r"/v1/messages/count_tokens", self._count_tokens)

    def _err(self, status: int, type_: str, message: str, headers=None) -> tuple:
        rid = self.next_id("req_01", 22)
        return (
            status,
            {"type": "error", "error": {"type": type_, "message": message}, "request_id": rid},
            [("request-id", rid)] + list(headers or []),
        )

    async def _send_err(self, conn: Conn, status: int, type_: str, message: str) -> None:
        status, body, headers = self._err(status, type_, message)
        await conn.send_json(status, body, headers)

    async def _refused(self, req: Request, conn: Conn) -> bool:
        """Send the error for a bad key, version header or body; True when one was sent."""
        if req.headers.get("x-api-key") != self.api_key:
            await self._send_err(conn, 401, "authentication_error", "invalid x-api-key")
        elif not req.headers.get("anthropic-version"):
            await self._send_err(conn, 400, "invalid_request_error", "anthropic-version: header is required")
        elif not isinstance(req.json, dict):
            await self._send_err(
                conn, 400, "invalid_request_error", "There was an issue with the request body."
            )
        else:
            return False
        return True

    @staticmethod
    def _turns(body: dict) -> list[Turn]:
        turns = []
        if body.get("system"):
            turns.append(Turn("system", _content_text(body["system"])))
        for m in body.get("messages") or []:
            content = m.get("content")
            role = "tool" if m.get("role") == "user" and _has_tool_result(content) else m.get("role", "user")
            turns.append(Turn(role, _content_text(content)))
        return turns

    async def _count_tokens(self, req: Request, conn: Conn) -> None:
        if await self._refused(req, conn):
            return
        body = req.json
        extra = sorted(
            set(body)
            - {
                "model",
                "messages",
                "system",
                "tools",
                "tool_choice",
                "thinking",
                "mcp_servers",
                "context_management",
                "output_config",
                "output_format",
            }
        )
        if extra or not isinstance(body.get("messages"), list) or "model" not in body:
            await self._send_err(
                conn,
                400,
                "invalid_request_error",
                f"{extra[0]}: Extra inputs are not permitted" if extra else "messages: Field required",
            )
            return
        if self.models and body["model"] not in self.models:
            await self._send_err(conn, 404, "not_found_error", f"model: {body['model']}")
            return
        plan = make_plan(model=str(body["model"]), turns=self._turns(body))
        await conn.send_json(200, {"input_tokens": plan.prompt_tokens}, self.response_headers())

    async def _messages(self, req: Request, conn: Conn) -> None:
        if await self._refused(req, conn):
            return
        body = req.json
        for field in ("model", "messages", "max_tokens"):
            if field not in body:
                await self._send_err(conn, 400, "invalid_request_error", f"{field}: Field required")
                return
        model, messages = str(body["model"]), body["messages"]
        if not isinstance(messages, list) or not messages:
            await self._send_err(
                conn, 400, "invalid_request_error", "messages: at least one message is required"
            )
            return
        if self.models and model not in self.models:
            await self._send_err(conn, 404, "not_found_error", f"model: {model}")
            return
        turns = self._turns(body)
        tool_names = [t.get("name") for t in body.get("tools") or [] if t.get("name")]
        choice = body.get("tool_choice") or {}
        forced = None
        if choice.get("type") == "any" and tool_names:
            forced = tool_names[0]
        elif choice.get("type") == "tool":
            forced = choice.get("name")
        thinking = (
            (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
            or "thinking" in model.lower()
            or "reason" in model.lower()
        )
        plan = make_plan(
            model=model,
            turns=turns,
            tool_names=tool_names,
            forced_tool=forced,
            tools_allowed=choice.get("type") != "none",
            reasoning=thinking,
            max_tokens=body.get("max_tokens"),
        )
        if bills_max(req):
            bill_max(plan, body)
        if CACHE_WRITE_MARKER in req.body.decode("utf-8", "replace"):
            bill_cache_write(plan, body)
        last_user = next((t.text for t in reversed(turns) if t.role == "user"), "")
        await self.serve_completion(conn, req, plan, self.take_fault(last_user), bool(body.get("stream")))

    # ------------------------------------------------------------------ rendering
    def response_headers(self) -> list[tuple[str, str]]:
        return [("request-id", self.next_id("req_01", 22))]

    def error_response(self, fault: str, model: str):
        status, type_, message = _ERRORS["529" if fault == "503" else fault]
        extra = [("retry-after", "1")] if fault == "429" else []
        return self._err(status, type_, message, extra)

    @staticmethod
    def _stop_reason(plan: Plan) -> str:
        return "tool_use" if plan.is_tool else ("max_tokens" if plan.truncated else "end_turn")

    @staticmethod
    def _usage(plan: Plan, output_tokens: int | None = None) -> dict:
        written = plan.cache_write_tokens + plan.cache_write_1h_tokens
        return {
            "input_tokens": plan.prompt_tokens - plan.cached_tokens - written,
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": plan.cached_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": plan.cache_write_tokens,
                "ephemeral_1h_input_tokens": plan.cache_write_1h_tokens,
            },
            "output_tokens": plan.output_tokens + plan.reasoning_tokens
            if output_tokens is None
            else output_tokens,
            "service_tier": "standard",
        }

    def _blocks(self, plan: Plan) -> list[dict]:
        blocks = []
        if plan.reasoning:
            blocks.append(
                {"type": "thinking", "thinking": plan.reasoning, "signature": fake_signature(plan.reasoning)}
            )
        if plan.is_tool:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": self.next_id("toolu_01", 22),
                    "name": plan.tool_name,
                    "input": plan.tool_args,
                }
            )
        else:
            blocks.append({"type": "text", "text": plan.text})
        return blocks

    def _message(self, plan: Plan, content: list, stop_reason: str | None, usage: dict | None) -> dict:
        msg = {
            "id": self.next_id("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": plan.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }
        if usage is not None:
            msg["usage"] = usage
        return msg

    def render_json(self, plan: Plan, no_usage: bool) -> dict:
        return self._message(
            plan, self._blocks(plan), self._stop_reason(plan), None if no_usage else self._usage(plan)
        )

    def render_stream(self, plan: Plan, no_usage: bool, req: Request) -> list[bytes]:
        def ev(obj: dict) -> bytes:
            return sse(obj, event=obj["type"])

        frames = [
            ev(
                {
                    "type": "message_start",
                    "message": self._message(
                        plan, [], None, None if no_usage else self._usage(plan, output_tokens=1)
                    ),
                }
            )
        ]
        for index, block in enumerate(self._blocks(plan)):
            kind = block["type"]
            if kind == "thinking":
                start, deltas = (
                    {"type": "thinking", "thinking": ""},
                    [{"type": "thinking_delta", "thinking": w} for w in plan.reasoning_chunks()]
                    + [{"type": "signature_delta", "signature": block["signature"]}],
                )
            elif kind == "tool_use":
                start = {**block, "input": {}}
                deltas = [
                    {"type": "input_json_delta", "partial_json": p}
                    for p in [""] + split_json(plan.tool_args_json)
                ]
            else:
                start, deltas = (
                    {"type": "text", "text": ""},
                    [{"type": "text_delta", "text": w} for w in plan.text_chunks()],
                )
            frames.append(ev({"type": "content_block_start", "index": index, "content_block": start}))
            if index == 0:
                frames.append(ev({"type": "ping"}))
            frames += [ev({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
            frames.append(ev({"type": "content_block_stop", "index": index}))
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop_reason(plan), "stop_sequence": None},
        }
        if not no_usage:
            delta["usage"] = {"output_tokens": plan.output_tokens + plan.reasoning_tokens}
        frames += [ev(delta), ev({"type": "message_stop"})]
        return frames

    def malformed_frame(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n'

    def midstream_error_frame(self) -> bytes:
        return sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, event="error"
        )
