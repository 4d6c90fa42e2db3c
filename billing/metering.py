"""Usage rows (metering): one per API request or job, paid, refused or failed, written by billing
alone. On PostgreSQL the hot path writes them inside (or in the same round trip as) the settle
that closes the request's hold (INSERT_FROM_HOLD_*); elsewhere through the ORM in a thread.
A request refused for money or permission (402, 403) still gets its row, at cost 0 with its
error code, so the user sees it."""

from typing import Any

from django.db.models import Model
from django.utils import timezone

from gpuniq_site.db import run_db

from .models import UsageLog

COLUMNS = (
    "user_id",
    "api_key_id",
    "request_id",
    "endpoint",
    "model",
    "route",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "images",
    "video_seconds",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "status",
    "error_code",
    "stream",
    "created_at",
)

# The same row with its cost read from the hold its settle closed (billing.ledger.aclose(also=...)):
# as a CTE inside the settle statement itself (the hold it closed is `h`), or as a statement of
# its own sent in the same round trip. Either writes only once the hold is closed: a settle that
# did not happen leaves no row, and whichever statement closes the hold later writes it.
_FROM_HOLD = f"INSERT INTO llm_usagelog ({', '.join(COLUMNS)}) SELECT " + ", ".join(
    "h.captured" if c == "cost_usd" else f"%({c})s" for c in COLUMNS
)
INSERT_FROM_HOLD_CTE = _FROM_HOLD + " FROM h"
INSERT_FROM_HOLD_SQL = _FROM_HOLD + " FROM billing_hold h WHERE h.id = %(hold_id)s AND h.status <> 'open'"
DEFAULTS = {"images": 0, "video_seconds": 0, "ttft_ms": None, "error_code": "", "stream": False, "route": ""}


def row_params(**fields: Any) -> dict[str, Any]:
    """A usage row's columns, defaults filled in and stamped now (what the SQL above takes)."""
    return {**DEFAULTS, **fields, "created_at": timezone.now()}


def write(**fields: Any) -> Model:
    return UsageLog.objects.create(**row_params(**fields))


async def awrite(**fields: Any) -> None:
    """write() from the event loop (the SQLite path and refusals; PostgreSQL writes a paid
    request's row with its settle)."""
    await run_db(write, **fields)
