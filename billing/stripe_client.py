"""The Stripe API client, shared by both halves of the Stripe rail: checkout (stripe_topups: open,
cancel, look up a session) and events (stripe_events: credit, refund). stripe_topups hands paid
sessions to stripe_events; stripe_events needs only this module, so the two never import each other
both ways (the billing-acyclic contract in .importlinter)."""

import functools
from typing import Any

import stripe
from django.conf import settings


class PaymentsNotConfigured(Exception):
    """STRIPE_SECRET_KEY / STRIPE_WEBHOOK_SECRET are not set."""


def payments_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


@functools.lru_cache(maxsize=4)
def _client(secret_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(
        secret_key,
        base_addresses={"api": api_base.rstrip("/")} if api_base else None,
        max_network_retries=2,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def client() -> stripe.StripeClient:
    """A client for the configured account; STRIPE_API_BASE (tests, stripe-mock) replaces api.stripe.com."""
    if not payments_configured():
        raise PaymentsNotConfigured()
    return _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT_SECONDS)


def list_refunds(charge_id: str) -> list[dict[str, Any]]:
    """Every refund of a charge (for charge.refunded events whose charge omits its refund list)."""
    refunds = client().v1.refunds.list(params={"charge": charge_id, "limit": 100})
    return [refund.to_dict() for refund in refunds.auto_paging_iter()]
