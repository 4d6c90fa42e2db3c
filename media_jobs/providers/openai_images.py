"""OpenAI Images API (POST /images/generations, /images/edits), also spoken by xAI's image
endpoint and by the generic OpenAI-compatible fallback.

Flavors: "openai" (GPT Image: always base64, size presets, quality low|medium|high|auto; edits
are multipart with image[] files), "xai" (no size/quality; asks for b64_json), "compat" (the
fallback: size forwarded as-is, edits as JSON `images: [{image_url}]`, either url or b64_json
accepted back). Vendor URLs in replies are fetched with the pooled client (operator-trusted).
"""

import base64
import binascii
import json

from llm.providers.http import generic_error
from llm.upstreams import Upstream

from media_jobs.imaging import sniff_image_mime

from . import http
from .base import GeneratedImage, ImageSpec, Route, UpstreamError
from .sizes import openai_size

GPT_QUALITY = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "auto": "auto",
    "standard": "medium",
    "hd": "high",
    "xhigh": "high",
    "max": "high",
}
POLICY_CODES = {"content_policy_violation", "moderation_blocked", "image_generation_user_error"}


def parse_error(status: int, body: bytes, headers) -> UpstreamError:
    error = generic_error(status, body, headers)
    try:
        detail = json.loads(body).get("error") or {}
    except (ValueError, AttributeError):
        detail = {}
    if isinstance(detail, dict) and detail.get("code") in POLICY_CODES:
        return UpstreamError("content_policy", error.message, status=status)
    return error


class OpenAIImages:
    def __init__(self, upstream: Upstream, flavor: str = "openai"):
        self.upstream = upstream
        self.flavor = flavor

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.upstream.api_key}"}

    def _params(self, spec: ImageSpec, route: Route) -> dict:
        params = {"model": route.upstream_model, "prompt": spec.prompt, "n": spec.n}
        if self.flavor == "xai":
            params["response_format"] = "b64_json"
        elif self.flavor == "openai":
            params["size"] = openai_size(spec.size)
            if spec.quality in GPT_QUALITY:
                params["quality"] = GPT_QUALITY[spec.quality]
        else:
            params["response_format"] = "b64_json"
            if spec.size_text:
                params["size"] = spec.size_text
            if spec.quality:
                params["quality"] = spec.quality
        return params

    async def generate(self, spec: ImageSpec, route: Route) -> list[GeneratedImage]:
        params = self._params(spec, route)
        base = self.upstream.base_url
        if not spec.inputs:
            response = await http.call(
                self.upstream,
                "POST",
                f"{base}/images/generations",
                json=params,
                headers=self._headers(),
                deadline=spec.deadline,
                error_parser=parse_error,
                cap=spec.deadline.remaining(),
            )
        elif self.flavor == "openai":
            files = [
                ("image[]", (f"input-{i}", item.data, item.mime_type)) for i, item in enumerate(spec.inputs)
            ]
            form = {k: str(v) for k, v in params.items()}
            response = await http.call(
                self.upstream,
                "POST",
                f"{base}/images/edits",
                data=form,
                files=files,
                headers=self._headers(),
                deadline=spec.deadline,
                error_parser=parse_error,
                cap=spec.deadline.remaining(),
            )
        else:
            params["images"] = [{"image_url": item.data_uri()} for item in spec.inputs]
            response = await http.call(
                self.upstream,
                "POST",
                f"{base}/images/edits",
                json=params,
                headers=self._headers(),
                deadline=spec.deadline,
                error_parser=parse_error,
                cap=spec.deadline.remaining(),
            )
        return await self._images(http.json_of(response), spec)

    async def _images(self, body: dict, spec: ImageSpec) -> list[GeneratedImage]:
        images = []
        for item in body.get("data") or ():
            if not isinstance(item, dict):
                continue
            data = await self._bytes(item, spec)
            mime = sniff_image_mime(data) if data else None
            if data and mime:
                images.append(GeneratedImage(data, mime, item.get("revised_prompt")))
        return images[: spec.n]

    async def _bytes(self, item: dict, spec: ImageSpec) -> bytes | None:
        if item.get("b64_json"):
            try:
                return base64.b64decode(item["b64_json"])
            except (binascii.Error, ValueError):
                return None
        if item.get("url"):
            data, _ = await http.download(self.upstream, item["url"], deadline=spec.deadline)
            return data
        return None
