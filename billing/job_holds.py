"""Holds that belong to a job (Hold.JOB_PURPOSES).

A job's hold is closed by the job alone: settled when its completion is charged, released when
it fails, is reaped or is discarded. The generic stale-hold sweep skips these holds, so a finished
job that nobody has read yet still has its money reserved when the read comes. What is left is
a hold whose job row was never written (the kickoff died between the hold and the insert): the
job apps call `release_unowned` from their reapers with the hold ids their rows still own.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from . import hold_sweep, ledger
from .models import Hold, job_sweep


def release_unowned(
    *, purposes: tuple[str, ...], owned_hold_ids: QuerySet[Any], older_than_seconds: int | None = None
) -> int:
    """Release open holds of `purposes` older than the hold timeout that no job row owns
    (`owned_hold_ids`: a values_list/queryset of the hold ids the job table references).
    Guarantee: a hold some job row references is never released here."""
    seconds = settings.GPUNIQ_HOLD_TIMEOUT_SECONDS if older_than_seconds is None else older_than_seconds
    cutoff = timezone.now() - timedelta(seconds=seconds)
    released = 0

    def close(rows: list[hold_sweep.OpenRow]) -> list[int]:
        nonlocal released
        ids = [row["pk"] for row in rows]
        owned = set(
            Hold.objects.filter(pk__in=ids).filter(pk__in=owned_hold_ids).values_list("pk", flat=True)
        )
        kept = []  # a hold whose job row may still come, or whose job owns it, stays open
        for row in rows:
            if row["created_at"] >= cutoff or row["pk"] in owned:
                kept.append(row["pk"])
            else:
                released += ledger.release(hold_id=row["pk"], reason="job hold without a job")
        return kept

    for purpose in purposes:
        hold_sweep.sweep(job_sweep(purpose), close)
    return released
