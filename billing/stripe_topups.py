"""Stripe Checkout top-ups: open a Checkout Session, and look one up when the buyer comes back.

Money never moves here. Whether a paid session arrives in a webhook or is fetched on the return
page, it goes through stripe_events.apply_session(), which credits at most once per session.
"""

import logging
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING

import stripe
from django.conf import settings

from . import topup_ops
from .models import TopUp
from .money import format_usd
from .stripe_client import client, payments_configured
from .stripe_events import apply_session
from .topup_ops import TOPUP_PURPOSE

if TYPE_CHECKING:
    from stripe.params.checkout import SessionCreateParams

    from accounts.models import User

log = logging.getLogger("gpuniq.stripe")


class PaymentProviderError(Exception):
    """Stripe refused or could not be reached; the message is safe to show."""


def _session_params(*, user: "User", amount: Decimal, ref: uuid.UUID) -> "SessionCreateParams":
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    metadata = {"gpuniq_user_id": str(user.pk), "purpose": TOPUP_PURPOSE}
    return {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "usd",
                    "unit_amount": int(amount * 100),
                    "product_data": {
                        "name": "GPUniq balance top-up",
                        "description": f"{format_usd(amount, 2)} of API credit",
                    },
                },
            }
        ],
        "success_url": f"{base}/billing/?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{base}/billing/?checkout=cancelled&ref={ref}",
        "client_reference_id": str(user.pk),
        "customer_email": user.email,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }


def start_checkout(*, user: "User", amount: Decimal) -> tuple[TopUp, str]:
    """Open a Checkout Session for `amount` USD and record it as a pending top-up.

    Returns the top-up and the hosted payment page to send the buyer to. Nothing is credited
    here: that happens when Stripe reports the session paid.
    """
    ref = uuid.uuid4()
    try:
        session = client().v1.checkout.sessions.create(
            params=_session_params(user=user, amount=amount, ref=ref)
        )
    except stripe.StripeError as exc:
        log.warning("checkout session for user %s failed: %s", user.pk, exc)
        raise PaymentProviderError(
            "The payment provider is unavailable right now; please try again."
        ) from exc
    if session.url is None:  # a hosted Checkout Session always has its page
        raise PaymentProviderError("The payment provider sent no payment page; please try again.")
    topup = TopUp.objects.create(
        user=user, rail=TopUp.STRIPE, session_id=session.id, ref=ref, amount=amount, pay_amount=amount
    )
    return topup, session.url


def cancel_checkout(*, topup: TopUp) -> TopUp:
    """The buyer came back through the cancel URL: mark the top-up cancelled, then expire the session
    at Stripe so it can no longer be paid (its checkout.session.expired event finds it cancelled
    already). If Stripe refuses (the session was paid meanwhile), the session is fetched and applied,
    which turns the top-up paid: a payment is never lost to a cancel click."""
    if topup.status != TopUp.PENDING or not payments_configured():
        return topup
    topup_ops.close(topup, TopUp.CANCELLED)
    try:
        client().v1.checkout.sessions.expire(topup.session_id)
    except stripe.StripeError as exc:
        log.info("expiring checkout session %s refused (%s); fetching it instead", topup.session_id, exc)
        _apply_fetched(topup.session_id)
    topup.refresh_from_db()
    return topup


def _apply_fetched(session_id: str) -> None:
    try:
        apply_session(client().v1.checkout.sessions.retrieve(session_id).to_dict())
    except stripe.StripeError as exc:
        log.warning("retrieving checkout session %s failed: %s", session_id, exc)


def refresh_from_stripe(*, user: "User", session_id: str) -> TopUp | None:
    """On the return page: fetch the buyer's own pending session so a slow webhook does not leave
    the balance looking unpaid. Credits through the same once-only path as the webhook."""
    topup = TopUp.objects.filter(user=user, rail=TopUp.STRIPE, session_id=session_id).first()
    if topup is None or topup.status != TopUp.PENDING or not payments_configured():
        return topup
    try:
        session = client().v1.checkout.sessions.retrieve(session_id)
    except stripe.StripeError as exc:
        log.warning("retrieving checkout session %s failed: %s", session_id, exc)
        return topup
    return apply_session(session.to_dict()) or topup
