"""Fake OpenAI Responses API (POST /v1/responses), served by FakeOpenAI.

Wire format follows https://platform.openai.com/docs/api-reference/responses/create (the
`response` object: `id` "resp_...", `object` "response", `status`, `output` items — `reasoning`,
`message` with `output_text` parts, `function_call` with `call_id`/`name`/`arguments` —, `usage`
{input_tokens, input_tokens_details.cached_tokens, output_tokens,
output_tokens_details.reasoning_tokens, total_tokens}) and
https://platform.openai.com/docs/api-reference/responses-streaming (typed events, each an
`event: <type>` line and `data: {"type", "sequence_number", ...}`; no `[DONE]` at the end).
Reasoning models (o-series, gpt-5.x) refuse sampling parameters as OpenAI does: a 400
`unsupported_parameter` naming `temperature` / `top_p`.

The deterministic "model" is tests.fakes.common.make_plan, as for Chat Completions; the reply is
rendered in the Responses shapes.

Billing the maximum (``[[bill:max]]`` in the request): prompt = the o200k_base count of each item's
text + 4 per item + 3, plus the tools' JSON (as for Chat Completions); output = the
``max_output_tokens`` sent, else what OpenAI's Responses API caps a reply at when none is sent: the
model's own output limit (128,000 for the o-series and gpt-5.x, 16,384 for gpt-4o), reasoning
included.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from .common import Conn, FakeServer, Plan, Request, Turn, bills_max, make_plan, split_json, sse

REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
MODEL_OUTPUT_LIMIT = {True: 128_000, False: 16_384}  # reasoning models, others (gpt-4o)


def refused_sampling(model: str, body: dict) -> str | None:
    """The sampling parameter a reasoning model refuses, if the body sends one."""
    if not REASONING_MODEL.match(model or ""):
        return None
    return next((name for name in ("temperature", "top_p") if body.get(name) is not None), None)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text") or p.get("refusal") or "") for p in content if isinstance(p, dict))
    return ""


def turns_of(body: dict) -> list[Turn]:
    turns = []
    if isinstance(body.get("instructions"), str):
        turns.append(Turn("system", body["instructions"]))
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items or []:
        kind = item.get("type", "message")
        if kind == "message":
            role = {"developer": "system"}.get(item.get("role"), item.get("role") or "user")
            turns.append(Turn(role, _text(item.get("content"))))
        elif kind == "function_call":
            turns.append(Turn("assistant", f"{item.get('name')} {item.get('arguments')}"))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            turns.append(Turn("tool", output if isinstance(output, str) else _text(output)))
    return turns


def plan_for(body: dict) -> Plan:
    turns = turns_of(body)
    tools = [t.get("name") for t in body.get("tools") or [] if t.get("type") == "function"]
    choice = body.get("tool_choice")
    forced = (
        tools[0]
        if choice == "required" and tools
        else (choice.get("name") if isinstance(choice, dict) and choice.get("type") == "function" else None)
    )
    model = body.get("model") or ""
    plan = make_plan(
        model=model,
        turns=turns,
        tool_names=tools,
        forced_tool=forced,
        tools_allowed=choice != "none",
        reasoning="reason" in model or "thinking" in model,
        max_tokens=body.get("max_output_tokens"),
    )
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema" and not plan.is_tool:
        from .openai_compat import structured_answer

        last_user = next((t.text for t in reversed(turns) if t.role == "user"), "")
        structured_answer(plan, fmt.get("schema"), last_user)
    return plan


def bill_max(plan: Plan, body: dict) -> None:
    """The most OpenAI's Responses API bills for `body` as sent (rule in the module docstring)."""
    from llm.tokens import exact_count

    prompt = 3 + sum(4 + exact_count(turn.text) for turn in turns_of(body))
    if body.get("tools"):
        prompt += exact_count(json.dumps(body["tools"]))
    limit = body.get("max_output_tokens") or MODEL_OUTPUT_LIMIT[bool(REASONING_MODEL.match(body["model"]))]
    plan.bill_max(prompt=prompt, output=int(limit) - plan.reasoning_tokens, reasoning=plan.reasoning_tokens)


class ResponsesRenderer:
    """Renders one plan as a response object or its event stream (the FakeServer hooks)."""

    def __init__(self, fake, body: dict):
        self.fake, self.body = fake, body
        self.id = fake.next_id("resp_")

    def __getattr__(self, name):  # everything else (timings, error bodies, headers) is the fake's
        return getattr(self.fake, name)

    def _usage(self, plan: Plan) -> dict:
        output = plan.output_tokens + plan.reasoning_tokens
        return {
            "input_tokens": plan.prompt_tokens,
            "input_tokens_details": {"cached_tokens": plan.cached_tokens},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": plan.reasoning_tokens},
            "total_tokens": plan.prompt_tokens + output,
        }

    def items(self, plan: Plan) -> list[dict]:
        out = []
        if plan.reasoning:
            summary = (
                [{"type": "summary_text", "text": plan.reasoning}]
                if (self.body.get("reasoning") or {}).get("summary")
                else []
            )
            out.append({"id": self.fake.next_id("rs_"), "type": "reasoning", "summary": summary})
        if plan.is_tool:
            out.append(
                {
                    "id": self.fake.next_id("fc_"),
                    "type": "function_call",
                    "status": "completed",
                    "arguments": plan.tool_args_json,
                    "call_id": self.fake.next_id("call_"),
                    "name": plan.tool_name,
                }
            )
        else:
            out.append(
                {
                    "id": self.fake.next_id("msg_"),
                    "type": "message",
                    "role": "assistant",
                    "status": "incomplete" if plan.truncated else "completed",
                    "content": [
                        {"type": "output_text", "text": plan.text, "annotations": [], "logprobs": []}
                    ],
                }
            )
        return out

    def response(self, plan: Plan | None, status: str, output: list, no_usage: bool = False) -> dict:
        body = self.body
        return {
            "id": self.id,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body.get("model"),
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": self._usage(plan)
            if plan is not None and not no_usage and status != "in_progress"
            else None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }

    def render_json(self, plan: Plan, no_usage: bool) -> dict:
        return self.response(
            plan, "incomplete" if plan.truncated else "completed", self.items(plan), no_usage
        )

    def render_stream(self, plan: Plan, no_usage: bool, req: Request) -> list[bytes]:
        frames: list[bytes] = []

        def emit(kind: str, **fields) -> None:
            frames.append(sse({"type": kind, "sequence_number": len(frames), **fields}, event=kind))

        emit("response.created", response=self.response(plan, "in_progress", []))
        emit("response.in_progress", response=self.response(plan, "in_progress", []))
        items = self.items(plan)
        for index, item in enumerate(items):
            self._stream_item(emit, plan, index, item)
        emit(
            "response.incomplete" if plan.truncated else "response.completed",
            response=self.response(plan, "incomplete" if plan.truncated else "completed", items, no_usage),
        )
        return frames

    @staticmethod
    def _stream_item(emit, plan: Plan, index: int, item: dict) -> None:
        common = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            emit("response.content_part.added", **common, content_index=0, part=part)
            for word in plan.text_chunks():
                emit("response.output_text.delta", **common, content_index=0, delta=word, logprobs=[])
            emit("response.output_text.done", **common, content_index=0, text=plan.text, logprobs=[])
            emit("response.content_part.done", **common, content_index=0, part=item["content"][0])
        elif item["type"] == "function_call":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            for part in split_json(item["arguments"]):
                emit("response.function_call_arguments.delta", **common, delta=part)
            emit("response.function_call_arguments.done", **common, arguments=item["arguments"])
        else:
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
        emit("response.output_item.done", output_index=index, item=item)

    def malformed_frame(self) -> bytes:
        return b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "del\n\n'

    def midstream_error_frame(self) -> bytes:
        error = {
            "type": "error",
            "code": "server_error",
            "param": None,
            "sequence_number": 99,
            "message": "The server had an error while processing your request. Sorry about that!",
        }
        return sse(error, event="error")


async def serve_responses(fake, req: Request, conn: Conn) -> None:
    """POST /v1/responses on FakeOpenAI."""
    from .openai_compat import _error

    err = fake._auth_error(req)
    if err:
        await conn.send_json(401, err, fake.response_headers())
        return
    body = req.json
    if not isinstance(body, dict) or not body.get("model"):
        await conn.send_json(
            400,
            _error(
                "Missing required parameter: 'model'.",
                "invalid_request_error",
                "model",
                "missing_required_parameter",
            ),
            fake.response_headers(),
        )
        return
    refused = refused_sampling(body["model"], body)
    if refused:
        await conn.send_json(
            400,
            _error(
                f"Unsupported parameter: '{refused}' is not supported with this model.",
                "invalid_request_error",
                refused,
                "unsupported_parameter",
            ),
            fake.response_headers(),
        )
        return
    if body.get("previous_response_id"):
        await conn.send_json(
            400,
            _error(
                f"Previous response with id '{body['previous_response_id']}' not found.",
                "invalid_request_error",
                "previous_response_id",
                "previous_response_not_found",
            ),
            fake.response_headers(),
        )
        return
    plan = plan_for(body)
    if bills_max(req):
        bill_max(plan, body)
    last_user = next((t.text for t in reversed(turns_of(body)) if t.role == "user"), "")
    renderer = ResponsesRenderer(fake, body)
    await FakeServer.serve_completion(
        renderer, conn, req, plan, fake.take_fault(last_user), bool(body.get("stream"))
    )
