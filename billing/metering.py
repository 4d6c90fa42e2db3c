"""Usage rows (metering): one per API request or job, paid, refused or failed, written by billing
alone. On PostgreSQL the hot path writes them inside (pg_ledger.SETTLE_WITH_USAGE_SQL) or in the
same round trip as (INSERT_FROM_HOLD_SQL) the settle that closes the request's hold; elsewhere
through the ORM in a thread.
A request refused for money or permission (402, 403) still gets its row, at cost 0 with its
error code, so the user sees it."""

from typing import Any

from django.db.models import Model
from django.utils import timezone

from gpuniq_site.db import run_db

from .models import UsageLog

# The usage row of a settled request, its cost what the hold captured (ledger.aclose(usage=...)).
# Sent in the same round trip as pg_ledger.SETTLE_SQL, it writes only once the hold is closed, so the
# row is written by whichever statement closes the hold. pg_ledger.SETTLE_WITH_USAGE_SQL writes the
# same row inside the settle statement, and pg_ledger.SETTLE_MANY_SQL a batch's rows: keep the three
# in step. Takes row_params() and the settle's params (%(hold)s, %(key)s: pg_ledger.THIS_HOLD).
INSERT_FROM_HOLD_SQL = """
INSERT INTO llm_usagelog (user_id, api_key_id, request_id, endpoint, model, route, prompt_tokens,
                          cached_tokens, completion_tokens, reasoning_tokens, images, video_seconds,
                          cost_usd, latency_ms, ttft_ms, status, error_code, stream, created_at)
SELECT %(user_id)s, %(api_key_id)s, %(request_id)s, %(endpoint)s, %(model)s, %(route)s, %(prompt_tokens)s,
       %(cached_tokens)s, %(completion_tokens)s, %(reasoning_tokens)s, %(images)s, %(video_seconds)s,
       h.captured, %(latency_ms)s, %(ttft_ms)s, %(status)s, %(error_code)s, %(stream)s, %(created_at)s
FROM billing_hold h
WHERE h.id = %(hold)s AND h.idempotency_key = COALESCE(%(key)s, h.idempotency_key) AND h.status <> 'open'
"""
DEFAULTS = {"images": 0, "video_seconds": 0, "ttft_ms": None, "error_code": "", "stream": False, "route": ""}


def row_params(**fields: Any) -> dict[str, Any]:
    """A usage row's columns, defaults filled in and stamped now (what the SQL above takes, but
    cost_usd, which it reads from the hold)."""
    return {**DEFAULTS, **fields, "created_at": timezone.now()}


def write(**fields: Any) -> Model:
    return UsageLog.objects.create(**row_params(**fields))


async def awrite(**fields: Any) -> None:
    """write() from the event loop (the SQLite path and refusals; PostgreSQL writes a paid
    request's row with its settle)."""
    await run_db(write, **fields)
