"""Fake Gemini API native image output ("Nano Banana") for loopback tests.

Wire format follows:
  * https://ai.google.dev/gemini-api/docs/image-generation (a.k.a. /nanobanana):
    ``POST /v1beta/models/{model}:generateContent`` with ``contents[].parts``
    (``{"text"}`` / ``{"inlineData": {"mimeType", "data"}}``; the REST API also
    accepts snake_case ``inline_data``/``mime_type``), ``generationConfig.
    responseModalities`` (["TEXT","IMAGE"] / ["IMAGE"]) and ``generationConfig.
    imageConfig`` ``{"aspectRatio": "16:9", "imageSize": "1K"|"2K"|"4K"}``.
  * https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse:
    ``{"candidates": [{"content": {"parts": [...], "role": "model"},
    "finishReason", "index"}], "usageMetadata": {"promptTokenCount",
    "candidatesTokenCount", "totalTokenCount", "promptTokensDetails",
    "candidatesTokensDetails": [{"modality", "tokenCount"}]}, "modelVersion",
    "responseId"}``. Image parts come back camelCase:
    ``{"inlineData": {"mimeType": "image/png", "data": "<base64>"}}``.
  * Blocking (https://ai.google.dev/api/generate-content#FinishReason): output
    block -> candidate without ``content`` and ``finishReason`` ``IMAGE_SAFETY``;
    prompt block -> no candidates, ``promptFeedback.blockReason``.
  * Errors: ``{"error": {"code", "message", "status", "details"?}}``
    (INVALID_ARGUMENT 400, PERMISSION_DENIED 403, RESOURCE_EXHAUSTED 429 with a
    ``google.rpc.RetryInfo`` detail, INTERNAL 500).

Auth: ``x-goog-api-key`` header (or ``?key=``).
Faults (``script(name, times=1)`` or ``[[fault:name]]``): 500, 429, 400, slow,
content_policy (IMAGE_SAFETY), prompt_blocked (promptFeedback PROHIBITED_CONTENT),
no_image (STOP with a text-only answer), partial (candidateCount n -> n-1
candidates). job_failed / never_finishes do not apply (synchronous API).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import Any

from .media_common import (
    FakeMediaServer,
    FakeRequest,
    FakeResponse,
    b64,
    image_info,
    json_response,
    make_image,
)

# 1K output sizes per aspect ratio (published tables; 2K/4K are x2/x4 for Gemini 3 models).
SIZES_25 = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
SIZES_3 = {
    "1:1": (1024, 1024),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "9:16": (768, 1376),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
}
SCALE = {"1K": 1, "2K": 2, "4K": 4}
_PATH_RE = re.compile(r"^/(v1beta|v1alpha|v1)/models/([^/:]+):(generateContent|streamGenerateContent)$")


def google_error(
    code: int, status: str, message: str, details: list | None = None, headers: dict[str, str] | None = None
) -> FakeResponse:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return json_response({"error": err}, code, headers)


def _get(d: dict, camel: str, snake: str, default: Any = None) -> Any:
    return d.get(camel, d.get(snake, default)) if isinstance(d, dict) else default


class FakeGemini(FakeMediaServer):
    """Fake ``generativelanguage.googleapis.com`` generateContent with image output."""

    primary_kind = "generate"

    async def handle(self, req: FakeRequest) -> FakeResponse:
        m = _PATH_RE.match(req.path)
        if not m or req.method != "POST":
            req.kind = "unknown"
            return google_error(404, "NOT_FOUND", f"Method not found: {req.method} {req.path}")
        _, model, method = m.groups()
        req.kind = "generate"
        key = req.headers.get("x-goog-api-key") or req.query.get("key")
        if self.api_key is not None:
            if not key:
                return google_error(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without "
                    "established identity). Please use API Key or other form of API "
                    "consumer identity to call this API.",
                )
            if key != self.api_key:
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "API key not valid. Please pass a valid API key.",
                    [
                        {
                            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                            "reason": "API_KEY_INVALID",
                            "domain": "googleapis.com",
                        }
                    ],
                )
        body = req.body if isinstance(req.body, dict) else {}
        prompt, inputs, prompt_tokens = self._read_contents(body.get("contents"))
        faults = self.take_faults(req, prompt)
        await self.apply_slow(faults)
        if "500" in faults:
            return google_error(
                500,
                "INTERNAL",
                "An internal error has occurred. Please retry or "
                "report in https://developers.generativeai.google/guide/troubleshooting",
            )
        if "429" in faults:
            return google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
                [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{self.retry_after}s"}],
                {"retry-after": str(self.retry_after)},
            )
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            return google_error(
                400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified"
            )
        if "400" in faults:
            return google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
        gen = _get(body, "generationConfig", "generation_config", {}) or {}
        img_cfg = _get(gen, "imageConfig", "image_config", {}) or {}
        aspect = _get(img_cfg, "aspectRatio", "aspect_ratio", "1:1")
        image_size = _get(img_cfg, "imageSize", "image_size", "1K")
        table = SIZES_3 if model.startswith("gemini-3") else SIZES_25
        if aspect not in table or image_size not in SCALE:
            return google_error(
                400,
                "INVALID_ARGUMENT",
                f"Unsupported image config: aspectRatio={aspect!r}, imageSize={image_size!r}",
            )
        w, h = table[aspect]
        if model.startswith("gemini-3"):
            w, h = w * SCALE[image_size], h * SCALE[image_size]
        modalities = [
            str(x).upper()
            for x in (_get(gen, "responseModalities", "response_modalities") or ["TEXT", "IMAGE"])
        ]
        n = int(_get(gen, "candidateCount", "candidate_count", 1) or 1)
        req.meta.update(
            requested_size=f"{w}x{h}",
            aspect_ratio=aspect,
            image_size=image_size,
            input_images=inputs,
            modalities=modalities,
        )
        resp = self._respond(model, prompt, prompt_tokens, faults, modalities, n, w, h, image_size)
        resp_headers = {"x-fake-requested-size": f"{w}x{h}"}
        if method == "streamGenerateContent":
            if req.query.get("alt") == "sse":
                return FakeResponse(
                    200,
                    f"data: {json.dumps(resp)}\r\n\r\n".encode(),
                    {"content-type": "text/event-stream", **resp_headers},
                )
            return json_response([resp], 200, resp_headers)
        return json_response(resp, 200, resp_headers)

    def _read_contents(self, contents: Any) -> tuple[str, list[dict[str, Any]], int]:
        """Prompt = text of the last user turn; also describes every input image."""
        texts: list[str] = []
        inputs: list[dict[str, Any]] = []
        tokens = 0
        for turn in contents if isinstance(contents, list) else []:
            parts = turn.get("parts", []) if isinstance(turn, dict) else []
            turn_texts = []
            for part in parts if isinstance(parts, list) else []:
                if not isinstance(part, dict):
                    continue
                if isinstance(part.get("text"), str):
                    turn_texts.append(part["text"])
                    tokens += max(1, len(part["text"]) // 4)
                inline = _get(part, "inlineData", "inline_data")
                if isinstance(inline, dict):
                    info = {"mime_type": _get(inline, "mimeType", "mime_type")}
                    try:
                        info.update(image_info(base64.b64decode(inline.get("data", ""), validate=True)))
                    except (binascii.Error, ValueError):
                        info.update(bytes=0, format=None, invalid_base64=True)
                    inputs.append(info)
                    tokens += 258
            if turn_texts and (not isinstance(turn, dict) or turn.get("role", "user") == "user"):
                texts = turn_texts
        return " ".join(texts), inputs, tokens

    def _respond(
        self,
        model: str,
        prompt: str,
        prompt_tokens: int,
        faults: set[str],
        modalities: list[str],
        n: int,
        w: int,
        h: int,
        image_size: str,
    ) -> dict[str, Any]:
        img_tokens = 2000 if image_size == "4K" else (1120 if model.startswith("gemini-3") else 1290)
        base = {"modelVersion": model, "responseId": uuid.uuid4().hex[:22]}
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "totalTokenCount": prompt_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        }
        if "prompt_blocked" in faults:
            return {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": usage, **base}
        if "content_policy" in faults:
            return {
                "candidates": [
                    {
                        "finishReason": "IMAGE_SAFETY",
                        "index": 0,
                        "finishMessage": "Unable to show the generated image. The image "
                        "was filtered out because it violated Google's Generative AI "
                        "Prohibited Use policy.",
                    }
                ],
                "usageMetadata": usage,
                **base,
            }
        count = n - 1 if "partial" in faults else n
        want_image = "IMAGE" in modalities and "no_image" not in faults
        candidates, text_tokens, image_count = [], 0, 0
        for i in range(count):
            parts: list[dict[str, Any]] = []
            if "TEXT" in modalities or not want_image:
                text = (
                    "I can't generate that image."
                    if "no_image" in faults
                    else f"Here is the image you asked for: {prompt[:60]}"
                )
                parts.append({"text": text})
                text_tokens += max(1, len(text) // 4)
            if want_image:
                parts.append(
                    {
                        "inlineData": {
                            "mimeType": "image/png",
                            "data": b64(make_image(w, h, prompt, i, "png", self.max_side)),
                        }
                    }
                )
                image_count += 1
            candidates.append(
                {"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": i}
            )
        details = [{"modality": "IMAGE", "tokenCount": img_tokens * image_count}] if image_count else []
        if text_tokens:
            details.insert(0, {"modality": "TEXT", "tokenCount": text_tokens})
        out = text_tokens + img_tokens * image_count
        usage.update(
            candidatesTokenCount=out, totalTokenCount=prompt_tokens + out, candidatesTokensDetails=details
        )
        return {"candidates": candidates, "usageMetadata": usage, **base}
