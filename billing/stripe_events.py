"""Handle verified Stripe events: record each one first, then credit, fail or refund top-ups.

Exactly-once, whatever Stripe's delivery order or retries:
- the event row's unique event id stops a duplicate (a replayed event does nothing);
- a top-up is credited through ledger.post keyed "stripe-topup:<session id>", so
  `checkout.session.completed` and `...async_payment_succeeded` (in either order, or the return
  page fetching the session) credit it once between them;
- each refund is debited through ledger.post keyed "stripe-refund:<refund id>", its full amount
  even while money is held; a refund that later fails is given back, keyed "stripe-refund-failed:<id>";
- a dispute debits its amount keyed "stripe-dispute:<id>"; a won one gives it back keyed
  "stripe-dispute-won:<id>" (inquiries, "warning_*", never took money and move nothing);
- status changes are conditional updates that never move a top-up backwards.
Handlers may run twice for one event (two deliveries at once, or a retry after a crash); every
step above is idempotent, so that is safe.
"""

import logging
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import topup_ops
from .models import LedgerEntry, StripeEvent, TopUp
from .stripe_client import list_refunds
from .topup_ops import TOPUP_PURPOSE, UnusableEvent

log = logging.getLogger("gpuniq.stripe")
CENTS = Decimal(100)
__all__ = ["receive", "apply_session", "UnusableEvent"]


def _cents(value: int | str | None) -> Decimal:
    return Decimal(int(value or 0)) / CENTS


def _id_of(value: str | dict[str, Any] | None) -> str:
    """An id field that may arrive expanded into an object."""
    if isinstance(value, dict):
        return str(value.get("id") or "")
    return value or ""


def receive(event: dict[str, Any]) -> str:
    """Record a verified event under its id, then apply it once. Returns what happened:
    "processed", "ignored" or "duplicate". Raises when handling failed (Stripe will retry)."""
    row, created = _record(event)
    if not created and row.status in (StripeEvent.PROCESSED, StripeEvent.IGNORED):
        return "duplicate"
    try:
        note = _dispatch(event)
    except Exception as exc:
        StripeEvent.objects.filter(pk=row.pk).update(status=StripeEvent.FAILED, error=repr(exc)[:2000])
        raise
    status = StripeEvent.IGNORED if note else StripeEvent.PROCESSED
    StripeEvent.objects.filter(pk=row.pk).update(status=status, error=note or "", processed_at=timezone.now())
    return status


def _record(event: dict[str, Any]) -> tuple[StripeEvent, bool]:
    obj = (event.get("data") or {}).get("object") or {}
    try:
        with transaction.atomic():
            return StripeEvent.objects.create(
                event_id=event["id"],
                type=event.get("type", ""),
                livemode=bool(event.get("livemode")),
                object_id=str(obj.get("id", ""))[:255],
                payload=event,
            ), True
    except IntegrityError:
        return StripeEvent.objects.get(event_id=event["id"]), False


def _dispatch(event: dict[str, Any]) -> str:
    """Apply the event; returns "" when applied, else why it was ignored."""
    kind, obj = event.get("type", ""), (event.get("data") or {}).get("object") or {}
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return "" if apply_session(obj) else "not a GPUniq top-up session"
    if kind in ("checkout.session.async_payment_failed", "checkout.session.expired"):
        status = TopUp.EXPIRED if kind.endswith("expired") else TopUp.FAILED
        return "" if mark_closed(obj, status) else "not a pending top-up"
    if kind == "charge.refunded":
        return apply_refunds(obj)
    if kind in ("charge.refund.updated", "refund.updated", "refund.failed"):
        return apply_refund_update(obj)
    if kind in ("charge.dispute.created", "charge.dispute.funds_withdrawn", "charge.dispute.closed"):
        return apply_dispute(obj)
    return f"unhandled event type {kind}"


def _topup_for(session: dict[str, Any]) -> TopUp | None:
    """The session's top-up; one we started elsewhere (its row lost) is rebuilt from our metadata."""
    topup = TopUp.objects.filter(session_id=session.get("id", "")).first()
    metadata = session.get("metadata") or {}
    if topup is not None:
        owner = metadata.get("gpuniq_user_id")
        if owner and str(owner) != str(topup.user_id):
            raise UnusableEvent(
                f"session {topup.session_id} names user {owner}, top-up belongs to {topup.user_id}"
            )
        return topup
    user_id = metadata.get("gpuniq_user_id")
    if metadata.get("purpose") != TOPUP_PURPOSE or not user_id:
        return None
    if not get_user_model().objects.filter(pk=user_id).exists():
        return None
    topup, _ = TopUp.objects.get_or_create(
        session_id=session["id"],
        defaults={
            "user_id": int(user_id),
            "amount": _cents(session.get("amount_total")),
            "currency": session.get("currency") or "usd",
        },
    )
    return topup


def apply_session(session: dict[str, Any]) -> TopUp | None:
    """Credit a paid session's top-up exactly once; an unpaid one (async payment pending) waits.

    Returns None when the session is not one of our top-ups.
    """
    topup = _topup_for(session)
    if topup is None:
        return None
    if session.get("payment_status") != "paid":
        return topup
    if (session.get("currency") or "").lower() != "usd":
        raise UnusableEvent(f"session {topup.session_id} is in {session.get('currency')!r}, not usd")
    amount = _cents(session.get("amount_total"))
    if amount != topup.amount:
        log.warning(
            "top-up %s: asked $%s, Stripe collected $%s; crediting what was collected",
            topup.session_id,
            topup.amount,
            amount,
        )
    TopUp.objects.filter(pk=topup.pk, payment_intent="").update(
        payment_intent=_id_of(session.get("payment_intent"))
    )
    # A zero or negative amount_total raises UnusableEvent: it never becomes a top-up entry.
    return topup_ops.credit(
        topup, amount=amount, key=topup_ops.topup_key(topup), reason=f"Stripe top-up {topup.session_id}"
    )


def mark_closed(session: dict[str, Any], status: str) -> bool:
    """A pending top-up whose payment failed or whose session expired; nothing was credited."""
    topup = TopUp.objects.filter(rail=TopUp.STRIPE, session_id=session.get("id", "")).first()
    return topup is not None and topup_ops.close(topup, status)


def _refunds_of(charge: dict[str, Any]) -> list[dict[str, Any]]:
    listed = charge.get("refunds") or {}
    if isinstance(listed, dict) and "data" in listed and not listed.get("has_more"):
        return list(listed["data"])
    return list_refunds(charge["id"])  # newer API versions leave the list off the charge


def apply_refunds(charge: dict[str, Any]) -> str:
    """Debit each refund of a top-up's charge once (keyed by refund id). Returns "" or why ignored."""
    intent = _id_of(charge.get("payment_intent"))
    topup = TopUp.objects.filter(payment_intent=intent).first() if intent else None
    if topup is None:
        return f"no top-up paid by payment intent {intent or '(none)'}"
    total = Decimal(0)
    for refund in _refunds_of(charge):
        if refund.get("status") not in ("succeeded", "pending"):
            apply_refund_update(refund, topup=topup)  # failed or canceled: given back if it was taken
            continue
        amount = _cents(refund.get("amount"))
        total += amount
        topup_ops.debit(
            topup,
            amount=amount,
            kind=LedgerEntry.REFUND,
            key=f"stripe-refund:{refund['id']}",
            reason=f"Stripe refund {refund['id']} of top-up {topup.session_id}",
        )
    topup_ops.refunded_total(topup, total)
    return ""


def _topup_by_intent(obj: dict[str, Any]) -> TopUp | None:
    intent = _id_of(obj.get("payment_intent"))
    return TopUp.objects.filter(rail=TopUp.STRIPE, payment_intent=intent).first() if intent else None


def apply_refund_update(refund: dict[str, Any], topup: TopUp | None = None) -> str:
    """A refund that failed or was canceled after being reported (pending) gives its money back, once."""
    topup = topup or _topup_by_intent(refund)
    if topup is None:
        return "no top-up for this refund's payment intent"
    if refund.get("status") not in ("failed", "canceled"):
        return (
            ""
            if refund.get("status") in ("succeeded", "pending")
            else f"refund status {refund.get('status')}"
        )
    rid = refund["id"]
    topup_ops.give_back(
        topup,
        amount=_cents(refund.get("amount")),
        kind=LedgerEntry.REFUND,
        debit_key=f"stripe-refund:{rid}",
        key=f"stripe-refund-failed:{rid}",
        reason=f"Stripe refund {rid} of top-up {topup.session_id} {refund['status']}: re-credited",
    )
    return ""


def apply_dispute(dispute: dict[str, Any]) -> str:
    """A dispute debits its amount once; a won one gives it back once; an inquiry moves nothing."""
    topup = _topup_by_intent(dispute)
    if topup is None:
        return "no top-up for this dispute's payment intent"
    status, did, amount = dispute.get("status") or "", dispute["id"], _cents(dispute.get("amount"))
    if status.startswith("warning_"):
        return f"inquiry ({status}): no funds withdrawn"
    reason = (
        f"Stripe dispute {did} of top-up {topup.session_id} ({dispute.get('reason') or 'no reason given'})"
    )
    if status == "won":
        topup_ops.give_back(
            topup,
            amount=amount,
            kind=LedgerEntry.DISPUTE,
            debit_key=f"stripe-dispute:{did}",
            key=f"stripe-dispute-won:{did}",
            reason=f"{reason}: won, re-credited",
        )
        TopUp.objects.filter(pk=topup.pk).update(disputed=0)
        return ""
    topup_ops.debit(
        topup, amount=amount, kind=LedgerEntry.DISPUTE, key=f"stripe-dispute:{did}", reason=reason
    )
    if not LedgerEntry.objects.filter(idempotency_key=f"stripe-dispute-won:{did}").exists():
        TopUp.objects.filter(pk=topup.pk).update(disputed=amount)
    return ""
