"""POST /v1/llm/chat/jobs and GET /v1/llm/chat/jobs/{id}?wait=N (long poll, N ≤ 30 s)."""

import asyncio
import time

from django.views.decorators.http import require_GET, require_POST

from accounts.guard import key_required
from gpuniq_site.db import run_db
from gpuniq_site.errors import ApiError
from gpuniq_site.responses import native_ok

from .. import chat, chat_jobs
from ..catalog import DEFAULT_CHAT_MODEL
from ..validation import parse_body

MAX_WAIT = 30.0
POLL_EVERY = 0.25


@require_POST
@key_required
async def create_chat_job(request):
    body = parse_body(request.body)
    body["stream"] = False  # the worker collects the whole reply; long outputs are the point here
    key = request.headers.get("Idempotency-Key", "").strip()[:200]
    job = await run_db(
        chat_jobs.replay, request.principal.user_id, key, chat_jobs.stored_request(body, DEFAULT_CHAT_MODEL)
    )
    if job is None:  # a new key: hold and queue
        prepared = await chat.prepare(
            request.principal,
            body,
            request_id=request.request_id,
            endpoint="chat_job",
            default_model=DEFAULT_CHAT_MODEL,
            long_output_ok=True,
        )
        request.metric_model = prepared.model.slug
        job = await run_db(chat_jobs.create_job, prepared, key)
    return native_ok(request, chat_jobs.payload(job), status=202)


def _wait_seconds(raw: str | None) -> float:
    if raw in (None, ""):
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ApiError("invalid_parameter", field="wait", reason="must be a number of seconds") from None
    if not 0 <= value <= MAX_WAIT:
        raise ApiError("invalid_parameter", field="wait", reason=f"must be between 0 and {MAX_WAIT:g}")
    return value


@require_GET
@key_required
async def get_chat_job(request, job_id: str):
    deadline = time.monotonic() + _wait_seconds(request.GET.get("wait"))
    while True:
        job = await run_db(chat_jobs.read, request.principal.user_id, job_id)
        if job.is_terminal or time.monotonic() >= deadline:
            return native_ok(request, chat_jobs.payload(job))
        await asyncio.sleep(POLL_EVERY)
