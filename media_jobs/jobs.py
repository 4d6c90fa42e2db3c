"""Kickoff of image and video jobs: validate, fetch user inputs, hold the estimate, record the
row and queue it after commit. Answers in well under a second; the worker does the rest.

Idempotency-Key: the same key with the same body returns the first job (no second hold); with
a different body it is a 409. A race between two identical kickoffs ends with one row, and the
loser's hold released.
"""

import hashlib
import json
import logging
from decimal import Decimal

from django.db import IntegrityError, transaction

from accounts.keys import Principal
from billing.pricing import image_cost
from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError
from gpuniq_site.ids import could_be_id

from . import charging, price_covers, storage
from .images import requested_size, resolve_model
from .inputs import fetch, fetch_images
from .models import MediaJob, new_job_id
from .providers.base import InputMedia
from .validation import check_image_job, parse_image_request, slug_of
from .video_options import resolve

log = logging.getLogger("gpuniq.media.jobs")


def request_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _inline(value):
    """Data URIs and bare base64 are stored as files, not in the request JSON."""
    if isinstance(value, str) and not value.startswith("https://"):
        return "(inline data)"
    return value


def find_by_key(user_id: int, key: str, digest: str) -> MediaJob | None:
    if not key:
        return None
    job = MediaJob.objects.filter(user_id=user_id, idempotency_key=key).first()
    if job is not None and job.request_hash != digest:
        raise ApiError("idempotency_conflict", meta={"job_id": job.pk})
    return job


def find_job(user_id: int, job_id: str, kind: str) -> MediaJob:
    if not could_be_id(job_id, prefix=MediaJob.PREFIX[kind], max_length=32):
        raise ApiError("job_not_found")
    job = MediaJob.objects.filter(pk=job_id, user_id=user_id, kind=kind).first()
    if job is None:
        raise ApiError("job_not_found")
    return job


def _save_input(kind: str, media: InputMedia) -> dict:
    path = storage.save("inputs", kind, media.data, media.mime_type)
    return {"path": path, "mime_type": media.mime_type, "source_url": media.source_url}


def _create(
    principal: Principal, job: MediaJob, inputs: dict[str, list[InputMedia]], on_record=None
) -> MediaJob:
    """Hold, store the inputs, insert the row (and whatever `on_record(job)` writes, in the same
    transaction: a chat's image turn), queue it after commit."""
    job.id = new_job_id(job.kind)  # known before the insert: the hold is keyed by it
    job.hold_id = charging.hold(
        principal,
        job.estimated_cost_usd,
        purpose=f"{job.kind}_job",
        request_id=job.request_id,
        key=f"{job.kind}_job:{job.id}",
    )
    saved: dict[str, list[dict]] = {}
    queued: dict[str, bool] = {}
    try:
        for name, items in inputs.items():
            if items:
                saved[name] = [_save_input(job.kind, m) for m in items]
        job.config = {**job.config, "inputs": saved}
        with transaction.atomic():
            job.save(force_insert=True)
            if on_record is not None:
                on_record(job)
            transaction.on_commit(lambda: queued.update(ok=_enqueue(job.pk)))
    except IntegrityError:
        _discard(job, saved, "duplicate idempotency key")
        existing = find_by_key(principal.user_id, job.idempotency_key, job.request_hash)
        if existing is None:
            raise
        return existing
    except Exception:
        _discard(job, saved, "job not recorded")
        raise
    if queued.get("ok") is False:
        raise ApiError(
            "service_unavailable",
            reason="The job could not be queued; nothing was charged.",
            meta={"job_id": job.pk},
        )
    return job


def _discard(job: MediaJob, saved: dict, reason: str) -> None:
    """Undo a kickoff that did not become a job: release its hold, delete its input files."""
    charging.release(job.hold_id, reason)
    for item in (i for items in saved.values() for i in items):
        storage.delete(item["path"])


def _enqueue(job_id: str) -> bool:
    """Queue the job; if the broker refuses, fail it now (hold released) rather than at the reaper.
    False tells the kickoff to answer 503 service_unavailable."""
    from .tasks import run_media_job
    from .worker import fail

    try:
        run_media_job.delay(job_id)
        return True
    except Exception as exc:
        log.error("could not queue media job %s: %s", job_id, exc)
        fail(job_id, "service_unavailable", "The job could not be queued; nothing was charged.")
        return False


def _new(
    principal: Principal,
    kind: str,
    slug: str,
    request: dict,
    config: dict,
    estimate,
    request_id: str,
    key: str,
    digest: str,
) -> MediaJob:
    return MediaJob(
        kind=kind,
        user_id=principal.user_id,
        api_key_id=principal.key_id,
        model=slug,
        request=request,
        config=config,
        hold_id=0,
        request_id=request_id,
        idempotency_key=key,
        request_hash=digest,
        estimated_cost_usd=estimate,
    )


async def start_image_job(
    principal: Principal, body: dict, *, request_id: str, key: str, on_record=None
) -> MediaJob:
    """`on_record(job)`: called inside the transaction that inserts a new job (not on a replay)."""
    req = parse_image_request(body)
    model = await resolve_model(req.slug, principal, "image", endpoint="image_job")
    check_image_job(model, req)
    req = price_covers.bound(model, req)  # before any hold or vendor call
    digest = request_hash(body)
    existing = await run_db(find_by_key, principal.user_id, key, digest)
    if existing is not None:
        return existing
    inputs = await fetch_images(req.input_images)
    size = requested_size(req)
    request = {
        "model": req.slug,
        "prompt": req.prompt,
        "n": 1,
        "quality": req.quality,
        "output_format": req.output_format,
        "size": f"{size[0]}x{size[1]}" if size else None,
    }
    job = _new(
        principal,
        MediaJob.IMAGE,
        req.slug,
        request,
        {"output_format": req.output_format},
        image_cost(model.per_image or Decimal(0), 1),
        request_id,
        key,
        digest,
    )
    return await run_db(_create, principal, job, {"images": inputs}, on_record)


async def start_video_job(principal: Principal, body: dict, *, request_id: str, key: str) -> MediaJob:
    model = await resolve_model(slug_of(body), principal, "video", endpoint="video_job")
    video = resolve(model, body)
    digest = request_hash(body)
    existing = await run_db(find_by_key, principal.user_id, key, digest)
    if existing is not None:
        return existing
    image = await fetch(video.image_url, field="image_url", kind="image") if video.image_url else None
    clip = await fetch(video.video_url, field="video_url", kind="video") if video.video_url else None
    request = {
        "model": model.slug,
        "prompt": video.prompt,
        "image_url": _inline(video.image_url),
        "video_url": _inline(video.video_url),
    }
    job = _new(
        principal,
        MediaJob.VIDEO,
        model.slug,
        request,
        video.config(),
        video.cost(model),
        request_id,
        key,
        digest,
    )
    return await run_db(
        _create, principal, job, {"image": [image] if image else [], "video": [clip] if clip else []}
    )
