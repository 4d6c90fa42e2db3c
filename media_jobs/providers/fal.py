"""fal-hosted image models (FLUX, Seedream, Z-Image, Nano Banana, Kontext) and video models
(Kling, Veo, Hailuo, Seedance, Wan, Runway, Grok Imagine, Sora via fal) over the queue API.

Endpoint ids come from the catalog route; this module derives the variants: image edits
("text-to-image" → "edit", "<id>/edit" for Nano Banana, Kontext's base id edits and its
"/text-to-image" generates), image-to-video ("text-to-video" → "image-to-video", Veo appends
"/image-to-video"), and Kling 2.1's tier ("/pro/" → "/standard/" | "/master/"). Inputs are sent
as data URIs (fal accepts them for every file field); a user's https video goes by URL.
"""

import asyncio

from llm.upstreams import Upstream

from media_jobs.imaging import sniff_image_mime

from . import http
from .base import GeneratedImage, GeneratedVideo, ImageSpec, Route, VideoSpec, no_output
from .fal_queue import FalQueue
from .sizes import nearest_aspect, tier


def image_endpoint(model_id: str, edit: bool) -> str:
    kontext = "/kontext" in model_id
    if not edit:
        return f"{model_id}/text-to-image" if kontext else model_id
    if "text-to-image" in model_id:
        return model_id.replace("text-to-image", "edit")
    return model_id if kontext else f"{model_id}/edit"


def image_payload(spec: ImageSpec, model_id: str) -> dict:
    payload = {"prompt": spec.prompt, "num_images": spec.n, "output_format": "png"}
    if "nano-banana" in model_id:
        payload["aspect_ratio"] = nearest_aspect(spec.size)
        if "nano-banana-pro" in model_id or "nano-banana-2" in model_id:
            payload["resolution"] = tier(spec.size)
    elif spec.size:
        payload["image_size"] = {"width": spec.size[0], "height": spec.size[1]}
    if spec.inputs and "/kontext" in model_id:
        payload["image_url"] = spec.inputs[0].data_uri()
    elif spec.inputs:
        payload["image_urls"] = [item.data_uri() for item in spec.inputs]
    return payload


def video_endpoint(model_id: str, spec: VideoSpec) -> str:
    endpoint = model_id
    if spec.task == "i2v" and "image-to-video" not in endpoint:
        if "text-to-video" in endpoint:
            endpoint = endpoint.replace("text-to-video", "image-to-video")
        else:
            endpoint = f"{endpoint}/image-to-video"
    if spec.mode in ("standard", "master") and "/v2.1/pro/" in endpoint:
        endpoint = endpoint.replace("/v2.1/pro/", f"/v2.1/{spec.mode}/")
    return endpoint


def duration_value(model_id: str, seconds: int):
    if "veo" in model_id:
        return f"{seconds}s"
    if "sora" in model_id:
        return seconds
    return str(seconds)


def video_payload(spec: VideoSpec, model_id: str) -> dict:
    payload = {"prompt": spec.prompt, "duration": duration_value(model_id, spec.duration)}
    if spec.aspect_ratio:
        payload["aspect_ratio"] = spec.aspect_ratio
    if spec.resolution:
        payload["resolution"] = spec.resolution
    if spec.audio:
        payload["generate_audio"] = True
    elif "kling-video/v2.6" in model_id or "kling-video/v3" in model_id or "veo" in model_id:
        payload["generate_audio"] = False  # these default to sound on fal; off unless asked (and paid)
    if spec.image is not None:
        payload["image_url"] = spec.image.data_uri()
    if spec.video is not None:
        payload["video_url"] = spec.video.source_url or spec.video.data_uri()
    return payload


class FalImages:
    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self.queue = FalQueue(upstream)

    async def generate(self, spec: ImageSpec, route: Route) -> list[GeneratedImage]:
        endpoint = image_endpoint(route.upstream_model, bool(spec.inputs))
        result = await self.queue.run(endpoint, image_payload(spec, route.upstream_model), spec.deadline)
        urls = [
            u
            for i in result.get("images") or ()
            if isinstance(i, dict) and isinstance(u := i.get("url"), str) and u
        ]
        files = await asyncio.gather(
            *(http.download(self.upstream, u, deadline=spec.deadline) for u in urls[: spec.n])
        )
        return [GeneratedImage(data, mime) for data, _ in files if (mime := sniff_image_mime(data))]


class FalVideo:
    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self.queue = FalQueue(upstream)

    async def generate(self, spec: VideoSpec, route: Route) -> GeneratedVideo:
        endpoint = video_endpoint(route.upstream_model, spec)
        result = await self.queue.run(endpoint, video_payload(spec, route.upstream_model), spec.deadline)
        video = result.get("video")
        if not isinstance(video, dict) or not video.get("url"):
            raise no_output("video")
        return GeneratedVideo(mime_type=video.get("content_type") or "video/mp4", url=video["url"])
