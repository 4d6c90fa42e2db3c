"""Crypto top-ups through a self-hosted BTCPay Server: invoices priced in USD.

Nothing in a webhook is trusted beyond its signature: each one makes us fetch the invoice and its
payment methods back from BTCPay, and only what they say moves money:
- every payment BTCPay reports "Settled" is credited once, keyed
  "btcpay-topup:<invoice id>:<payment id>", at its USD value (value × the method's rate), so partial
  payments, over-payments and payments after expiry are credited by what actually settled;
- a credited payment that BTCPay later reports "Invalid" (a double spend or a reorg: crypto's
  dispute) is taken back once, keyed "btcpay-reversed:<invoice id>:<payment id>";
- an expired invoice with nothing settled marks the top-up expired; an invalid one, failed.
"""

import logging
import uuid
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.conf import settings

from . import btcpay_client, topup_ops
from .models import LedgerEntry, TopUp
from .money import ZERO
from .topup_ops import TOPUP_PURPOSE

if TYPE_CHECKING:
    from accounts.models import User

log = logging.getLogger("gpuniq.btcpay")
CENT = Decimal("0.01")


def start_invoice(*, user: "User", amount: Decimal) -> tuple[TopUp, str]:
    """Create a USD invoice and record it as a pending top-up; returns it and BTCPay's checkout page."""
    ref = uuid.uuid4()
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    invoice = btcpay_client.create_invoice(
        amount_usd=f"{amount:.2f}",
        redirect_url=f"{base}/billing/?checkout=return&ref={ref}",
        metadata={
            "orderId": str(ref),
            "buyerEmail": user.email,
            "gpuniq_user_id": str(user.pk),
            "purpose": TOPUP_PURPOSE,
            "itemDesc": f"GPUniq balance top-up ${amount:,.2f}",
        },
    )
    topup = TopUp.objects.create(
        user=user,
        rail=TopUp.BTCPAY,
        session_id=invoice["id"],
        ref=ref,
        amount=amount,
        currency="usd",
        pay_amount=amount,
    )
    return topup, invoice["checkoutLink"]


def _dec(value: object) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, TypeError):
        return ZERO
    return number if number.is_finite() else ZERO


def _payments(methods: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], Decimal]]:
    """(payment, its USD value) for every payment of every method."""
    for method in methods:
        rate = _dec(method.get("rate"))
        for payment in method.get("payments") or []:
            value = (_dec(payment.get("value")) * rate).quantize(CENT, rounding=ROUND_HALF_UP)
            yield payment, value


def reconcile(invoice_id: str) -> str:
    """Fetch the invoice and its payments from BTCPay and bring the top-up and the ledger in line.
    Returns "" when it is one of our top-ups, else why it was ignored. Idempotent."""
    topup = TopUp.objects.filter(rail=TopUp.BTCPAY, session_id=invoice_id).first()
    if topup is None:
        return "not a GPUniq top-up invoice"
    try:
        invoice = btcpay_client.get_invoice(invoice_id)
    except btcpay_client.NotFound:
        return "BTCPay has no such invoice"
    owner = (invoice.get("metadata") or {}).get("gpuniq_user_id")
    if owner and str(owner) != str(topup.user_id):
        raise topup_ops.UnusableEvent(f"invoice {invoice_id} names user {owner}, not {topup.user_id}")
    if str(invoice.get("currency", "")).upper() != "USD":
        raise topup_ops.UnusableEvent(f"invoice {invoice_id} is priced in {invoice.get('currency')!r}")
    for payment, value in _payments(btcpay_client.get_payment_methods(invoice_id)):
        _apply_payment(topup, payment, value)
    reversed_total = -topup_ops.ledger_total(topup, f"btcpay-reversed:{topup.session_id}:")
    TopUp.objects.filter(pk=topup.pk).update(disputed=reversed_total)
    topup.refresh_from_db()
    status = invoice.get("status")
    if topup.credited <= ZERO and status in ("Expired", "Invalid"):
        topup_ops.close(topup, TopUp.EXPIRED if status == "Expired" else TopUp.FAILED)
    return ""


def _apply_payment(topup: TopUp, payment: dict[str, Any], value: Decimal) -> None:
    pid, status = str(payment.get("id", "")), payment.get("status")
    if not pid:
        return
    key = f"{topup_ops.topup_key(topup)}:{pid}"
    if status == "Settled" and value > ZERO:
        topup_ops.credit(
            topup,
            amount=value,
            key=key,
            reason=f"BTCPay top-up {topup.session_id}: payment {pid} settled, ${value}",
        )
    elif status == "Invalid" and LedgerEntry.objects.filter(idempotency_key=key).exists():
        credited = LedgerEntry.objects.get(idempotency_key=key).amount
        topup_ops.debit(
            topup,
            amount=credited,
            kind=LedgerEntry.DISPUTE,
            key=f"btcpay-reversed:{topup.session_id}:{pid}",
            reason=f"BTCPay payment {pid} of top-up {topup.session_id} became invalid after settling",
        )
