"""The payment rails this server offers, and the two things every rail does for the pages:
start a top-up, and re-read one when the buyer comes back from the rail's page."""

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from . import btcpay_client, btcpay_rail, stripe_client, stripe_topups, yookassa_rail
from .models import TopUp
from .stripe_topups import PaymentProviderError

if TYPE_CHECKING:
    from accounts.models import User

log = logging.getLogger("gpuniq.payments")


@dataclass(frozen=True)
class Rail:
    name: str
    label: str
    note: str


RAILS = {
    TopUp.STRIPE: Rail(
        TopUp.STRIPE, "Card (Stripe)", "Secure checkout by Stripe. Card details never touch our servers."
    ),
    TopUp.YOOKASSA: Rail(
        TopUp.YOOKASSA,
        "YooKassa (RUB)",
        "Pay in roubles through YooKassa: cards, SBP, YooMoney. The rate is fixed when you start.",
    ),
    TopUp.BTCPAY: Rail(
        TopUp.BTCPAY,
        "Crypto (BTCPay)",
        "Pay in crypto through our BTCPay Server. You are credited the USD value of what settles.",
    ),
}


def configured_rails() -> list[Rail]:
    """Exactly the rails whose settings are complete, in a fixed order."""
    on = {
        TopUp.STRIPE: stripe_client.payments_configured(),
        TopUp.YOOKASSA: yookassa_rail.configured(),
        TopUp.BTCPAY: btcpay_client.configured(),
    }
    return [rail for name, rail in RAILS.items() if on[name]]


def start(rail: str, *, user: "User", amount: Decimal) -> tuple[TopUp, str]:
    """Open a payment on `rail`; returns the pending top-up and the page to send the buyer to."""
    if rail == TopUp.YOOKASSA:
        return yookassa_rail.start_payment(user=user, amount=amount)
    if rail == TopUp.BTCPAY:
        return btcpay_rail.start_invoice(user=user, amount=amount)
    return stripe_topups.start_checkout(user=user, amount=amount)


def refresh(topup: TopUp) -> TopUp:
    """The buyer is back from the rail's page: re-read their own pending top-up so a slow webhook does
    not leave it looking unpaid. Money moves only through the rails' once-only paths."""
    if topup.status != TopUp.PENDING:
        return topup
    try:
        if topup.rail == TopUp.YOOKASSA and yookassa_rail.configured():
            yookassa_rail.apply_payment(yookassa_rail.fetch_payment(topup.session_id))
        elif topup.rail == TopUp.BTCPAY and btcpay_client.configured():
            btcpay_rail.reconcile(topup.session_id)
        elif topup.rail == TopUp.STRIPE:
            return stripe_topups.refresh_from_stripe(user=topup.user, session_id=topup.session_id) or topup
    except PaymentProviderError as exc:
        log.warning("re-reading %s top-up %s failed: %s", topup.rail, topup.session_id, exc)
    topup.refresh_from_db()
    return topup
