"""Record a YooKassa or BTCPay event under (rail, event id) before handling it, then apply it once.

The unique (rail, event id) row, not an exists() check, stops a duplicate delivery. An event whose
handler found nothing to do yet ("ignored": say, a notification that arrived before the vendor's API
agreed with it) is handled again on its next delivery; only a processed one is a duplicate. Every
money move a handler makes is keyed in the ledger, so running it twice is safe.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .models import PaymentEvent

log = logging.getLogger("gpuniq.payments")


def receive(
    *,
    rail: str,
    event_id: str,
    type_: str,
    object_id: str,
    payload: dict[str, Any],
    handle: Callable[[], str],
) -> str:
    """Returns "processed", "ignored" or "duplicate"; raises when handling failed (the vendor retries)."""
    row, created = _record(rail, event_id, type_, object_id, payload)
    if not created and row.status == PaymentEvent.PROCESSED:
        return "duplicate"
    try:
        note = handle()
    except Exception as exc:
        PaymentEvent.objects.filter(pk=row.pk).update(status=PaymentEvent.FAILED, error=repr(exc)[:2000])
        raise
    status = PaymentEvent.IGNORED if note else PaymentEvent.PROCESSED
    PaymentEvent.objects.filter(pk=row.pk).update(
        status=status, error=note or "", processed_at=timezone.now()
    )
    return status


def _record(
    rail: str, event_id: str, type_: str, object_id: str, payload: dict[str, Any]
) -> tuple[PaymentEvent, bool]:
    try:
        with transaction.atomic():
            return PaymentEvent.objects.create(
                rail=rail,
                event_id=event_id[:255],
                type=type_[:100],
                object_id=object_id[:255],
                payload=payload,
            ), True
    except IntegrityError:
        return PaymentEvent.objects.get(rail=rail, event_id=event_id[:255]), False
