"""Image generation (sync), image and video jobs, and signed media downloads."""

import asyncio
import re
import time

from django.http import StreamingHttpResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.guard import key_required
from gpuniq_site.errors import ApiError
from gpuniq_site.responses import json_response, native_ok
from llm.validation import parse_body

from . import images, job_reads, jobs, storage
from .models import MediaJob

CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")  # a longer offset is no file's: ignored


def _simulated(flag: bool) -> dict:
    return {"x-gpuniq-simulated": "true"} if flag else {}


@require_POST
@key_required
async def openai_images_generations(request):
    outcome = await images.generate(
        request.principal, parse_body(request.body), request_id=request.request_id
    )
    body = {"created": int(time.time()), "data": outcome.items, "output_format": outcome.output_format}
    if outcome.size:
        body["size"] = outcome.size
    headers = {"x-gpuniq-cost-usd": str(outcome.cost), **_simulated(outcome.simulated)}
    return json_response(body, headers=headers)


@require_POST
@key_required
async def native_images_generations(request):
    body = parse_body(request.body)
    outcome = await images.generate(request.principal, body, request_id=request.request_id)
    data = {
        "created": int(time.time()),
        "model": body.get("model"),
        "data": outcome.items,
        "output_format": outcome.output_format,
        "size": outcome.size,
        "images_requested": outcome.requested,
        "images_delivered": len(outcome.items),
        "cost_usd": float(outcome.cost),
        "balance_usd": float(outcome.balance),
    }
    if outcome.simulated:
        data["simulated"] = True
    return native_ok(request, data, headers=_simulated(outcome.simulated))


def _idempotency_key(request) -> str:
    return request.headers.get("Idempotency-Key", "").strip()[:200]


@require_POST
@key_required
async def create_image_job(request):
    job = await jobs.start_image_job(
        request.principal,
        parse_body(request.body),
        request_id=request.request_id,
        key=_idempotency_key(request),
    )
    request.metric_model = job.model
    return native_ok(request, _kickoff(job), status=202)


@require_POST
@key_required
async def create_video_job(request):
    job = await jobs.start_video_job(
        request.principal,
        parse_body(request.body),
        request_id=request.request_id,
        key=_idempotency_key(request),
    )
    request.metric_model = job.model
    return native_ok(request, _kickoff(job), status=202)


def _kickoff(job: MediaJob) -> dict:
    data = {
        "job_id": job.pk,
        "status": job.status,
        "model": job.model,
        "estimated_cost_usd": float(job.estimated_cost_usd),
    }
    if job.kind == MediaJob.VIDEO:
        data["config"] = {k: v for k, v in job.config.items() if k != "inputs"}
    return data


async def _job(request, job_id: str, kind: str):
    data, shared = await job_reads.read(request.principal, job_id, kind)
    headers = {"x-gpuniq-coalesced": "true"} if shared else {}
    return native_ok(request, data, headers={**headers, **_simulated(bool(data.get("simulated")))})


@require_GET
@key_required
async def get_image_job(request, job_id: str):
    return await _job(request, job_id, MediaJob.IMAGE)


@require_GET
@key_required
async def get_video_job(request, job_id: str):
    return await _job(request, job_id, MediaJob.VIDEO)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b` / `bytes=a-` / `bytes=-n` range (video players seek with these), else None."""
    match = _RANGE.match(header or "")
    if not match or size == 0:
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last or 0)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    return (start, end) if start <= end < size else None


@require_http_methods(["GET", "HEAD"])
async def media_file(request, token: str):
    """A generated file behind a signed, expiring link (no API key: the link is the credential)."""
    try:
        path = await asyncio.to_thread(storage.unsign, token)
    except storage.BadLink:
        raise ApiError("media_link_invalid") from None
    size = path.stat().st_size
    start, end = _byte_range(request.headers.get("Range", ""), size) or (0, size - 1)

    async def chunks():
        with open(path, "rb") as fh:
            fh.seek(start)
            left = end - start + 1
            while left > 0 and (block := await asyncio.to_thread(fh.read, min(CHUNK, left))):
                left -= len(block)
                yield block

    async def nothing():
        return
        yield

    partial = (start, end) != (0, size - 1)
    response = StreamingHttpResponse(
        chunks() if request.method == "GET" else nothing(),
        content_type=storage.mime_of(path.name),
        status=206 if partial else 200,
    )
    response["Content-Length"] = str(max(0, end - start + 1))
    response["Accept-Ranges"] = "bytes"
    if partial:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Cache-Control"] = "private, max-age=3600"
    if request.GET.get("name"):  # the dashboard's download links name the file after its prompt and model
        response["Content-Disposition"] = (
            f'attachment; filename="{storage.safe_download_name(request.GET["name"], path)}"'
        )
    return response
