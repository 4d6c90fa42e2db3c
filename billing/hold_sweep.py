"""Open holds, found without an index on their status.

Closing a hold changes its status, captured amount and closing time. An index on any of those
columns would make that update write a new entry in every index of the table; with none, the
update stays on its page (HOT) and writes no index entry at all. That is most of PostgreSQL's
work per paid request that can go (docs/performance.md).

So open holds are found from marks. A sweep's SweepMark says that every hold of its kind with an
id below `below` is closed: the sweep reads only the holds from there on (by the primary key; a
job's holds by the small `hold_job` index), offers each open one to its caller, and moves the mark
up to the oldest hold left open.

The mark must not pass a hold the sweep could not see: one whose statement had drawn its id but
not committed when the sweep read. So it moves up to at most the highest id there was when the
previous sweep began, and only when no transaction that began before then still runs: every hold
with such an id has committed (or rolled back) since, and this sweep saw it. On SQLite writes are
serialized, so nothing uncommitted can sit below a committed id.

Kinds (billing.models.STALE_SWEEP and job_sweep): "stale", every hold but a job's
(billing.ledger.release_stale_holds), and "job:<purpose>" (billing.job_holds.release_unowned).
Their marks together bound all open holds: that is how `Hold.objects.count_open()` counts them.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import F, Max
from django.db.models.functions import Greatest
from django.utils import timezone

from .models import Hold, SweepMark

FIELDS = ("pk", "account__user_id", "api_key_id", "request_id", "purpose", "created_at")
OpenRow = dict[str, Any]  # FIELDS of one open hold


def sweep(kind: str, close: Callable[[list[OpenRow]], list[int]]) -> None:
    """Hand the open holds of `kind` from the mark on, oldest first, to `close`, which closes what
    it should and answers the ids of those it leaves open; then move the mark up to the oldest of
    those. If `close` raises, the mark stays where it was."""
    mark, _ = SweepMark.objects.get_or_create(name=kind)
    top, began = _top_and_now()
    seen = mark.seen_top + 1 if _all_committed_since(mark.seen_at) else mark.below
    rows = list(Hold.objects.open_of_sweep(kind, mark.below).order_by("pk").values(*FIELDS))
    below = min([*close(rows), seen])
    SweepMark.objects.filter(name=kind).update(below=Greatest(F("below"), below), seen_top=top, seen_at=began)


def _top_and_now() -> tuple[int, datetime]:
    """The highest hold id, and a moment after it was read, by the database's clock: every hold
    with an id up to it drew its id, so began its transaction, before that moment."""
    if connection.vendor != "postgresql":
        return Hold.objects.aggregate(top=Max("id"))["top"] or 0, timezone.now()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0), clock_timestamp() FROM billing_hold")
        top, now = cursor.fetchone()
        return top, now


def _all_committed_since(moment: datetime | None) -> bool:
    """Whether every transaction that began before `moment` has ended (never, for no moment)."""
    if moment is None:
        return False
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND xact_start < %s)",
            [moment],
        )
        return bool(cursor.fetchone()[0])
