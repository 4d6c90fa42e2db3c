from celery import shared_task
from django.conf import settings

from .ledger import release_stale_holds


@shared_task(name="billing.release_stale_holds")
def release_stale_holds_task() -> int:
    return release_stale_holds(older_than_seconds=settings.GPUNIQ_HOLD_TIMEOUT_SECONDS)
