"""Fake OpenAI Images API (and xAI's OpenAI-compatible image endpoint).

Wire format follows:
  * https://developers.openai.com/api/reference/resources/images/methods/generate
    POST /v1/images/generations (JSON: model, prompt, n, size, quality,
    response_format, output_format, background) -> ImagesResponse
    ``{"created", "data": [{"b64_json"} | {"url"}], "background", "output_format",
    "quality", "size", "usage": {"input_tokens", "input_tokens_details":
    {"image_tokens", "text_tokens"}, "output_tokens", "total_tokens"}}``.
    GPT image models always return b64_json; dall-e-* default to url and
    dall-e-3 adds ``revised_prompt``.
  * https://developers.openai.com/api/reference/resources/images/methods/edit
    POST /v1/images/edits (multipart: ``image`` or ``image[]`` files, ``mask``,
    prompt, model, n, size, ...); a JSON body with ``images: [{"image_url"}]`` is
    accepted too.
  * Errors: ``{"error": {"message", "type", "param", "code"}}``; safety
    rejections are 400 with code ``content_policy_violation`` ("Your request was
    rejected as a result of our safety system...").
  * xAI (flavor="xai"): https://docs.x.ai/docs/guides/image-generations -
    model grok-2-image, JPEG output, ``data[].url`` (default) or ``b64_json``
    plus ``revised_prompt``; size/quality/style are not supported.

Faults (``script(name, times=1, on="generate"|"edit")`` or ``[[fault:name]]``):
500, 429 (retry-after), 400, content_policy, no_image (empty data), partial
(n-1 images), slow. Async-only faults (job_failed, never_finishes) are ignored.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from decimal import Decimal
from typing import Any

from .media_common import (
    FakeMediaServer,
    FakeRequest,
    FakeResponse,
    IMAGE_MIME,
    b64,
    image_info,
    json_response,
    make_image,
)

# What OpenAI bills for GPT Image, per 1M tokens: (text input, image input, image output). The
# output rates reproduce the per-image tables: gpt-image-1 low 1024x1024 = 272 x $40/1M = $0.011
# (https://fal.ai/models/fal-ai/gpt-image-1/edit-image/llms.txt, OpenAI's table); gpt-image-1.5
# 272 x $32/1M = $0.009, high 4160 x $32/1M = $0.133, text ~$0.005/1K, image ~$0.008/1K
# (https://runware.ai/docs/models/openai-gpt-image-1-5). gpt-image-2 has no published per-image
# table; it is billed here at gpt-image-1.5's rates.
TOKEN_PRICES = {
    "gpt-image-1": ("5", "10", "40"),
    "gpt-image-1.5": ("5", "8", "32"),
    "gpt-image-2": ("5", "8", "32"),
}
OUTPUT_TOKENS = {  # gpt-image-1 published per-image output token counts
    ("low", "1024x1024"): 272,
    ("medium", "1024x1024"): 1056,
    ("high", "1024x1024"): 4160,
    ("low", "1536x1024"): 408,
    ("medium", "1536x1024"): 1584,
    ("high", "1536x1024"): 6240,
}


def vendor_bill(model: str, text_tokens: int, image_tokens: int, output_tokens: int) -> Decimal:
    """What OpenAI charges for a GPT Image response with this usage (TOKEN_PRICES)."""
    text, image, output = (Decimal(p) for p in TOKEN_PRICES.get(model, TOKEN_PRICES["gpt-image-1"]))
    return (text * text_tokens + image * image_tokens + output * output_tokens) / 1_000_000


def openai_error(
    message: str,
    etype: str,
    status: int,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> FakeResponse:
    return json_response(
        {"error": {"message": message, "type": etype, "param": param, "code": code}}, status, headers
    )


def openai_http_fault(faults: set[str], retry_after: int) -> FakeResponse | None:
    """The generic faults shared by the OpenAI-shaped fakes (images and video)."""
    if "500" in faults:
        return openai_error(
            "The server had an error while processing your request. Sorry about that!", "server_error", 500
        )
    if "429" in faults:
        return openai_error(
            f"Rate limit reached for images per minute. Please try again in {retry_after}s.",
            "requests",
            429,
            None,
            "rate_limit_exceeded",
            {
                "retry-after": str(retry_after),
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{retry_after}s",
            },
        )
    if "400" in faults:
        return openai_error(
            "Invalid value for 'size'.", "invalid_request_error", 400, "size", "invalid_value"
        )
    return None


def check_bearer(req: FakeRequest, api_key: str | None) -> FakeResponse | None:
    if api_key is None:
        return None
    auth = req.headers.get("authorization", "")
    if not auth.startswith("Bearer "):
        return openai_error(
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer "
            "YOUR_KEY).",
            "invalid_request_error",
            401,
        )
    if auth[7:] != api_key:
        return openai_error(
            f"Incorrect API key provided: {auth[7:11]}****.",
            "invalid_request_error",
            401,
            None,
            "invalid_api_key",
        )
    return None


def parse_size(size: Any) -> tuple[int, int] | None:
    if size in (None, "", "auto"):
        return 1024, 1024
    m = re.fullmatch(r"(\d+)x(\d+)", str(size))
    return (int(m.group(1)), int(m.group(2))) if m else None


class FakeOpenAIImages(FakeMediaServer):
    """Fake ``api.openai.com`` images (flavor="openai") or ``api.x.ai`` (flavor="xai")."""

    primary_kind = "generate"

    def __init__(self, *, flavor: str = "openai", **kw: Any):
        super().__init__(**kw)
        if flavor not in ("openai", "xai"):
            raise ValueError("flavor must be 'openai' or 'xai'")
        self.flavor = flavor

    async def handle(self, req: FakeRequest) -> FakeResponse:
        routes = {"/v1/images/generations": "generate", "/v1/images/edits": "edit"}
        req.kind = routes.get(req.path.rstrip("/"), "unknown")
        if req.kind == "unknown" or req.method != "POST":
            return openai_error(f"Invalid URL ({req.method} {req.path})", "invalid_request_error", 404)
        if (err := check_bearer(req, self.api_key)) is not None:
            return err
        params, inputs = self._params(req)
        prompt = params.get("prompt")
        faults = self.take_faults(req, prompt)
        await self.apply_slow(faults)
        if (err := openai_http_fault(faults, self.retry_after)) is not None:
            return err
        if not isinstance(prompt, str) or not prompt:
            return openai_error(
                "Missing required parameter: 'prompt'.",
                "invalid_request_error",
                400,
                "prompt",
                "missing_required_parameter",
            )
        if req.kind == "edit" and not inputs:
            return openai_error(
                "Missing required parameter: 'image'.",
                "invalid_request_error",
                400,
                "image",
                "missing_required_parameter",
            )
        if "content_policy" in faults:
            return openai_error(
                "Your request was rejected as a result of our safety system. Your "
                "prompt may contain text that is not allowed by our safety system.",
                "invalid_request_error",
                400,
                None,
                "content_policy_violation",
            )
        req.meta["input_images"] = inputs
        return self._generate(req, params, faults, len(inputs))

    def _params(self, req: FakeRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Normalise JSON / multipart bodies; returns (params, input image infos)."""
        if req.form is not None:
            params: dict[str, Any] = {k: v[-1] for k, v in req.form.fields.items()}
            files = req.form.files_named("image", "image[]")
            return params, [
                {
                    "field": f.name,
                    "filename": f.filename,
                    "content_type": f.content_type,
                    **image_info(f.data),
                }
                for f in files
            ]
        params = dict(req.body) if isinstance(req.body, dict) else {}
        inputs = []
        for item in params.get("images") or []:
            url = (item or {}).get("image_url", "") if isinstance(item, dict) else ""
            if url.startswith("data:") and "," in url:
                try:
                    inputs.append({"field": "images", **image_info(base64.b64decode(url.split(",", 1)[1]))})
                except (binascii.Error, ValueError):
                    inputs.append({"field": "images", "bytes": 0, "format": None})
            elif url:
                inputs.append({"field": "images", "url": url})
        return params, inputs

    def _generate(self, req: FakeRequest, p: dict[str, Any], faults: set[str], n_inputs: int) -> FakeResponse:
        model = str(p.get("model") or ("grok-2-image" if self.flavor == "xai" else "dall-e-2"))
        gpt_image = model.startswith(("gpt-image", "chatgpt-image"))
        try:
            n = int(p.get("n", 1) or 1)
        except (TypeError, ValueError):
            return openai_error("Invalid type for 'n'.", "invalid_request_error", 400, "n")
        if n < 1 or n > 10:
            return openai_error(
                f"{n} is greater than the maximum of 10 - 'n'."
                if n > 10
                else f"{n} is less than the minimum of 1 - 'n'.",
                "invalid_request_error",
                400,
                "n",
            )
        size = (1024, 768) if self.flavor == "xai" else parse_size(p.get("size"))
        if size is None:
            return openai_error(
                f"Invalid value: '{p.get('size')}'. Supported values are: "
                "'1024x1024', '1024x1536', '1536x1024', and 'auto'.",
                "invalid_request_error",
                400,
                "size",
                "invalid_value",
            )
        w, h = size
        fmt = "jpeg" if self.flavor == "xai" else str(p.get("output_format") or "png").lower()
        fmt = fmt if fmt in IMAGE_MIME else "png"
        rf = p.get("response_format") or ("b64_json" if gpt_image else "url")
        count = 0 if "no_image" in faults else (n - 1 if "partial" in faults else n)
        prompt = str(p["prompt"])
        data = []
        for i in range(count):
            img = make_image(w, h, prompt, i, fmt, self.max_side)
            item: dict[str, Any]
            if rf == "b64_json":
                item = {"b64_json": b64(img)}
            else:
                item = {"url": self.store_file(img, IMAGE_MIME[fmt], fmt, requested_size=f"{w}x{h}")}
            if self.flavor == "xai" or model == "dall-e-3":
                item["revised_prompt"] = f"A detailed rendering of: {prompt}"
            data.append(item)
        req.meta.update(requested_size=f"{w}x{h}", delivered=count, response_format=rf)
        headers = {"x-fake-requested-size": f"{w}x{h}", "x-request-id": f"req_{int(time.time() * 1e6)}"}
        if self.flavor == "xai":
            return json_response({"data": data}, 200, headers)
        body: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image:
            quality = str(p.get("quality") or "auto")
            # "auto (default value) will automatically select the best quality for the given model"
            # (OpenAI's images reference): the fake takes the worst case for the payer.
            quality = "high" if quality == "auto" else quality
            key = (quality, "1024x1024" if w == h else "1536x1024")
            out_tokens = OUTPUT_TOKENS.get(key, 1056) * count
            text_tokens = max(1, len(prompt) // 4)
            image_tokens = 323 * n_inputs
            req.meta["vendor_usd"] = vendor_bill(model, text_tokens, image_tokens, out_tokens)
            body.update(
                background=p.get("background")
                if p.get("background") in ("transparent", "opaque")
                else "opaque",
                output_format=fmt,
                quality=quality,
                size=f"{w}x{h}",
                usage={
                    "input_tokens": text_tokens + image_tokens,
                    "input_tokens_details": {"image_tokens": image_tokens, "text_tokens": text_tokens},
                    "output_tokens": out_tokens,
                    "total_tokens": text_tokens + image_tokens + out_tokens,
                },
            )
        return json_response(body, 200, headers)
