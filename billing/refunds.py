"""Refund what is left of a top-up through its own rail, started by an operator in the admin.

Guarantee: the ledger debit is keyed exactly as the rail's own refund event keys it
("stripe-refund:<id>", "yookassa-refund:<payment>:<id>"), so the debit made here as soon as the rail
accepts the refund and the webhook that reports it later move the money once between them. BTCPay
refunds are pull payments the buyer claims later; there is no webhook, so the debit is made when the
pull payment is created ("btcpay-refund:<invoice>:<pull payment id>"). A retried refund of the same
remaining amount reuses the rail's idempotency key, so it is one refund at the rail.
"""

import logging
from decimal import ROUND_HALF_UP, Decimal

import stripe

from . import btcpay_client, stripe_client, topup_ops, yookassa_rail
from .models import LedgerEntry, TopUp
from .money import ZERO
from .stripe_topups import PaymentProviderError

log = logging.getLogger("gpuniq.payments")
CENT = Decimal("0.01")


class NothingToRefund(Exception):
    pass


def refund_remaining(topup: TopUp) -> Decimal:
    """Refund the credited amount not yet refunded; returns the USD refunded. Raises NothingToRefund
    or PaymentProviderError (the message is safe to show to the operator)."""
    topup.refresh_from_db()
    remaining = (topup.credited - topup.refunded).quantize(CENT, rounding=ROUND_HALF_UP)
    if topup.status not in (TopUp.PAID, TopUp.REFUNDED) or remaining <= ZERO:
        raise NothingToRefund(f"top-up {topup.ref} has nothing left to refund")
    idempotency_key = f"gpuniq-refund:{topup.ref}:{remaining}"
    if topup.rail == TopUp.STRIPE:
        _stripe(topup, remaining, idempotency_key)
    elif topup.rail == TopUp.YOOKASSA:
        _yookassa(topup, remaining, idempotency_key)
    else:
        _btcpay(topup, remaining)
    return remaining


def _stripe(topup: TopUp, usd: Decimal, key: str) -> None:
    try:
        refund = (
            stripe_client.client()
            .v1.refunds.create(
                params={"payment_intent": topup.payment_intent, "amount": int(usd * 100)},
                options={"idempotency_key": key},
            )
            .to_dict()
        )
    except stripe.StripeError as exc:
        raise PaymentProviderError(f"Stripe refused the refund: {exc.user_message or exc}") from exc
    if refund.get("status") in ("succeeded", "pending"):
        topup_ops.debit(
            topup,
            amount=usd,
            kind=LedgerEntry.REFUND,
            key=f"stripe-refund:{refund['id']}",
            reason=f"Stripe refund {refund['id']} of top-up {topup.session_id} (by an operator)",
        )
        topup_ops.refunded_total(topup, topup.refunded + usd)
    log.info("Stripe refund %s of %s: %s", refund.get("id"), topup.session_id, refund.get("status"))


def _yookassa(topup: TopUp, usd: Decimal, key: str) -> None:
    if topup.rate is None or topup.pay_amount is None:  # set on every YooKassa top-up at its start
        raise PaymentProviderError(f"top-up {topup.session_id} has no RUB price to refund against")
    rub = topup.pay_amount if topup.refunded == ZERO else yookassa_rail.quote(usd, topup.rate)
    refund = yookassa_rail.create_refund(payment_id=topup.session_id, rub=rub, idempotency_key=key)
    yookassa_rail.apply_refund(refund)  # the refund.succeeded notification finds it done


def _btcpay(topup: TopUp, usd: Decimal) -> None:
    pull = btcpay_client.refund_invoice(topup.session_id, amount_usd=f"{usd:.2f}")
    topup_ops.debit(
        topup,
        amount=usd,
        kind=LedgerEntry.REFUND,
        key=f"btcpay-refund:{topup.session_id}:{pull['id']}",
        reason=f"BTCPay refund of top-up {topup.session_id}: pull payment {pull['id']} (by an operator)",
    )
    topup_ops.refunded_total(topup, -topup_ops.ledger_total(topup, f"btcpay-refund:{topup.session_id}:"))
