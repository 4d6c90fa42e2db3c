"""Long-poll chat jobs: kickoff holds and queues; a worker runs the completion and settles once
(llm.chat_worker, through llm.tasks); a poll reads the row.

Guarantee: a job's hold is settled by exactly one worker run (claiming the job is a
conditional update only one caller wins) or released when the job fails or is reaped.
"""

import hashlib
import json
import logging

from django.db import IntegrityError, transaction

from billing import ledger
from gpuniq_site.errors import ApiError
from gpuniq_site.ids import could_be_id

from . import chat
from .chat_worker import expire, fail, overdue_cutoff
from .models import ChatJob
from .tasks import run_chat_job

log = logging.getLogger("gpuniq.chat_jobs")


def _digest(request: dict) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def stored_request(body: dict, default_model: str) -> dict:
    """The request as a job stores it (chat.prepare's body: the model slug filled in)."""
    return {**body, "model": body.get("model", default_model)}


def replay(user_id: int, idempotency_key: str, request: dict) -> ChatJob | None:
    """The job an earlier kickoff with this Idempotency-Key made, if its request was the same;
    409 idempotency_conflict if it was not. None when the key is new (or empty)."""
    if not idempotency_key:
        return None
    job = ChatJob.objects.filter(user_id=user_id, idempotency_key=idempotency_key).first()
    if job is not None and _digest(job.request) != _digest(json.loads(json.dumps(request))):
        raise ApiError("idempotency_conflict", meta={"job_id": job.pk})
    return job


def create_job(prepared: chat.Prepared, idempotency_key: str) -> ChatJob:
    """Record the job and queue it after commit. Same Idempotency-Key (a kickoff that raced this
    one) → the first job, and the new hold is released (it would otherwise be charged twice); a
    different body under that key is a 409. A broker that refuses the job: the job is failed, its
    hold released, and the caller gets 503 service_unavailable."""

    principal = prepared.principal
    queued: dict[str, bool] = {}
    try:
        with transaction.atomic():
            job = ChatJob.objects.create(
                user_id=principal.user_id,
                api_key_id=principal.key_id,
                request=prepared.request.body,
                hold_id=prepared.hold_id,
                request_id=prepared.request.request_id,
                idempotency_key=idempotency_key,
                prompt_estimate=prepared.bound.prompt_tokens,
            )
            transaction.on_commit(lambda: queued.update(ok=_enqueue(job)))
    except IntegrityError:
        ledger.release(hold_id=prepared.hold_id, reason="duplicate idempotency key")
        existing = replay(principal.user_id, idempotency_key, prepared.request.body)
        if existing is None:  # the violation was not this key's: there is no job to return
            raise
        return existing
    if queued.get("ok") is False:
        raise ApiError(
            "service_unavailable",
            reason="The job could not be queued; nothing was charged.",
            meta={"job_id": job.pk},
        )
    return job


def _enqueue(job: ChatJob) -> bool:
    """Queue the job; if the broker refuses, fail it now and release its hold (not at the reaper)."""
    try:
        run_chat_job.delay(job.pk)
        return True
    except Exception as exc:
        log.error("could not queue chat job %s: %s", job.pk, exc)
        fail(
            job.pk,
            {"code": "service_unavailable", "message": "The job could not be queued; nothing was charged."},
        )
        ledger.release(hold_id=job.hold_id, reason="chat job not queued")
        return False


def find_job(user_id: int, job_id: str) -> ChatJob:
    if not could_be_id(job_id, prefix="cjob_", max_length=32):
        raise ApiError("job_not_found")
    job = ChatJob.objects.filter(pk=job_id, user_id=user_id).first()
    if job is None:
        raise ApiError("job_not_found")
    return job


def read(user_id: int, job_id: str) -> ChatJob:
    """The job as a poll sees it: one past its budget is failed (hold released) on the spot,
    whether or not a worker or the reaper is alive."""
    job = find_job(user_id, job_id)
    if not job.is_terminal and job.created_at < overdue_cutoff() and expire(job):
        job = find_job(user_id, job_id)
    return job


def payload(job: ChatJob) -> dict:
    data = {
        "job_id": job.pk,
        "status": job.status,
        "model": job.request.get("model"),
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
    if job.status == ChatJob.COMPLETED:
        data["result"] = job.result
        result = job.result or {}
        data.update({k: result[k] for k in ("content", "cost_usd", "balance_usd") if k in result})
    if job.status == ChatJob.FAILED:
        data["error"] = job.error
    return data
