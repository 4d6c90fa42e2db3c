"""Long-poll chat jobs: kickoff holds and queues; a worker runs the completion and settles once.

Guarantee: a job's hold is settled by exactly one worker run (claiming the job is a
conditional update only one caller wins) or released when the job fails or is reaped.
"""

import hashlib
import json
import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.keys import Principal
from billing import job_holds, ledger
from gpuniq_site.errors import ApiError
from gpuniq_site.loops import run_isolated

from . import chat, gateway
from .bounds import chat_bound
from .catalog import asnapshot
from .models import ChatJob
from .providers.base import ChatRequest

log = logging.getLogger("gpuniq.chat_jobs")
JOB_BUDGET_SECONDS = 600


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
    from .tasks import run_chat_job

    try:
        run_chat_job.delay(job.pk)
        return True
    except Exception as exc:
        log.error("could not queue chat job %s: %s", job.pk, exc)
        _fail(
            job.pk,
            {"code": "service_unavailable", "message": "The job could not be queued; nothing was charged."},
        )
        ledger.release(hold_id=job.hold_id, reason="chat job not queued")
        return False


def find_job(user_id: int, job_id: str) -> ChatJob:
    job = ChatJob.objects.filter(pk=job_id, user_id=user_id).first()
    if job is None:
        raise ApiError("job_not_found")
    return job


def claim(job_id: str) -> ChatJob | None:
    """pending → running; only one worker wins."""
    if not ChatJob.objects.filter(pk=job_id, status=ChatJob.PENDING).update(
        status=ChatJob.RUNNING, started_at=timezone.now()
    ):
        return None
    return ChatJob.objects.select_related("api_key").get(pk=job_id)


def _principal(job: ChatJob) -> Principal:
    account = ledger.account_for_user(job.user_id)
    return Principal(
        user_id=job.user_id,
        key_id=job.api_key_id,  # type: ignore[arg-type]  # None once the key is deleted: rows take None
        account_id=account.pk,
        rpm=0,
        spend_cap=None,
        allowed_models=(),
        last_used=0.0,
    )


async def run(job: ChatJob, principal: Principal) -> None:
    """Run the completion for a claimed job and record the outcome on the row."""
    from gpuniq_site.db import run_db
    from .completions import native_reply

    body = job.request
    model = (await asnapshot()).models[body["model"]]  # the model the job was priced with
    bound = chat_bound(model, body, stream=False)  # as at kickoff: the providers send its output limit
    request = ChatRequest(
        body={**body, "stream": False},
        slug=body["model"],
        stream=False,
        max_output_tokens=bound.base_output,
        request_id=job.request_id,
        first_byte_timeout=float(JOB_BUDGET_SECONDS),
    )
    prepared = chat.Prepared(principal, model, request, job.hold_id, bound, "chat_job")
    try:
        async with chat.Bill(prepared, sent=True) as bill:
            done = await gateway.complete(request, model)
            usage = done.usage or chat.usage_from_text(prepared, chat.reply_chars(done.response))
            settled = await bill.settle(usage, route=done.route)
    except ApiError as error:  # the bill released the hold
        await run_db(_fail, job.pk, {"code": error.code, "message": error.message})
        return
    result = native_reply(done.response, usage, settled, model.slug)
    await run_db(_complete, job.pk, result)


def execute(job_id: str) -> None:
    job = claim(job_id)
    if job is None:
        return
    try:
        principal = _principal(job)
        run_isolated(lambda: run(job, principal))
    except Exception:
        log.exception("chat job %s crashed", job_id)
        ledger.release(hold_id=job.hold_id, reason="chat job crashed")
        _fail(job.pk, {"code": "internal_error", "message": "The job failed; nothing was charged."})


def _complete(job_id: str, result: dict) -> None:
    """running → completed; a job a read or the reaper already ended stays as it is."""
    ChatJob.objects.filter(pk=job_id, status=ChatJob.RUNNING).update(
        status=ChatJob.COMPLETED, result=result, finished_at=timezone.now()
    )


def _fail(job_id: str, error: dict) -> bool:
    return bool(
        ChatJob.objects.filter(pk=job_id)
        .exclude(status=ChatJob.COMPLETED)
        .exclude(status=ChatJob.FAILED)
        .update(status=ChatJob.FAILED, error=error, finished_at=timezone.now())
    )


OVERDUE_SECONDS = JOB_BUDGET_SECONDS + 60  # the worker's own budget, and a minute to record its outcome


def _overdue_cutoff(seconds: int = OVERDUE_SECONDS):
    return timezone.now() - timedelta(seconds=seconds)


def expire(job: ChatJob) -> bool:
    """Fail a job past its budget (its worker died or never came) and release its hold, once."""
    if not _fail(
        job.pk, {"code": "upstream_timeout", "message": "The job ran out of time; nothing was charged."}
    ):
        return False
    ledger.release(hold_id=job.hold_id, reason="chat job past its budget")
    return True


def read(user_id: int, job_id: str) -> ChatJob:
    """The job as a poll sees it: one past its budget is failed (hold released) on the spot,
    whether or not a worker or the reaper is alive."""
    job = find_job(user_id, job_id)
    if not job.is_terminal and job.created_at < _overdue_cutoff() and expire(job):
        job = find_job(user_id, job_id)
    return job


def reap(budget_seconds: int = OVERDUE_SECONDS) -> int:
    """Fail jobs past their budget (their worker died) and release their holds; release chat-job
    holds whose job row was never written."""
    stale = ChatJob.objects.filter(
        status__in=[ChatJob.PENDING, ChatJob.RUNNING], created_at__lt=_overdue_cutoff(budget_seconds)
    )
    count = sum(1 for job in stale if expire(job))
    job_holds.release_unowned(purposes=("chat_job",), owned_hold_ids=ChatJob.objects.values("hold_id"))
    return count


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
