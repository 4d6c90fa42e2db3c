"""Gemini native image output ("Nano Banana") through generateContent with inline image data.

One request per image (the image models answer one image per call), run concurrently; the
prompt and any reference images go in one user turn as text and inlineData parts, the size
hint becomes imageConfig {aspectRatio, imageSize} (imageSize only for Gemini 3 models).
A candidate blocked for safety, or a blocked prompt, is a content-policy refusal.
"""

import asyncio
import base64
import binascii
from typing import Any

from llm.providers.gemini import parse_error
from llm.upstreams import Upstream

from media_jobs.imaging import sniff_image_mime

from . import http
from .base import GeneratedImage, ImageSpec, Route, UpstreamError, no_output
from .sizes import nearest_aspect, tier

BLOCKED = {
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_PROHIBITED_CONTENT",
}


class GeminiImages:
    def __init__(self, upstream: Upstream):
        self.upstream = upstream

    def body(self, spec: ImageSpec, route: Route) -> dict:
        parts: list[dict[str, Any]] = [{"text": spec.prompt}]
        parts += [
            {"inlineData": {"mimeType": m.mime_type, "data": base64.b64encode(m.data).decode()}}
            for m in spec.inputs
        ]
        image_config = {"aspectRatio": nearest_aspect(spec.size)}
        if route.upstream_model.startswith("gemini-3"):
            image_config["imageSize"] = tier(spec.size)
        return {
            "contents": [{"role": "user", "parts": parts}],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": image_config},
        }

    async def _one(self, spec: ImageSpec, route: Route) -> list[GeneratedImage]:
        url = f"{self.upstream.base_url}/v1beta/models/{route.upstream_model}:generateContent"
        response = await http.call(
            self.upstream,
            "POST",
            url,
            json=self.body(spec, route),
            headers={"x-goog-api-key": self.upstream.api_key},
            deadline=spec.deadline,
            error_parser=parse_error,
            cap=spec.deadline.remaining(),
        )
        return images_of(http.json_of(response))

    async def generate(self, spec: ImageSpec, route: Route) -> list[GeneratedImage]:
        results = await asyncio.gather(
            *(self._one(spec, route) for _ in range(spec.n)), return_exceptions=True
        )
        images = [image for r in results if isinstance(r, list) for image in r[:1]]
        if images:
            return images
        errors: list[UpstreamError] = []
        for error in (r for r in results if isinstance(r, BaseException)):
            if not isinstance(error, UpstreamError):
                raise error
            errors.append(error)
        policy = [e for e in errors if e.kind == "content_policy"]
        raise (policy or errors or [no_output()])[0]


def images_of(body: dict) -> list[GeneratedImage]:
    """The inline images of a generateContent reply; a blocked reply raises content_policy."""
    images, blocked = [], None
    feedback = body.get("promptFeedback") or {}
    if feedback.get("blockReason"):
        blocked = f"the prompt was blocked ({feedback['blockReason']})"
    for candidate in body.get("candidates") or ():
        if candidate.get("finishReason") in BLOCKED:
            blocked = f"the image was filtered ({candidate['finishReason']})"
        for part in (candidate.get("content") or {}).get("parts") or ():
            inline = part.get("inlineData") or part.get("inline_data")
            if not isinstance(inline, dict) or part.get("thought"):
                continue
            try:
                data = base64.b64decode(inline.get("data") or "", validate=True)
            except (binascii.Error, ValueError):
                continue
            mime = sniff_image_mime(data)
            if mime:
                images.append(GeneratedImage(data, mime))
    if not images and blocked:
        raise UpstreamError("content_policy", blocked)
    if not images:
        raise no_output()
    return images
