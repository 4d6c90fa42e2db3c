"""The worker side of long-poll chat jobs (llm.chat_jobs queues them; llm.tasks runs them here):
claim a job, run its completion, settle or release its hold, and fail jobs past their budget.

Guarantee: a job's hold is settled by exactly one worker run (claiming the job is a conditional
update only one caller wins) or released when the job fails or is reaped.
"""

import logging
from datetime import timedelta

from django.utils import timezone

from accounts.keys import Principal
from billing import job_holds, ledger
from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError
from gpuniq_site.logs import request_context
from gpuniq_site.loops import run_isolated

from . import chat, gateway
from .bounds import chat_bound
from .catalog import asnapshot
from .completions import native_reply
from .models import ChatJob
from .providers.base import ChatRequest

log = logging.getLogger("gpuniq.chat_jobs")
JOB_BUDGET_SECONDS = 600
OVERDUE_SECONDS = JOB_BUDGET_SECONDS + 60  # the worker's own budget, and a minute to record its outcome


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
        await run_db(fail, job.pk, {"code": error.code, "message": error.message})
        return
    result = native_reply(done.response, usage, settled, model.slug)
    await run_db(_complete, job.pk, result)


def execute(job_id: str) -> None:
    job = claim(job_id)
    if job is None:
        return
    with request_context(job.request_id):
        try:
            principal = _principal(job)
            run_isolated(lambda: run(job, principal))
        except Exception:
            log.exception("chat job %s crashed", job_id)
            ledger.release(hold_id=job.hold_id, reason="chat job crashed")
            fail(job.pk, {"code": "internal_error", "message": "The job failed; nothing was charged."})


def _complete(job_id: str, result: dict) -> None:
    """running → completed; a job a read or the reaper already ended stays as it is."""
    ChatJob.objects.filter(pk=job_id, status=ChatJob.RUNNING).update(
        status=ChatJob.COMPLETED, result=result, finished_at=timezone.now()
    )


def fail(job_id: str, error: dict) -> bool:
    """Any unfinished job → failed with `error`; False if it had already ended."""
    return bool(
        ChatJob.objects.filter(pk=job_id)
        .exclude(status=ChatJob.COMPLETED)
        .exclude(status=ChatJob.FAILED)
        .update(status=ChatJob.FAILED, error=error, finished_at=timezone.now())
    )


def overdue_cutoff(seconds: int = OVERDUE_SECONDS):
    return timezone.now() - timedelta(seconds=seconds)


def expire(job: ChatJob) -> bool:
    """Fail a job past its budget (its worker died or never came) and release its hold, once."""
    if not fail(
        job.pk, {"code": "upstream_timeout", "message": "The job ran out of time; nothing was charged."}
    ):
        return False
    # failed first: a worker finishing now cannot store (deliver) a result whose hold is gone
    ledger.release(hold_id=job.hold_id, reason="chat job past its budget")
    return True


def reap(budget_seconds: int = OVERDUE_SECONDS) -> int:
    """Fail jobs past their budget (their worker died) and release their holds; release chat-job
    holds whose job row was never written."""
    stale = ChatJob.objects.filter(
        status__in=[ChatJob.PENDING, ChatJob.RUNNING], created_at__lt=overdue_cutoff(budget_seconds)
    )
    count = sum(1 for job in stale if expire(job))
    job_holds.release_unowned(purposes=("chat_job",), owned_hold_ids=ChatJob.objects.values("hold_id"))
    return count
