"""OpenAI's Videos API (Sora): POST /videos, poll GET /videos/{id}, download /videos/{id}/content.

seconds is a string ("4" | "8" | "12"); size follows the aspect ratio and resolution (1080p
is Sora 2 Pro's 1792x1024 / 1024x1792). image-to-video uploads the image as multipart
`input_reference`. A failed video is retryable on the next route unless it was moderated.
"""

import asyncio

from django.conf import settings

from llm.upstreams import Upstream

from . import http
from .base import GeneratedVideo, Route, UpstreamError, VideoSpec
from .openai_images import parse_error

SIZES = {
    ("720p", "16:9"): "1280x720",
    ("720p", "9:16"): "720x1280",
    ("1080p", "16:9"): "1792x1024",
    ("1080p", "9:16"): "1024x1792",
}


def size_for(spec: VideoSpec) -> str:
    return SIZES.get((spec.resolution or "720p", spec.aspect_ratio or "16:9"), "1280x720")


class OpenAIVideo:
    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self.headers = {"Authorization": f"Bearer {upstream.api_key}"}

    async def generate(self, spec: VideoSpec, route: Route) -> GeneratedVideo:
        base = f"{self.upstream.base_url}/videos"
        params = {
            "model": route.upstream_model,
            "prompt": spec.prompt,
            "seconds": str(spec.duration),
            "size": size_for(spec),
        }
        if spec.image is not None:
            files = [("input_reference", ("reference", spec.image.data, spec.image.mime_type))]
            response = await http.call(
                self.upstream,
                "POST",
                base,
                data=params,
                files=files,
                headers=self.headers,
                deadline=spec.deadline,
                error_parser=parse_error,
            )
        else:
            response = await http.call(
                self.upstream,
                "POST",
                base,
                json=params,
                headers=self.headers,
                deadline=spec.deadline,
                error_parser=parse_error,
            )
        video_id = http.json_of(response).get("id")
        if not isinstance(video_id, str) or not video_id:
            raise UpstreamError("malformed", "the provider did not return a video id")
        await self._wait(f"{base}/{video_id}", spec)
        return GeneratedVideo(url=f"{base}/{video_id}/content", headers=self.headers)

    async def _wait(self, url: str, spec: VideoSpec) -> None:
        interval = settings.GPUNIQ_MEDIA_POLL_SECONDS
        while True:
            video = http.json_of(
                await http.call(
                    self.upstream,
                    "GET",
                    url,
                    headers=self.headers,
                    deadline=spec.deadline,
                    error_parser=parse_error,
                )
            )
            status = video.get("status")
            if status == "completed":
                return
            if status == "failed":
                error = video.get("error") or {}
                kind = "content_policy" if error.get("code") == "moderation_blocked" else "server"
                raise UpstreamError(kind, str(error.get("message") or "the video failed"))
            if status not in ("queued", "in_progress"):
                raise UpstreamError("malformed", f"unexpected video status {status!r}")
            if spec.deadline.remaining() <= interval:
                raise UpstreamError("timeout", "the provider did not finish within the budget")
            await asyncio.sleep(interval)
