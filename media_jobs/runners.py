"""What a worker does for one job: rebuild the spec from the row and the stored inputs, run the
route chain, keep the output as a file (MediaAsset), and describe the result for the row.
Downloads happen inside the chain, so a vendor whose file cannot be fetched falls back too."""

import asyncio

from django.utils import timezone

from gpuniq_site.db import run_db
from llm.catalog import ModelInfo

from . import chain, routes, storage
from .imaging import reencode
from .models import MediaAsset, MediaJob
from .providers import http
from .providers.base import Deadline, GeneratedVideo, ImageSpec, InputMedia, Route, UpstreamError, VideoSpec
from .safe_fetch import sniff_video_mime
from .validation import size_of


def _inputs(job: MediaJob, name: str) -> list[InputMedia]:
    items = (job.config.get("inputs") or {}).get(name) or []
    return [InputMedia(storage.read(i["path"]), i["mime_type"], i.get("source_url") or "") for i in items]


def _asset(job: MediaJob, path: str, mime: str, size: int, simulated: bool) -> MediaAsset:
    return MediaAsset.objects.create(
        user_id=job.user_id,
        job_id=job.pk,
        kind=job.kind,
        model=job.model,
        path=path,
        mime_type=mime,
        size_bytes=size,
        prompt=job.request.get("prompt", ""),
        request_id=job.request_id,
        simulated=simulated,
    )


async def run_image(job: MediaJob, model: ModelInfo, deadline: Deadline) -> dict:
    request = job.request
    spec = ImageSpec(
        slug=model.slug,
        prompt=request["prompt"],
        n=1,
        size=size_of(request.get("size")),
        quality=request.get("quality"),
        inputs=await asyncio.to_thread(_inputs, job, "images"),
        request_id=job.request_id,
        deadline=deadline,
    )
    delivered = await chain.generate_images(spec, model)
    data, mime = await asyncio.to_thread(reencode, delivered.images[0].data, request.get("output_format"))
    path = await asyncio.to_thread(storage.save, "generated", "image", data, mime)
    asset = await run_db(_asset, job, path, mime, len(data), delivered.simulated)
    return {
        "result": {"asset_id": asset.pk, "path": path, "mime_type": mime},
        "route": str(delivered.route),
        "simulated": delivered.simulated,
    }


async def run_video(job: MediaJob, model: ModelInfo, deadline: Deadline) -> dict:
    config = job.config
    images, clips = (
        await asyncio.to_thread(_inputs, job, "image"),
        await asyncio.to_thread(_inputs, job, "video"),
    )
    spec = VideoSpec(
        slug=model.slug,
        prompt=job.request["prompt"],
        duration=config["duration"],
        aspect_ratio=config.get("aspect_ratio"),
        resolution=config.get("resolution"),
        audio=bool(config.get("audio")),
        mode=config.get("mode"),
        task=config["task"],
        image=images[0] if images else None,
        video=clips[0] if clips else None,
        request_id=job.request_id,
        deadline=deadline,
    )
    kept: dict = {}

    async def keep(video: GeneratedVideo, route: Route) -> None:
        kept.update(await _store_video(video, route, deadline))

    delivered = await chain.generate_video(spec, model, keep)
    asset = await run_db(_asset, job, kept["path"], kept["mime_type"], kept["size"], delivered.simulated)
    return {
        "result": {
            "asset_id": asset.pk,
            "path": kept["path"],
            "mime_type": kept["mime_type"],
            "stored_at": timezone.now().isoformat(),
        },
        "route": str(delivered.route),
        "simulated": delivered.simulated,
    }


async def _store_video(video: GeneratedVideo, route: Route, deadline: Deadline) -> dict:
    """Write the video under MEDIA_ROOT (bytes, or a download of the vendor's URL); check it is one."""
    if video.data is not None:
        mime = sniff_video_mime(video.data[:64])
        if mime is None:
            raise UpstreamError("malformed", "the provider's file is not a video")
        path = await asyncio.to_thread(storage.save, "generated", "video", video.data, mime)
        return {"path": path, "mime_type": mime, "size": len(video.data)}
    if video.url is None:  # the chain takes no video with neither bytes nor a URL
        raise UpstreamError("no_output", "the provider returned no video")
    relative, target = storage.open_for_write("generated", "video", video.mime_type or "video/mp4")
    size = await http.download_to(
        routes.live_upstream(route.provider),
        video.url,
        target,
        deadline=deadline,
        headers=video.headers or None,
    )
    with open(target, "rb") as fh:
        head = fh.read(64)
    if sniff_video_mime(head) is None:
        target.unlink(missing_ok=True)
        raise UpstreamError("no_output", "the provider's file is not a video")
    return {"path": relative, "mime_type": sniff_video_mime(head), "size": size}
