"""GET of an image or video job: the status, and on the first read of a completion, the charge.

Exactly one reader charges: the conditional update `charged_at IS NULL → now` has one winner,
which settles the hold at the job's price and writes the usage row. Payloads are rendered
without the image bytes and coalesced (media_jobs.coalesce); the base64 is attached per reply
from the stored file, so the shared cache never carries media.
"""

import asyncio
import base64
from decimal import Decimal
from typing import Any

from django.utils import timezone

from accounts.keys import Principal
from billing.models import Hold
from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError

from . import charging, storage
from .coalesce import coalesced
from .jobs import find_job
from .models import MediaJob
from .worker import cache_key, drop_result, settle_if_due


def charge_once(job: MediaJob) -> MediaJob:
    """Charge a completed job if nobody has; returns the row as it now stands.
    Guarantee: the result is delivered only if its price was charged (the job's hold is kept
    for it; if that hold was closed anyway, a late charge is tried, and failing that the job
    ends failed and nothing is delivered)."""
    won = MediaJob.objects.filter(pk=job.pk, status=MediaJob.COMPLETED, charged_at__isnull=True).update(
        charged_at=timezone.now(), cost_usd=job.estimated_cost_usd
    )
    if not won:
        return MediaJob.objects.get(pk=job.pk)
    reason = f"{job.model} {job.kind} job {job.pk}"
    charged = charging.settle(job.hold_id, job.estimated_cost_usd, reason)
    if charged is None:  # the hold was closed before anyone read the result (not by this job)
        account_id = Hold.objects.get(pk=job.hold_id).account_id
        charged = charging.late_charge(
            account_id, job.estimated_cost_usd, f"media_late:{job.pk}", reason, api_key_id=job.api_key_id
        )
    if charged != job.estimated_cost_usd:  # late_charge takes all of it or nothing
        return _withhold(job)
    finished = job.finished_at or timezone.now()
    charging.usage_row(
        user_id=job.user_id,
        key_id=job.api_key_id,
        request_id=job.request_id,
        endpoint=f"{job.kind}_job",
        model=job.model,
        route=job.route,
        images=1 if job.kind == MediaJob.IMAGE else 0,
        video_seconds=int(job.config.get("duration") or 0) if job.kind == MediaJob.VIDEO else 0,
        cost=charged,
        latency_ms=int((finished - job.created_at).total_seconds() * 1000),
    )
    return MediaJob.objects.get(pk=job.pk)


def _withhold(job: MediaJob) -> MediaJob:
    """A completion that could not be paid for is not delivered: the job ends failed, cost 0."""
    MediaJob.objects.filter(pk=job.pk).update(
        status=MediaJob.FAILED,
        cost_usd=Decimal(0),
        error={
            "code": "insufficient_balance",
            "message": "The result could not be paid for; nothing was charged.",
        },
    )
    drop_result(job)
    charging.failed_job_row(job, "insufficient_balance")
    return MediaJob.objects.get(pk=job.pk)


def _load(user_id: int, job_id: str, kind: str) -> dict:
    job = settle_if_due(find_job(user_id, job_id, kind))
    if job.status == MediaJob.COMPLETED and job.charged_at is None:
        job = charge_once(job)
    return render(job)


def _money(value) -> float | None:
    return float(value) if value is not None else None


def render(job: MediaJob) -> dict:
    """The public view of a job (no route identifiers; image bytes attached later)."""
    data: dict[str, Any] = {
        "job_id": job.pk,
        "status": job.status,
        "model": job.model,
        "estimated_cost_usd": _money(job.estimated_cost_usd),
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if job.kind == MediaJob.VIDEO:
        data["config"] = {k: v for k, v in job.config.items() if k != "inputs"}
    if job.status == MediaJob.FAILED:
        data["error"] = job.error
    if job.status == MediaJob.COMPLETED:
        result = job.result or {}
        media = {"url": storage.signed_url(result["path"]), "mime_type": result.get("mime_type")}
        data["image" if job.kind == MediaJob.IMAGE else "video"] = media
        data["cost_usd"] = _money(job.cost_usd if job.cost_usd is not None else Decimal(0))
        data["balance_usd"] = _money(charging.available_for_user(job.user_id))
        data["_path"] = result["path"]
        if job.simulated:
            data["simulated"] = True
    return data


async def read(principal: Principal, job_id: str, kind: str) -> tuple[dict, bool]:
    """(payload, coalesced?) for a poll of `job_id` by `principal`."""
    if not job_id.startswith(MediaJob.PREFIX[kind]):
        raise ApiError("job_not_found")
    data, shared = await coalesced(
        cache_key(job_id), principal.user_id, lambda: run_db(_load, principal.user_id, job_id, kind)
    )
    data = dict(data)
    path = data.pop("_path", None)
    if path and kind == MediaJob.IMAGE and data.get("image"):
        raw = await asyncio.to_thread(storage.read, path)
        data["image"] = {"b64_json": base64.b64encode(raw).decode(), **data["image"]}
    return data, shared
