"""YooKassa top-ups in RUB through the official SDK (`yookassa`).

The buyer picks a USD amount; the RUB price is that amount at YOOKASSA_USD_RATE (RUB per USD),
fixed on the payment when it is created, shown before paying and stored on the top-up. A payment
uses a redirect confirmation; the buyer comes back to /billing/?checkout=return&ref=<our ref>.

Nothing in a notification is trusted: each is re-read from YooKassa's API (the SDK, pointed at
YOOKASSA_API_BASE) and only the fetched object moves money:
- a succeeded payment is credited once, keyed "yookassa-topup:<payment id>", in USD at the stored
  rate (exactly the USD asked for when the buyer paid the quoted RUB);
- a canceled payment marks a pending top-up cancelled;
- a succeeded refund is debited once, keyed "yookassa-refund:<payment id>:<refund id>", its full
  amount even while money is held.
"""

import logging
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.conf import settings
from yookassa import Configuration, Payment, Refund
from yookassa.domain.exceptions import NotFoundError

from . import topup_ops
from .models import LedgerEntry, TopUp
from .money import ZERO, usd
from .stripe_topups import PaymentProviderError
from .topup_ops import TOPUP_PURPOSE

if TYPE_CHECKING:
    from accounts.models import User

log = logging.getLogger("gpuniq.yookassa")
KOPECK = Decimal("0.01")


class NotFound(Exception):
    """YooKassa has no such payment or refund in this shop."""


def usd_rate() -> Decimal | None:
    """RUB per USD from the configured rate source (for now the YOOKASSA_USD_RATE setting)."""
    try:
        rate = Decimal(settings.YOOKASSA_USD_RATE)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return rate if rate.is_finite() and rate > ZERO else None


def configured() -> bool:
    return bool(settings.YOOKASSA_SHOP_ID and settings.YOOKASSA_SECRET_KEY and usd_rate())


def quote(amount_usd: Decimal, rate: Decimal) -> Decimal:
    """What the buyer pays in RUB for `amount_usd`, to the kopeck."""
    return (amount_usd * rate).quantize(KOPECK, rounding=ROUND_HALF_UP)


def _sdk(call: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Every SDK call goes through here. The SDK keeps its configuration in class attributes, so it is
    set from settings (the same values every time) right before each call."""
    Configuration.configure(
        settings.YOOKASSA_SHOP_ID,
        settings.YOOKASSA_SECRET_KEY,
        api_url=settings.YOOKASSA_API_BASE.rstrip("/"),
        max_attempts=2,
    )
    try:
        return dict(call(*args, **kwargs))
    except NotFoundError as exc:
        raise NotFound(str(args[:1])) from exc
    except Exception as exc:  # the SDK raises its ApiError family, requests' errors, or AttributeError
        log.warning("YooKassa %s failed: %r", getattr(call, "__name__", call), exc)
        raise PaymentProviderError(
            "The payment provider is unavailable right now; please try again."
        ) from exc


def start_payment(*, user: "User", amount: Decimal) -> tuple[TopUp, str]:
    """Create a RUB payment for `amount` USD at today's rate and record it as a pending top-up.
    Returns the top-up and YooKassa's confirmation page. Nothing is credited here."""
    rate, ref = usd_rate(), uuid.uuid4()
    if rate is None:
        raise PaymentProviderError("YooKassa has no RUB rate configured.")
    rub = quote(amount, rate)
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    params = {
        "amount": {"value": f"{rub:.2f}", "currency": "RUB"},
        "capture": True,
        "confirmation": {"type": "redirect", "return_url": f"{base}/billing/?checkout=return&ref={ref}"},
        "description": f"GPUniq balance top-up ${amount:,.2f}",
        "metadata": {
            "gpuniq_user_id": str(user.pk),
            "purpose": TOPUP_PURPOSE,
            "gpuniq_ref": str(ref),
            "usd_amount": f"{amount:.2f}",
            "usd_rate": str(rate),
        },
    }
    payment = _sdk(Payment.create, params, str(ref))  # our ref is the Idempotence-Key: a retry is one payment
    topup = TopUp.objects.create(
        user=user,
        rail=TopUp.YOOKASSA,
        session_id=payment["id"],
        ref=ref,
        amount=amount,
        currency="rub",
        pay_amount=rub,
        rate=rate,
    )
    return topup, payment["confirmation"]["confirmation_url"]


def create_refund(*, payment_id: str, rub: Decimal, idempotency_key: str) -> dict[str, Any]:
    """POST /v3/refunds for `rub` of a payment; the same key is the same refund at YooKassa."""
    return _sdk(
        Refund.create,
        {"payment_id": payment_id, "amount": {"value": f"{rub:.2f}", "currency": "RUB"}},
        idempotency_key,
    )


def fetch_payment(payment_id: str) -> dict[str, Any]:
    return _sdk(Payment.find_one, payment_id)


def fetch_refund(refund_id: str) -> dict[str, Any]:
    return _sdk(Refund.find_one, refund_id)


def _rub(money: dict[str, Any] | None) -> Decimal:
    try:
        return Decimal(str((money or {}).get("value", "0")))
    except InvalidOperation:
        return ZERO


def _usd_for(topup: TopUp, rub: Decimal) -> Decimal:
    """RUB → USD at the top-up's stored rate; the quoted RUB is exactly the USD asked for."""
    if rub == topup.pay_amount:
        return topup.amount
    if topup.rate is None:  # set on every YooKassa top-up at its start
        raise topup_ops.UnusableEvent(f"top-up {topup.session_id} has no RUB rate")
    return usd(rub / topup.rate)


def apply_payment(payment: dict[str, Any]) -> str:
    """Apply a payment as fetched from YooKassa. Returns "" when it moved the top-up, else why not."""
    topup = TopUp.objects.filter(rail=TopUp.YOOKASSA, session_id=payment.get("id", "")).first()
    if topup is None:
        return "not a GPUniq top-up payment"
    owner = (payment.get("metadata") or {}).get("gpuniq_user_id")
    if owner and str(owner) != str(topup.user_id):
        raise topup_ops.UnusableEvent(f"payment {topup.session_id} names user {owner}, not {topup.user_id}")
    status = payment.get("status")
    if status == "canceled":
        return "" if topup_ops.close(topup, TopUp.CANCELLED) else "not a pending top-up"
    if status != "succeeded" or not payment.get("paid"):
        return f"payment is {status}"
    amount = payment.get("amount") or {}
    if str(amount.get("currency", "")).lower() != topup.currency:
        raise topup_ops.UnusableEvent(f"payment {topup.session_id} is in {amount.get('currency')!r}")
    rub = _rub(amount)
    topup_ops.credit(
        topup,
        amount=_usd_for(topup, rub),
        key=topup_ops.topup_key(topup),
        reason=f"YooKassa top-up {topup.session_id}: {rub} RUB at {topup.rate} RUB/USD",
    )
    return ""


def apply_refund(refund: dict[str, Any]) -> str:
    """Debit a succeeded refund (fetched from YooKassa) once; pending or canceled ones move nothing."""
    topup = TopUp.objects.filter(rail=TopUp.YOOKASSA, session_id=refund.get("payment_id", "")).first()
    if topup is None:
        return "no top-up for this refund's payment"
    if refund.get("status") != "succeeded":
        return f"refund is {refund.get('status')}"
    rub, prefix = _rub(refund.get("amount")), f"yookassa-refund:{topup.session_id}:"
    topup_ops.debit(
        topup,
        amount=_usd_for(topup, rub),
        kind=LedgerEntry.REFUND,
        key=prefix + refund["id"],
        reason=f"YooKassa refund {refund['id']} of top-up {topup.session_id}: {rub} RUB",
    )
    topup_ops.refunded_total(topup, -topup_ops.ledger_total(topup, prefix))
    return ""
