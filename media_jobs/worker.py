"""Running media jobs on a Celery worker, and reaping the ones whose worker died.

claim: pending → running in one conditional update (one worker wins; a redelivered task is a
no-op). The run has the job's budget (from its creation), beats a heartbeat every few seconds
and ends the row completed (hold still open: the first completion read charges it) or failed
(hold released, nothing charged). The reaper fails jobs past their budget or without a
heartbeat for GPUNIQ_MEDIA_DEAD_WORKER_SECONDS, and releases their holds; any read of such a
job does the same on the spot (job_reads), so no worker or beat has to be alive.

The hold belongs to the job until its completion is charged or the job is discarded (the
generic stale-hold sweep skips job holds): a completion nobody read within the media link
lifetime (GPUNIQ_MEDIA_URL_TTL_SECONDS) is discarded — file deleted, hold released, nothing
delivered and nothing charged.
"""

import asyncio
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from billing import job_holds
from gpuniq_site import shared_state
from gpuniq_site.db import run_db
from gpuniq_site.logs import request_context
from gpuniq_site.loops import run_isolated
from gpuniq_site.errors import ApiError
from llm.catalog import asnapshot

from . import charging, storage
from .models import MediaAsset, MediaJob
from .providers.base import Deadline
from .runners import run_image, run_video

log = logging.getLogger("gpuniq.media.worker")
MARGIN = 5.0  # seconds of the budget kept for recording the outcome


def cache_key(job_id: str) -> str:
    return f"gpuniq:mediajob:{job_id}"


def claim(job_id: str) -> MediaJob | None:
    now = timezone.now()
    if not MediaJob.objects.filter(pk=job_id, status=MediaJob.PENDING).update(
        status=MediaJob.RUNNING, started_at=now, heartbeat_at=now
    ):
        return None
    shared_state.cache_discard(cache_key(job_id))
    return MediaJob.objects.get(pk=job_id)


def deadline_of(job: MediaJob) -> Deadline:
    ends = job.created_at + timedelta(seconds=settings.GPUNIQ_MEDIA_BUDGET_SECONDS)
    return Deadline.after((ends - timezone.now()).total_seconds() - MARGIN)


def execute(job_id: str) -> None:
    job = claim(job_id)
    if job is None:
        return
    with request_context(job.request_id):
        try:
            run_isolated(lambda: run(job))
        except Exception:
            log.exception("media job %s crashed", job_id)
            fail(job.pk, "internal_error", "The job failed; nothing was charged.")
        finally:
            _drop_inputs(job)


async def run(job: MediaJob) -> None:
    model = (await asnapshot()).models.get(job.model)
    beating = asyncio.create_task(_heartbeat(job.pk))
    started = time.perf_counter()
    try:
        if model is None:
            raise ApiError("model_not_found", model=job.model)
        runner = run_image if job.kind == MediaJob.IMAGE else run_video
        async with asyncio.timeout(max(1.0, deadline_of(job).remaining() + MARGIN / 2)):
            outcome = await runner(job, model, deadline_of(job))
    except ApiError as error:
        await run_db(fail, job.pk, error.code, error.message, started)
        return
    except TimeoutError:
        await run_db(
            fail, job.pk, "upstream_timeout", "The job ran out of time; nothing was charged.", started
        )
        return
    finally:
        beating.cancel()
    await run_db(complete, job.pk, outcome)


async def _heartbeat(job_id: str) -> None:
    """Tell the reaper this job's worker is alive (a missed beat or two is harmless)."""
    while True:
        await asyncio.sleep(settings.GPUNIQ_MEDIA_HEARTBEAT_SECONDS)
        try:
            await run_db(
                lambda: MediaJob.objects.filter(pk=job_id, status=MediaJob.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
            )
        except Exception as exc:
            log.warning("media job %s heartbeat failed: %s", job_id, exc)


def complete(job_id: str, outcome: dict) -> bool:
    done = MediaJob.objects.filter(pk=job_id, status=MediaJob.RUNNING).update(
        status=MediaJob.COMPLETED,
        result=outcome["result"],
        route=outcome["route"],
        simulated=outcome["simulated"],
        finished_at=timezone.now(),
    )
    shared_state.cache_discard(cache_key(job_id))
    return bool(done)


def fail(job_id: str, code: str, message: str, started: float | None = None) -> bool:
    """End an active job as failed (once) and log the failed attempt. Its hold is released first,
    so a poll that sees the job failed sees its money back (the ledger's own transactions cannot
    nest in one with the job's row on the embedded default). A job that completes meanwhile is
    charged when read, with a hold of its own (job_reads.charge_once)."""
    latency = int((time.perf_counter() - started) * 1000) if started else 0
    job = MediaJob.objects.filter(pk=job_id, status__in=MediaJob.ACTIVE).first()
    if job is None:
        return False
    charging.release(job.hold_id, f"{job.kind} job {code}")
    if not MediaJob.objects.filter(pk=job_id, status__in=MediaJob.ACTIVE).update(
        status=MediaJob.FAILED, error={"code": code, "message": message}, finished_at=timezone.now()
    ):
        return False
    charging.failed_job_row(job, code, latency)
    shared_state.cache_discard(cache_key(job_id))
    return True


def _drop_inputs(job: MediaJob) -> None:
    for items in (job.config.get("inputs") or {}).values():
        for item in items:
            storage.delete(item["path"])


def _overdue(now) -> Q:
    """Active jobs past their budget, or running without a heartbeat (their worker died)."""
    budget = now - timedelta(seconds=settings.GPUNIQ_MEDIA_BUDGET_SECONDS)
    silent = now - timedelta(seconds=settings.GPUNIQ_MEDIA_DEAD_WORKER_SECONDS)
    return Q(status__in=MediaJob.ACTIVE) & (
        Q(created_at__lt=budget) | Q(status=MediaJob.RUNNING, heartbeat_at__lt=silent)
    )


def _unread_too_long(now) -> Q:
    """Completions nobody read (so nobody paid for) within the media link lifetime."""
    cutoff = now - timedelta(seconds=settings.GPUNIQ_MEDIA_URL_TTL_SECONDS)
    return Q(status=MediaJob.COMPLETED, charged_at__isnull=True, finished_at__lt=cutoff)


def time_out(job: MediaJob) -> bool:
    """Fail one overdue job (once), releasing its hold."""
    if fail(job.pk, "upstream_timeout", "The job did not finish in time; nothing was charged."):
        _drop_inputs(job)
        return True
    return False


def discard(job: MediaJob) -> bool:
    """End a completed, unread, uncharged job (once): nothing delivered, hold released (first, as in
    fail(); a read that charges meanwhile takes a hold of its own), file deleted."""
    charging.release(job.hold_id, f"{job.kind} job discarded unread")
    if not MediaJob.objects.filter(pk=job.pk, status=MediaJob.COMPLETED, charged_at__isnull=True).update(
        status=MediaJob.FAILED,
        finished_at=timezone.now(),
        error={"code": "job_expired", "message": ApiError("job_expired").message},
    ):
        return False
    drop_result(job)
    charging.failed_job_row(job, "job_expired")
    shared_state.cache_delete(cache_key(job.pk))
    return True


def drop_result(job: MediaJob) -> None:
    """Delete an undelivered result: its file and its studio asset rows."""
    MediaAsset.objects.filter(job_id=job.pk).delete()
    if path := (job.result or {}).get("path"):
        storage.delete(path)


def settle_if_due(job: MediaJob, now=None) -> MediaJob:
    """What a read does before rendering: time out an overdue job, discard an expired completion."""
    now = now or timezone.now()
    due = MediaJob.objects.filter(pk=job.pk)
    if job.status in MediaJob.ACTIVE and due.filter(_overdue(now)).exists():
        time_out(job)
    elif job.status == MediaJob.COMPLETED and due.filter(_unread_too_long(now)).exists():
        discard(job)
    else:
        return job
    return MediaJob.objects.get(pk=job.pk)


def reap(now=None) -> int:
    """Fail overdue jobs, discard completions unread past the link lifetime, and release job holds
    whose job row was never written. Returns how many jobs were ended."""
    now = now or timezone.now()
    count = sum(1 for job in MediaJob.objects.filter(_overdue(now)) if time_out(job))
    count += sum(1 for job in MediaJob.objects.filter(_unread_too_long(now)) if discard(job))
    job_holds.release_unowned(
        purposes=("image_job", "video_job"), owned_hold_ids=MediaJob.objects.values("hold_id")
    )
    return count
