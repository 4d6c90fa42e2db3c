"""Fake Google Gemini API server (generateContent / streamGenerateContent).

Wire format follows https://ai.google.dev/api/generate-content:
POST /v1beta/models/{model}:generateContent and
POST /v1beta/models/{model}:streamGenerateContent?alt=sse (also /v1/...), request
``contents[].parts[]`` (text / functionCall / functionResponse), ``systemInstruction``,
``tools[].functionDeclarations``, ``toolConfig.functionCallingConfig``,
``generationConfig`` (maxOutputTokens, thinkingConfig); response ``candidates[]``
with ``content.parts`` (text, ``thought: true`` parts, functionCall), ``finishReason``
(STOP / MAX_TOKENS), ``usageMetadata`` (promptTokenCount, candidatesTokenCount,
totalTokenCount, cachedContentTokenCount, thoughtsTokenCount), ``modelVersion``,
``responseId``.  Errors: ``{"error": {"code", "message", "status"[, "details"]}}``
(https://ai.google.dev/gemini-api/docs/troubleshooting).

Fidelity notes (matching the real service):
* SSE frames are ``data: {...}\\r\\n\\r\\n`` (CRLF); no ``[DONE]`` sentinel, the
  stream just ends.  Every chunk carries cumulative ``usageMetadata``; the last chunk
  has ``finishReason``.  Without ``alt=sse`` the stream endpoint returns a JSON array.
* Auth: ``x-goog-api-key`` header or ``?key=``.  Missing key -> 403 PERMISSION_DENIED;
  a WRONG key -> 400 INVALID_ARGUMENT with ErrorInfo reason ``API_KEY_INVALID`` (that
  is what Google returns, not 401).  Fault "401" -> 401 UNAUTHENTICATED.
* promptTokenCount includes cachedContentTokenCount; totalTokenCount =
  prompt + candidates + thoughts.  Function calls finish with "STOP".
* Reasoning is active when the model name contains "thinking"/"reason" or a
  ``thinkingConfig`` is sent (unless thinkingBudget == 0): thoughtsTokenCount is
  always reported then, but ``thought: true`` text parts only appear when
  ``thinkingConfig.includeThoughts`` is true (as with the real API).  A functionCall
  part carries a ``thoughtSignature`` when reasoning is active.
* Faults "503" and "529" both give 503 UNAVAILABLE.

Billing the maximum (``[[bill:max]]``, see tests/fakes/common.py): Gemini's tokenizer is not
published, so promptTokenCount = the UTF-8 bytes of all text (systemInstruction, contents, the
tools' JSON) plus 1,120 per inline image (the largest per-image count,
https://ai.google.dev/gemini-api/docs/media-resolution) and 258 per page of an inline PDF
(https://ai.google.dev/gemini-api/docs/document-processing); output = candidateCount x
(maxOutputTokens + the thinking budget): ``thinkingBudget`` when sent, else for a dynamic budget
(a thinking model, or ``thinkingLevel``) the model's ceiling (24,576 Flash, 32,768 Pro, per
https://ai.google.dev/gemini-api/docs/thinking), 0 when ``thinkingBudget`` is 0. Every stream
chunk carries ``usageMetadata`` with the whole prompt, so a cut stream knows it.
"""

from __future__ import annotations

import json
from typing import Any

from .common import (
    Conn,
    FakeServer,
    Plan,
    Request,
    Turn,
    bills_max,
    fake_signature,
    make_plan,
    pdf_pages,
    sse,
    utf8_len,
)

IMAGE_MAX_TOKENS = 1_120
PDF_PAGE_TOKENS = 258
DEFAULT_OUTPUT_LIMIT = 65_536  # Gemini 2.5's output cap when no maxOutputTokens is sent

_ERRORS = {
    "400": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "401": (
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access "
        "token, login cookie or other valid authentication credential.",
    ),
    "429": (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. Please retry in 1s.",
    ),
    "404": (
        404,
        "NOT_FOUND",
        "models/unknown is not found for API version v1beta, or is not supported for generateContent.",
    ),
    "500": (
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "context": (
        400,
        "INVALID_ARGUMENT",
        "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).",
    ),
}


def _error(code: int, status: str, message: str, details: list | None = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return {"error": err}


def _tool_result_text(fr: dict) -> str:
    resp = fr.get("response", {})
    if isinstance(resp, dict):
        for key in ("result", "content", "output"):
            if isinstance(resp.get(key), str) and len(resp) == 1:
                return resp[key]
    return json.dumps(resp)


def _parts_text(parts: Any) -> tuple[str, bool]:
    """Text of a parts list (thought parts skipped) and whether it holds functionResponses."""
    texts, is_tool = [], False
    for p in parts or []:
        if not isinstance(p, dict) or p.get("thought"):
            continue
        if "text" in p:
            texts.append(p["text"])
        elif "functionCall" in p:
            texts.append(json.dumps(p["functionCall"].get("args", {})))
        elif "functionResponse" in p:
            is_tool = True
            texts.append(_tool_result_text(p["functionResponse"]))
    return " ".join(texts), is_tool


def _thinking_budget(model: str, config: dict, reasoning: bool) -> int:
    tc = config.get("thinkingConfig") if isinstance(config.get("thinkingConfig"), dict) else {}
    budget = tc.get("thinkingBudget")
    if isinstance(budget, int) and budget >= 0:
        return budget
    return (32_768 if "pro" in model else 24_576) if reasoning or tc else 0


def bill_max(plan: Plan, body: dict, reasoning: bool) -> None:
    """The most Gemini bills for `body` as sent (rule in the module docstring)."""
    prompt, images, pages = 0, 0, 0
    for content in [body.get("systemInstruction") or body.get("system_instruction") or {}] + body["contents"]:
        for part in content.get("parts") or []:
            inline = part.get("inlineData") or part.get("inline_data") if isinstance(part, dict) else None
            if isinstance(inline, dict) and str(inline.get("mimeType")) == "application/pdf":
                pages += pdf_pages(str(inline.get("data") or ""))
            elif inline is not None:
                images += 1
        prompt += utf8_len(_parts_text(content.get("parts"))[0])
    prompt += (
        utf8_len(json.dumps(body.get("tools") or [])) + IMAGE_MAX_TOKENS * images + PDF_PAGE_TOKENS * pages
    )
    config = body.get("generationConfig") or {}
    n = config.get("candidateCount") if isinstance(config.get("candidateCount"), int) else 1
    plan.candidates = max(n, 1)
    thinking = _thinking_budget(plan.model, config, reasoning)
    plan.bill_max(
        prompt=prompt,
        output=plan.candidates * int(config.get("maxOutputTokens") or DEFAULT_OUTPUT_LIMIT),
        reasoning=plan.candidates * thinking,
    )


class FakeGemini(FakeServer):
    """Fake Gemini vendor (constructor args: see :class:`FakeServer`)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.route(
            "POST", r"/v1(?:beta)?/models/[^/:]+:(?:generateContent|streamGenerateContent)", self._generate
        )

    json_content_type = "application/json; charset=UTF-8"

    async def _send_err(self, conn: Conn, code: int, status: str, message: str, details=None) -> None:
        await conn.send_json(
            code, _error(code, status, message, details), content_type=self.json_content_type
        )

    async def _generate(self, req: Request, conn: Conn) -> None:
        key = req.headers.get("x-goog-api-key") or req.query.get("key")
        if not key:
            await self._send_err(
                conn,
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to "
                "call this API.",
            )
            return
        if key != self.api_key:
            await self._send_err(
                conn,
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
            return
        path_model, _, method = req.path.rpartition("/models/")[2].partition(":")
        model = path_model
        if self.models and model not in self.models:
            await self._send_err(
                conn,
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for "
                f"{method}. Call ListModels to see the list of available models and their "
                "supported methods.",
            )
            return
        body = req.json
        if not isinstance(body, dict):
            await self._send_err(conn, 400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
            return
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            await self._send_err(
                conn,
                400,
                "INVALID_ARGUMENT",
                "* GenerateContentRequest.contents: contents is not specified\n",
            )
            return
        turns = []
        system = body.get("systemInstruction") or body.get("system_instruction")
        if system:
            turns.append(Turn("system", _parts_text(system.get("parts"))[0]))
        for c in contents:
            text, is_tool = _parts_text(c.get("parts"))
            role = "tool" if is_tool else ("assistant" if c.get("role") == "model" else "user")
            turns.append(Turn(role, text))
        tool_names = [
            d.get("name")
            for t in body.get("tools") or []
            for d in (t.get("functionDeclarations") or t.get("function_declarations") or [])
        ]
        fcc = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        mode = str(fcc.get("mode", "AUTO")).upper()
        forced = None
        if mode == "ANY" and tool_names:
            forced = (fcc.get("allowedFunctionNames") or tool_names)[0]
        gc = body.get("generationConfig") or {}
        tc = gc.get("thinkingConfig")
        reasoning = (
            "thinking" in model.lower()
            or "reason" in model.lower()
            or (isinstance(tc, dict) and tc.get("thinkingBudget", -1) != 0)
        )
        if isinstance(tc, dict) and tc.get("thinkingBudget") == 0:
            reasoning = False
        plan = make_plan(
            model=model,
            turns=turns,
            tool_names=tool_names,
            forced_tool=forced,
            tools_allowed=mode != "NONE",
            reasoning=reasoning,
            max_tokens=gc.get("maxOutputTokens"),
        )
        plan.options["include_thoughts"] = bool(isinstance(tc, dict) and tc.get("includeThoughts"))
        if bills_max(req):
            bill_max(plan, body, reasoning)
        last_user = next((t.text for t in reversed(turns) if t.role == "user"), "")
        fault = self.take_fault(last_user)
        stream = method == "streamGenerateContent"
        if stream and req.query.get("alt") != "sse" and fault is None:
            frames = [json.loads(f[len(b"data: ") :]) for f in self._chunks(plan, False)]
            await conn.send_json(200, frames, content_type=self.json_content_type)
            return
        await self.serve_completion(conn, req, plan, fault, stream)

    # ------------------------------------------------------------------ rendering
    def error_response(self, fault: str, model: str):
        code, status, message = _ERRORS["503" if fault == "529" else fault]
        headers, details = [], None
        if fault == "429":
            headers = [("retry-after", "1")]
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]
        return code, _error(code, status, message, details), headers

    @staticmethod
    def _usage(plan: Plan, candidates: int, thoughts: int) -> dict:
        u: dict[str, Any] = {"promptTokenCount": plan.prompt_tokens}
        if candidates:
            u["candidatesTokenCount"] = candidates
        u["totalTokenCount"] = plan.prompt_tokens + candidates + thoughts
        if plan.cached_tokens:
            u["cachedContentTokenCount"] = plan.cached_tokens
            u["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": plan.cached_tokens}]
        u["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": plan.prompt_tokens}]
        if thoughts:
            u["thoughtsTokenCount"] = thoughts
        return u

    @staticmethod
    def _finish(plan: Plan) -> str:
        return "MAX_TOKENS" if plan.truncated and not plan.is_tool else "STOP"

    def _call_part(self, plan: Plan) -> dict:
        part: dict[str, Any] = {"functionCall": {"name": plan.tool_name, "args": plan.tool_args}}
        if plan.reasoning:
            part["thoughtSignature"] = fake_signature(plan.tool_name + (plan.reasoning or ""))
        return part

    def _response(self, plan: Plan, parts: list, finish: bool, usage: dict | None, rid: str) -> dict:
        cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish:
            cand["finishReason"] = self._finish(plan)
        out: dict[str, Any] = {"candidates": [{**cand, "index": i} for i in range(plan.candidates)]}
        if usage is not None:
            out["usageMetadata"] = usage
        out["modelVersion"] = plan.model
        out["responseId"] = rid
        return out

    def render_json(self, plan: Plan, no_usage: bool) -> dict:
        parts: list[dict] = []
        if plan.reasoning and plan.options.get("include_thoughts"):
            parts.append({"text": plan.reasoning, "thought": True})
        parts.append(self._call_part(plan) if plan.is_tool else {"text": plan.text})
        usage = None if no_usage else self._usage(plan, plan.output_tokens, plan.reasoning_tokens)
        return self._response(plan, parts, True, usage, self.next_id("resp", 18))

    def _chunks(self, plan: Plan, no_usage: bool) -> list[bytes]:
        rid = self.next_id("resp", 18)
        steps: list[tuple[dict, int, int]] = []  # (part, cumulative candidates, cumulative thoughts)
        thoughts = plan.reasoning_tokens
        if plan.reasoning and plan.options.get("include_thoughts"):
            steps += [({"text": w, "thought": True}, 0, i + 1) for i, w in enumerate(plan.reasoning_chunks())]
        if plan.is_tool:
            steps.append((self._call_part(plan), plan.output_tokens, thoughts))
        else:
            words = plan.text_chunks() or [""]
            steps += [({"text": w}, i + 1 if w else 0, thoughts) for i, w in enumerate(words)]
        part, _, _ = steps[-1]  # the last chunk reports the whole bill (a no-op unless billed above the text)
        steps[-1] = (part, plan.output_tokens, thoughts)
        frames = []
        for i, (part, cand, th) in enumerate(steps):
            usage = None if no_usage else self._usage(plan, cand, th)
            frames.append(
                sse(self._response(plan, [part], i == len(steps) - 1, usage, rid), compact=False, crlf=True)
            )
        return frames

    def render_stream(self, plan: Plan, no_usage: bool, req: Request) -> list[bytes]:
        return self._chunks(plan, no_usage)

    def malformed_frame(self) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": \r\n\r\n'

    def midstream_error_frame(self) -> bytes:
        return sse(
            _error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
            compact=False,
            crlf=True,
        )
